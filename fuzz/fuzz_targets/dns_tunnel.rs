//! A device's `TunnelClient` fed arbitrary answers for its outstanding queries: the input is a
//! series of operations (let time pass, answer the outstanding query with a payload of any
//! status, length and body, with arbitrary TXT strings or with a resolver's error, answer
//! another name, send a new message). The tunnel may not panic, every name it sends is a whole
//! query under the zone that fits 255 octets and is never sent twice (in any case), it has a
//! deadline exactly while it is busy, and an unusable answer never sends the query again
//! before its deadline.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use zerotouch_core::Instant;
use zerotouch_dns::{
    AnswerLimit, AnswerPayload, AnswerStatus, Handled, NameKind, OutgoingQuery, Query, Reply,
    TunnelClient, TunnelConfig, Zone,
};

/// Reads the input a byte at a time; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head.to_vec()
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(zone) = Zone::new("zt.example.com") else {
        panic!("zone refused");
    };
    let mut input = Input(data);
    let flags = input.byte();
    let config = TunnelConfig {
        edns_limit: (flags & 1 != 0)
            .then(|| AnswerLimit::from_bytes(1232).ok())
            .flatten(),
        max_attempts: 1 + (flags >> 4),
        ..TunnelConfig::new(zone.clone())
    };
    let mut rng = ChaCha20Rng::seed_from_u64(u64::from(flags));
    let mut tunnel = TunnelClient::new(config, &mut rng);
    let mut now = 0u64;
    let mut names: HashSet<String> = HashSet::new();
    let mut outstanding: Option<OutgoingQuery> = None;
    let mut messages = 0u8;
    send(&mut tunnel, &mut rng, &mut messages, input.u16());

    for _ in 0..2000 {
        if input.0.is_empty() {
            break;
        }
        let op = input.byte();
        now += u64::from(op & 0x07) * 3;
        if op & 0x08 != 0 {
            now += 2000;
        }
        tunnel.handle_timeout(Instant(now));
        if let Some(q) = tunnel.poll_query(Instant(now)) {
            match Query::classify(&q.name, &zone) {
                Ok(NameKind::Query(parsed)) => assert_eq!(parsed.header.kind, q.kind),
                other => panic!("the tunnel sent {:?}: {other:?}", q.name),
            }
            assert!(q.name.len() + 2 <= 255, "{} octets", q.name.len() + 2);
            assert!(
                names.insert(q.name.to_ascii_lowercase()),
                "{} sent twice",
                q.name
            );
            outstanding = Some(q);
        }
        let reply = match op >> 4 {
            0..=5 => {
                let status = input.byte();
                let status = AnswerStatus::from_u8(status % 0x18)
                    .or_else(|_| AnswerStatus::from_u8(status & 0x03))
                    .unwrap_or(AnswerStatus::Ack);
                let length = input.u16();
                let n = match input.byte() {
                    n @ 0..=200 => usize::from(n),
                    n => usize::from(n - 200) * 64,
                };
                let body = input.bytes(n);
                Reply::Txt(
                    AnswerPayload {
                        status,
                        length,
                        body,
                    }
                    .to_strings(),
                )
            }
            6..=7 => {
                let count = input.byte() % 4;
                let strings = (0..count)
                    .map(|_| {
                        let n = usize::from(input.byte());
                        input.bytes(n)
                    })
                    .collect();
                Reply::Txt(strings)
            }
            8 => Reply::NoData,
            9 => Reply::NameError,
            10 => Reply::ServerFailure,
            11 => Reply::Truncated,
            12 => {
                let len = usize::from(input.u16()) % 9000;
                if len > 8192 {
                    assert!(tunnel.send(&vec![1; len], &mut rng).is_err());
                } else {
                    send(&mut tunnel, &mut rng, &mut messages, len as u16);
                    outstanding = None;
                }
                continue;
            }
            _ => continue, // nothing comes back
        };
        // One op in 16 answers another name (forged, or late for an earlier query).
        let name = match (&outstanding, op & 0x0f == 0x0e) {
            (Some(q), false) => q.name.to_ascii_uppercase(),
            _ => "a.zt.example.com".to_owned(),
        };
        let handled = tunnel.handle_answer(Instant(now), &name, reply);
        if matches!(handled, Handled::Unusable(_)) {
            // The query stays outstanding until its deadline: nothing goes out now.
            assert!(tunnel.poll_timeout().is_some_and(|d| d > Instant(now)));
            assert_eq!(tunnel.poll_query(Instant(now)), None);
        }
        while tunnel.poll_event().is_some() {}
        assert_eq!(tunnel.is_busy(), tunnel.poll_timeout().is_some());
        if !tunnel.is_busy() {
            outstanding = None;
            send(&mut tunnel, &mut rng, &mut messages, input.u16());
        }
    }
});

/// Sends a message of 1 to 4,000 bytes (from `len`), different from the ones before.
fn send(tunnel: &mut TunnelClient, rng: &mut ChaCha20Rng, count: &mut u8, len: u16) {
    *count = count.wrapping_add(1);
    let len = usize::from(len) % 4000;
    let message: Vec<u8> = (0..len.max(1)).map(|i| i as u8 ^ *count).collect();
    if let Err(e) = tunnel.send(&message, rng) {
        panic!("a message of {} bytes refused: {e:?}", message.len());
    }
}

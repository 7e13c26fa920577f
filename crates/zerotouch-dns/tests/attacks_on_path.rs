//! An on-path attacker who sees every packet between the device, its resolver and the server,
//! and can inject: what it learns (nothing of the credential or the PIN) and what its forged,
//! replayed and cross-transport answers achieve (a typed refusal by the device).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::attacker::{contains, forge, read};
use common::proxy::{AnswerAction, DnsProxy, Faults};
use common::unbound::{Unbound, UnboundOptions};
use common::world::{DnsWorld, HomeRadio, ZONE, device, provision, tunnel_config, zone};
use hickory_proto::op::Message;
use hickory_proto::rr::RData;
use hickory_proto::rr::rdata::TXT;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use sha2::{Digest, Sha256};
use zerotouch_core::{Instant, Transport};
use zerotouch_device::{Event, Path, Refusal, Trigger};
use zerotouch_device_tokio::{Exchange, drive_observed};
use zerotouch_dns::client::{DnsClientConfig, DnsClientError, DnsExchange};
use zerotouch_dns::{AnswerPayload, AnswerStatus};
use zerotouch_server::TransportIdentity;
use zerotouch_store_suite::fixtures;

/// The device's refusals in a run, in order.
fn refusals(events: &[Event]) -> Vec<Refusal> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::MessageRefused { reason } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// Runs the device with every event recorded, whether or not the run completes.
async fn observed_run<X: Exchange>(exchange: &mut X, seed: u64) -> (bool, Vec<Event>) {
    let mut session = device();
    let mut radio = HomeRadio::default();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut events = Vec::new();
    let run = drive_observed(
        &mut session,
        Trigger::FirstBoot,
        exchange,
        &mut radio,
        &mut rng,
        Duration::from_secs(60),
        &mut |e| events.push(e.clone()),
    )
    .await;
    (run.is_ok_and(|r| r.joined.is_some()), events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_traffic_holds_neither_the_credential_nor_the_pin() {
    // Both hops are watched: device ↔ resolver and resolver ↔ server.
    let world = DnsWorld::start().await;
    let server_side = DnsProxy::start(world.addr(), Faults::default(), 1).await;
    let unbound = Unbound::start(ZONE, server_side.addr(), UnboundOptions::default())
        .await
        .unwrap();
    let device_side = DnsProxy::start(unbound.addr, Faults::default(), 2).await;
    let mut exchange = DnsExchange::with_seed(
        DnsClientConfig::new(device_side.addr(), tunnel_config(Some(1232))),
        [5; 32],
    );
    let (run, _) = provision(&mut exchange, 5).await;
    assert!(run.unwrap().joined.is_some());

    let mut capture = device_side.capture();
    capture.extend(server_side.capture());
    let reading = read(&capture, &zone());
    // The attacker did read the exchange: several messages each way.
    assert!(reading.requests.len() >= 3 && reading.responses.len() >= 3);
    let mut everything: Vec<Vec<u8>> = capture.iter().map(|c| c.bytes.clone()).collect();
    everything.extend(reading.decoded.iter().cloned());
    everything.extend(reading.requests.values().cloned());
    everything.extend(reading.responses.values().cloned());
    for bytes in &everything {
        assert!(!contains(bytes, fixtures::PASSPHRASE), "passphrase seen");
        assert!(!contains(bytes, fixtures::PIN.as_bytes()), "PIN seen");
        let lower = String::from_utf8_lossy(bytes).to_ascii_lowercase();
        assert!(!lower.contains("correct horse"), "passphrase seen as text");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_six_digit_pin_can_be_told_apart_in_the_captured_traffic() {
    let world = DnsWorld::start().await;
    let proxy = DnsProxy::start(world.addr(), Faults::default(), 3).await;
    let mut exchange = DnsExchange::with_seed(
        DnsClientConfig::new(proxy.addr(), tunnel_config(None)),
        [6; 32],
    );
    let (run, _) = provision(&mut exchange, 6).await;
    assert!(run.unwrap().joined.is_some());
    let capture = proxy.capture();
    let reading = read(&capture, &zone());
    let mut corpus: Vec<u8> = Vec::new();
    for bytes in capture
        .iter()
        .map(|c| &c.bytes)
        .chain(reading.decoded.iter())
        .chain(reading.requests.values())
        .chain(reading.responses.values())
    {
        corpus.extend_from_slice(bytes);
        corpus.push(0);
    }
    // Everything a PIN-derived value could match: every 6-byte and 32-byte window.
    let short: HashSet<&[u8]> = corpus.windows(6).collect();
    let long: HashSet<&[u8]> = corpus.windows(32).collect();
    let device_id = fixtures::device(1).key_id;
    let mut matching = Vec::new();
    for pin in 0..1_000_000u32 {
        let ascii = format!("{pin:06}");
        let hashed = Sha256::digest(ascii.as_bytes());
        let salted = Sha256::new()
            .chain_update(device_id.0)
            .chain_update(ascii.as_bytes())
            .finalize();
        if short.contains(ascii.as_bytes())
            || long.contains(hashed.as_slice())
            || long.contains(salted.as_slice())
        {
            matching.push(ascii);
        }
    }
    // Not the right PIN, not any other: the traffic gives no test to run a guess against
    // (the PIN only travels sealed to the server's key for this session).
    assert_eq!(matching, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_server_proof_is_refused_by_the_device() {
    let world = DnsWorld::start().await;
    let proxy = DnsProxy::start(world.addr(), Faults::default(), 4).await;
    let tampered = Arc::new(Mutex::new(0u32));
    let count = Arc::clone(&tampered);
    // Flip the last byte of the first piece of the first response (the server proof), once.
    proxy.set_answer_filter(Box::new(move |packet| {
        let mut done = count.lock().unwrap();
        if *done > 0 {
            return AnswerAction::Forward;
        }
        let Ok(mut message) = Message::from_vec(packet) else {
            return AnswerAction::Forward;
        };
        let Some(record) = message.answers.first_mut() else {
            return AnswerAction::Forward;
        };
        let RData::TXT(txt) = &record.data else {
            return AnswerAction::Forward;
        };
        let Ok(mut payload) = AnswerPayload::from_strings(&txt.txt_data) else {
            return AnswerAction::Forward;
        };
        if payload.status != AnswerStatus::Data || payload.body.is_empty() {
            return AnswerAction::Forward;
        }
        *payload.body.last_mut().unwrap() ^= 0x01;
        let strings = payload.to_strings();
        record.data = RData::TXT(TXT::from_bytes(strings.iter().map(Vec::as_slice).collect()));
        *done += 1;
        AnswerAction::Replace(message.to_vec().unwrap())
    }));
    let mut exchange = DnsExchange::with_seed(
        DnsClientConfig::new(proxy.addr(), tunnel_config(None)),
        [7; 32],
    );
    let (joined, events) = observed_run(&mut exchange, 7).await;
    assert_eq!(*tampered.lock().unwrap(), 1);
    let refused = refusals(&events);
    assert!(
        matches!(
            refused.first(),
            Some(Refusal::Signature(_) | Refusal::Malformed(_))
        ),
        "{refused:?}"
    );
    // The genuine answer to the retransmission then gets through.
    assert!(joined, "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_previous_sessions_answers_are_refused_by_the_device() {
    let world = DnsWorld::start().await;
    // The attacker records a whole earlier session.
    let recorder = DnsProxy::start(world.addr(), Faults::default(), 5).await;
    let mut first = DnsExchange::with_seed(
        DnsClientConfig::new(recorder.addr(), tunnel_config(None)),
        [8; 32],
    );
    let (run, _) = provision(&mut first, 8).await;
    assert!(run.unwrap().joined.is_some());
    let old = read(&recorder.capture(), &zone());
    let old_proof = old
        .responses
        .iter()
        .find(|((_, message), _)| *message == 0)
        .map(|(_, bytes)| bytes.clone())
        .unwrap();

    // Later, it answers the device's next hello with the recorded server proof.
    let proxy = DnsProxy::start(world.addr(), Faults::default(), 6).await;
    let zone = zone();
    let first_tunnel = Arc::new(Mutex::new(None));
    let seen = Arc::clone(&first_tunnel);
    proxy.set_answer_filter(Box::new(move |packet| {
        let Some(forged) = forge(packet, &zone, 0, &old_proof) else {
            return AnswerAction::Forward;
        };
        // Only the first tunnel's hello: the device's later retransmission goes through.
        let tunnel = common::attacker::tunnel_of(packet, &zone);
        let mut first = seen.lock().unwrap();
        if first.is_none() {
            *first = tunnel;
        }
        if tunnel.is_some() && *first == tunnel {
            AnswerAction::Replace(forged)
        } else {
            AnswerAction::Forward
        }
    }));
    let mut exchange = DnsExchange::with_seed(
        DnsClientConfig::new(proxy.addr(), tunnel_config(None)),
        [9; 32],
    );
    let (joined, events) = observed_run(&mut exchange, 9).await;
    let refused = refusals(&events);
    assert!(
        matches!(refused.first(), Some(Refusal::WrongSession)),
        "{refused:?}"
    );
    assert!(joined, "{events:?}");
}

/// An attacker who took the device's hello off the DNS queries, replayed it to the server
/// over HTTPS, and forges the DNS answers to carry the server's HTTPS answer.
struct HttpsReplay<'a> {
    inner: DnsExchange,
    world: &'a DnsWorld,
    replayed: bool,
}

impl Exchange for HttpsReplay<'_> {
    type Error = DnsClientError;

    async fn exchange(&mut self, path: Path, message: Vec<u8>) -> Result<Vec<u8>, DnsClientError> {
        if self.replayed {
            return self.inner.exchange(path, message).await;
        }
        self.replayed = true;
        let over_https = TransportIdentity::Direct {
            transport: Transport::Https,
            client_key: None,
        };
        let now = Instant(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64,
        );
        Ok(self
            .world
            .service
            .handle(
                &message,
                &over_https,
                now,
                &mut ChaCha20Rng::seed_from_u64(99),
            )
            .await)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_answer_replayed_into_a_dns_session_is_refused_by_the_device() {
    let world = DnsWorld::start().await;
    let inner = DnsExchange::with_seed(
        DnsClientConfig::new(world.addr(), tunnel_config(None)),
        [10; 32],
    );
    let mut attacker = HttpsReplay {
        inner,
        world: &world,
        replayed: false,
    };
    let (joined, events) = observed_run(&mut attacker, 10).await;
    let refused = refusals(&events);
    // A proof the server really signed, for this very hello, but over the HTTPS transcript:
    // the device's transcript says DNS, so the signature does not verify.
    assert!(
        matches!(refused.first(), Some(Refusal::Signature(_))),
        "{refused:?}"
    );
    assert!(joined, "a later session over DNS completes: {events:?}");
}

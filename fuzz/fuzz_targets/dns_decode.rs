//! The DNS binding's decoders on arbitrary bytes: `Query::classify` on the input as a name
//! (alone and under the zone) and on a name whose header and data labels are the input's bytes
//! in base32, `AnswerPayload::from_strings` on the input read as TXT record data (length-
//! prefixed strings), and `TunnelRecord::from_bytes` on the input. None may panic, and whatever
//! decodes has one spelling: a query re-encodes to the name it was read from (up to case), a
//! payload to strings that decode to it again, a tunnel record to the very bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch_dns::header::HEADER_LEN;
use zerotouch_dns::{AnswerPayload, NameKind, Query, TunnelRecord, Zone};

const ZONE: &str = "zt.example.com";

/// RFC 4648 base32 without padding, lower-case (as the binding writes labels).
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Checks one name: no panic, and a whole query is the name the binding writes for it.
fn check_name(name: &str, zone: &Zone) {
    if let Ok(NameKind::Query(q)) = Query::classify(name, zone) {
        let written = match q.to_name(zone) {
            Ok(n) => n,
            Err(e) => panic!("a decoded query does not encode: {e:?}: {q:?}"),
        };
        let seen = name.strip_suffix('.').unwrap_or(name);
        assert!(
            written.eq_ignore_ascii_case(seen),
            "{seen:?} decodes to a query written {written:?}"
        );
        assert_eq!(Query::classify(&written, zone), Ok(NameKind::Query(q)));
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(zone) = Zone::new(ZONE) else {
        panic!("zone refused");
    };

    // The input as a name, alone and under the zone.
    let text = String::from_utf8_lossy(data);
    check_name(&text, &zone);
    check_name(&format!("{text}.{ZONE}"), &zone);

    // The input's bytes as a header (the first 15) and data, in base32 labels of 63
    // characters; the byte after the header picks a case flip, an outer label cut, and
    // whether the header's count of data labels (bits 5-3 of its first byte) is set to the
    // labels the name ends up with, so that whole queries come often.
    if let Some((header, rest)) = data.split_first_chunk::<HEADER_LEN>() {
        let mut header = *header;
        let (flags, payload) = rest.split_first().map_or((0, &[][..]), |(f, p)| (*f, p));
        let encoded = base32(payload);
        let mut labels: Vec<&str> = Vec::new();
        let mut left = encoded.as_str();
        while !left.is_empty() {
            let (label, tail) = left.split_at(left.len().min(63));
            labels.push(label);
            left = tail;
        }
        let keep = if flags & 0x80 != 0 {
            usize::from(flags & 0x0f).min(labels.len())
        } else {
            labels.len()
        };
        if flags & 0x20 != 0 {
            let count = u8::try_from(keep.min(7)).unwrap_or(7);
            header[0] = (header[0] & !0x38) | (count << 3);
        }
        let mut name = String::new();
        for label in labels[..keep].iter().rev() {
            name.push_str(label);
            name.push('.');
        }
        name.push_str(&base32(&header));
        name.push('.');
        name.push_str(ZONE);
        if flags & 0x40 != 0 {
            name = name.to_ascii_uppercase();
        }
        check_name(&name, &zone);
    }

    // The input as TXT record data: <length><bytes>, repeated.
    let mut strings: Vec<&[u8]> = Vec::new();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        strings.push(&tail[..len]);
        rest = &tail[len..];
    }
    if let Ok(payload) = AnswerPayload::from_strings(&strings) {
        let again = payload.to_strings();
        assert!(again.iter().all(|s| s.len() <= 255));
        assert_eq!(AnswerPayload::from_strings(&again), Ok(payload));
    }

    // The input as a stored tunnel record.
    if let Ok(record) = TunnelRecord::from_bytes(data) {
        assert_eq!(
            record.to_bytes(),
            data,
            "a second stored form of one record"
        );
    }
});

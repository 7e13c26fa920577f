//! The table "Cryptographic operations per session" in `docs/PROTOCOL.md` states what one
//! flow-1 session costs in cryptography, device side and server side. This test runs one
//! whole session in process (the real device session against the real setup service on the
//! in-memory store), each side with its own counting provider, and fails if a count differs
//! from the table: the table cannot drift from the code, and neither can the `physical_limit`
//! bench's crypto floor, which is computed from the same counts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zerotouch_benches::{Fleet, in_process_session};
use zerotouch_core::{CountingProvider, Instant, OperationCounts, RustCryptoProvider};
use zerotouch_server::ServiceConfig;
use zerotouch_store::MemoryStore;

const NOW: Instant = Instant(1_764_000_000_000);

/// `(device, server)` counts of one session.
async fn one_session() -> (OperationCounts, OperationCounts) {
    let fleet = Fleet::new(2, 1).unwrap();
    let (_, pinned) = fleet.ring().unwrap();
    let server_side = Arc::new(CountingProvider::new(RustCryptoProvider));
    let service = fleet
        .service_on(MemoryStore::new(), ServiceConfig::default(), NOW)
        .await
        .unwrap()
        .with_provider(server_side.clone());
    let device_side = Arc::new(CountingProvider::new(RustCryptoProvider));
    let before = server_side.counts();
    in_process_session(
        &service,
        &fleet.devices[0],
        &pinned,
        device_side.clone(),
        NOW,
        &mut ChaCha20Rng::seed_from_u64(2),
        &mut ChaCha20Rng::seed_from_u64(3),
    )
    .await
    .unwrap();
    (device_side.counts(), server_side.counts().since(&before))
}

/// The table's rows: operation → (device, server).
fn table() -> BTreeMap<String, (u64, u64)> {
    let spec = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md"))
        .unwrap();
    let section = spec
        .split("### 15.7 Cryptographic operations per session")
        .nth(1)
        .expect("PROTOCOL.md has section 15.7");
    let mut rows = BTreeMap::new();
    for line in section.lines().skip_while(|l| !l.starts_with('|')) {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if cells.len() < 3 || cells[0] == "operation" || cells[0].starts_with("---") {
            continue;
        }
        let (Ok(device), Ok(server)) = (cells[1].parse(), cells[2].parse()) else {
            panic!("row with a count that is not a number: {line}");
        };
        assert!(
            rows.insert(cells[0].to_string(), (device, server))
                .is_none(),
            "row listed twice: {line}"
        );
    }
    rows
}

#[tokio::test(flavor = "current_thread")]
async fn one_session_performs_exactly_the_operations_the_spec_lists() {
    let (device, server) = one_session().await;
    let measured: BTreeMap<String, (u64, u64)> = device
        .operations()
        .iter()
        .zip(server.operations())
        .map(|((name, d), (_, s))| (name.to_string(), (*d, s)))
        .collect();
    for (op, counts) in &measured {
        println!("| {op} | {} | {} |", counts.0, counts.1);
    }
    println!(
        "SHA-256 bytes: device {} server {}; sealed: device {} B in {} messages, server {} B in {}; opened: device {} B in {}, server {} B in {}",
        device.sha256_bytes,
        server.sha256_bytes,
        device.hpke_seal_bytes,
        device.hpke_seal_messages,
        server.hpke_seal_bytes,
        server.hpke_seal_messages,
        device.hpke_open_bytes,
        device.hpke_open_messages,
        server.hpke_open_bytes,
        server.hpke_open_messages
    );
    let stated = table();
    assert_eq!(
        stated, measured,
        "docs/PROTOCOL.md section 15.7 (left) differs from what one session performs (right)"
    );
}

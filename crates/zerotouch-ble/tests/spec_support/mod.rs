//! What `ble_vectors.rs` and `spec_ble.rs` both need: the spelling of UUIDs and error
//! variants the spec and the vectors use, and the repository's JSON files.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code
)]

use zerotouch_ble::Error;

/// A UUID in its canonical 8-4-4-4-12 form.
pub fn uuid(u: u128) -> String {
    let x = format!("{u:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

/// The error's variant, as the spec and the vectors name it.
pub fn error_name(e: &Error) -> String {
    format!("{e:?}")
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A file under `docs/` (`vectors/ble.json`), read as JSON.
pub fn docs_json(path: &str) -> serde_json::Value {
    let full = format!("{}/../../docs/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&full).unwrap())
        .unwrap_or_else(|e| panic!("{full}: {e}"))
}

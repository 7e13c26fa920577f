//! docs/PROTOCOL.md section 15 states constants the code defines: the sequence number of each
//! flow-1 tag, the HPKE labels and the size limits. This test reads the spec and fails if the
//! two disagree.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use zerotouch_core::MessageTag;
use zerotouch_core::flow1::binding::{CREDENTIALS_INFO, REPORT_INFO};
use zerotouch_core::flow1::{MAX_ENTRIES, MAX_REPORTED_NETWORKS, MAX_TRUSTED_KEYS, seq_of};

fn spec() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/PROTOCOL.md");
    let text = std::fs::read_to_string(path).unwrap();
    let start = text.find("## 15. Flow 1").expect("flow-1 section");
    let end = text[start..]
        .find("\n## 13.")
        .map_or(text.len(), |e| start + e);
    text[start..end].to_string()
}

#[test]
fn spec_states_the_sequence_number_of_every_flow1_tag() {
    let spec = spec();
    for tag in MessageTag::ALL.iter().filter(|t| t.to_u8() <= 0x08) {
        let cell = format!("{:?} 0x{:02x} | {} |", tag, tag.to_u8(), seq_of(*tag));
        assert!(spec.contains(&cell), "spec lacks `{cell}`");
    }
}

#[test]
fn spec_states_the_hpke_labels() {
    let spec = spec();
    for label in [REPORT_INFO, CREDENTIALS_INFO] {
        let quoted = format!("info = \"{}\"", std::str::from_utf8(label).unwrap());
        assert!(spec.contains(&quoted), "spec lacks `{quoted}`");
    }
}

#[test]
fn spec_states_the_list_limits() {
    let spec = spec();
    for needle in [
        format!("trusted: [ 1*{MAX_TRUSTED_KEYS} bstr"),
        format!("networks: [ 0*{MAX_REPORTED_NETWORKS} ["),
        format!("entries: [ 0*{MAX_ENTRIES} ["),
    ] {
        assert!(spec.contains(&needle), "spec lacks `{needle}`");
    }
}

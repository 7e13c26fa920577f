//! docs/PROTOCOL.md section 18 states constants the code defines: the sequence number of each
//! flow-2 tag (the fallbacks' included), the domain labels (the compared code's included), the
//! HPKE `info`, the Noise protocol and prologue. This test reads the spec and fails if the two
//! disagree.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use zerotouch_core::flow2::fallback::{SAS_COMMIT_LABEL, SAS_LABEL};
use zerotouch_core::flow2::{
    ANSWER_LABEL, COMMITMENT_LABEL, EXPECTED_ANSWER_INFO, NOISE_PROLOGUE, NOISE_PROTOCOL, seq_of,
};
use zerotouch_core::{Flow, MessageTag, Transport};

fn spec() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/PROTOCOL.md");
    let text = std::fs::read_to_string(path).unwrap();
    let start = text.find("## 18. Flow 2").expect("flow-2 section");
    let end = text[start + 1..]
        .find("\n## ")
        .map_or(text.len(), |e| start + 1 + e);
    text[start..end].to_string()
}

#[test]
fn spec_states_the_sequence_number_of_every_flow2_tag() {
    let spec = spec();
    let tags: Vec<MessageTag> = MessageTag::ALL
        .into_iter()
        .filter(|t| t.flow() == Some(Flow::PeerHandoff))
        .collect();
    assert_eq!(
        tags.len(),
        13,
        "flow-2 tags: 6 of the handoff, 7 of the fallbacks"
    );
    for tag in tags {
        let cell = format!("| {:?} 0x{:02x} | {} |", tag, tag.to_u8(), seq_of(tag));
        assert!(spec.contains(&cell), "spec lacks `{cell}`");
    }
}

#[test]
fn spec_states_the_domain_labels_and_the_hpke_info() {
    let spec = spec();
    let info = std::str::from_utf8(EXPECTED_ANSWER_INFO).unwrap();
    let sas_commit = std::str::from_utf8(SAS_COMMIT_LABEL).unwrap();
    let sas = std::str::from_utf8(SAS_LABEL).unwrap();
    for needle in [
        format!("CBOR[\"{COMMITMENT_LABEL}\","),
        format!("CBOR[\"{ANSWER_LABEL}\","),
        format!("info \"{info}\""),
        format!("SHA-256(\"{sas_commit}\" || b || Ns)"),
        format!("SHA-256(\"{sas}\" || b || Ns || Nj)"),
    ] {
        assert!(spec.contains(&needle), "spec lacks `{needle}`");
    }
}

#[test]
fn spec_states_the_noise_protocol_prologue_and_transcript_transport() {
    let spec = spec();
    let prologue = std::str::from_utf8(NOISE_PROLOGUE).unwrap();
    for needle in [
        format!("`{NOISE_PROTOCOL}`"),
        format!("prologue `\"{prologue}\"`"),
        format!("transport {} (local stream)", Transport::LocalStream as u8),
    ] {
        assert!(spec.contains(&needle), "spec lacks `{needle}`");
    }
}

//! HMAC-SHA-256 of the crypto provider against RFC 4231.
//!
//! The test cases are RFC 4231 section 4 ("Test Vectors"), subsections 4.2 to 4.8 (test cases
//! 1 to 7), HMAC-SHA-256 results only, with keys and data in hex as the RFC writes them.
//! Test case 5 gives only the first 128 bits of the MAC (truncation), so only that prefix is
//! compared.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use zerotouch_core::{CryptoProvider, RustCryptoProvider};

/// One RFC 4231 test case: number, key, data and the expected HMAC-SHA-256 (hex; for test
/// case 5, only the truncated 128-bit prefix).
struct Case {
    number: u8,
    key: &'static str,
    data: &'static str,
    mac: &'static str,
}

/// RFC 4231 section 4.2 to 4.8.
const CASES: [Case; 7] = [
    // Test case 1 (section 4.2): 20-byte key, short data.
    Case {
        number: 1,
        key: "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
        data: "4869205468657265",
        mac: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
    },
    // Test case 2 (section 4.3): key shorter than the output ("Jefe").
    Case {
        number: 2,
        key: "4a656665",
        data: "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
        mac: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    },
    // Test case 3 (section 4.4): combined key and data of 50 bytes.
    Case {
        number: 3,
        key: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        data: concat!(
            "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
            "dddddddddddddddddddd",
        ),
        mac: "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
    },
    // Test case 4 (section 4.5): 25-byte key, 50 bytes of data.
    Case {
        number: 4,
        key: "0102030405060708090a0b0c0d0e0f10111213141516171819",
        data: concat!(
            "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
            "cdcdcdcdcdcdcdcdcdcd",
        ),
        mac: "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    },
    // Test case 5 (section 4.6): output truncated to 128 bits: only the prefix is given.
    Case {
        number: 5,
        key: "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c",
        data: "546573742057697468205472756e636174696f6e",
        mac: "a3b6167473100ee06e0c796c2955552b",
    },
    // Test case 6 (section 4.7): key larger than the block (131 bytes): hashed first.
    Case {
        number: 6,
        key: concat!(
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "aaaaaaaaaaaaaaaaaaaaaa",
        ),
        data: concat!(
            "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d20",
            "48617368204b6579204669727374",
        ),
        mac: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    },
    // Test case 7 (section 4.8): key and data both larger than the block.
    Case {
        number: 7,
        key: concat!(
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "aaaaaaaaaaaaaaaaaaaaaa",
        ),
        data: concat!(
            "5468697320697320612074657374207573696e672061206c6172676572207468616e20626c6f636b",
            "2d73697a65206b657920616e642061206c6172676572207468616e20626c6f636b2d73697a652064",
            "6174612e20546865206b6579206e6565647320746f20626520686173686564206265666f72652062",
            "65696e6720757365642062792074686520484d414320616c676f726974686d2e",
        ),
        mac: "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    },
];

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn check(case: &Case, mac: &[u8; 32], how: &str) {
    let expected = h(case.mac);
    assert_eq!(
        hex::encode(&mac[..expected.len()]),
        case.mac,
        "RFC 4231 test case {} ({how})",
        case.number
    );
}

#[test]
fn hmac_sha256_matches_rfc4231_test_cases() {
    let provider = RustCryptoProvider;
    for case in &CASES {
        let mac = provider.hmac_sha256(&h(case.key), &[&h(case.data)]);
        check(case, &mac, "one part");
    }
    // Case 5 is the only truncated one; every other compares all 32 bytes.
    assert_eq!(CASES.iter().filter(|c| c.mac.len() < 64).count(), 1);
}

#[test]
fn hmac_sha256_over_several_parts_equals_the_mac_of_their_concatenation() {
    let provider = RustCryptoProvider;
    for case in &CASES {
        let key = h(case.key);
        let data = h(case.data);
        let whole = provider.hmac_sha256(&key, &[&data]);
        // Every two-way split, including empty first and last parts.
        for cut in 0..=data.len() {
            let (a, b) = data.split_at(cut);
            assert_eq!(
                provider.hmac_sha256(&key, &[a, b]),
                whole,
                "case {} cut {cut}",
                case.number
            );
        }
        // One byte per part, with empty parts in between, and no parts at all for empty data.
        let empty: &[u8] = &[];
        let bytes: Vec<&[u8]> = data.chunks(1).flat_map(|c| [c, empty]).collect();
        let mac = provider.hmac_sha256(&key, &bytes);
        check(case, &mac, "one byte per part");
        // Three uneven parts.
        let third = data.len() / 3;
        let (a, rest) = data.split_at(third);
        let (b, c) = rest.split_at(rest.len() / 2 + 1);
        check(case, &provider.hmac_sha256(&key, &[a, b, c]), "three parts");
    }
    // Data given as no parts at all is the MAC of the empty message.
    assert_eq!(
        provider.hmac_sha256(b"key", &[]),
        provider.hmac_sha256(b"key", &[b""])
    );
}

//! Cipher suites: the HPKE combination (RFC 9180) that seals secrets to a device.
//!
//! A suite is named by its three IANA HPKE identifiers, so no new registry is needed and an
//! implementation in another language maps it straight onto its HPKE library. Signature
//! algorithms are not negotiated: they follow from the keys (pinned server keys, the device
//! certificate).

use crate::NegotiationError;

/// An HPKE suite: KEM, KDF and AEAD identifiers from the IANA HPKE registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CipherSuite {
    /// HPKE KEM identifier.
    pub kem: u16,
    /// HPKE KDF identifier.
    pub kdf: u16,
    /// HPKE AEAD identifier.
    pub aead: u16,
}

impl CipherSuite {
    /// DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305.
    pub const X25519_SHA256_CHACHA20POLY1305: CipherSuite = CipherSuite {
        kem: 0x0020,
        kdf: 0x0001,
        aead: 0x0003,
    };
    /// DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305: for devices whose secure
    /// element and flash hold only P-256.
    pub const P256_SHA256_CHACHA20POLY1305: CipherSuite = CipherSuite {
        kem: 0x0010,
        kdf: 0x0001,
        aead: 0x0003,
    };

    /// The suites this build implements, in the server's order of preference.
    pub const SUPPORTED: &'static [CipherSuite] = &[
        CipherSuite::X25519_SHA256_CHACHA20POLY1305,
        CipherSuite::P256_SHA256_CHACHA20POLY1305,
    ];
}

/// Picks the first suite in `preference` (the chooser's order) that the peer offered.
pub fn negotiate_suite(
    offered: &[CipherSuite],
    preference: &[CipherSuite],
) -> Result<CipherSuite, NegotiationError> {
    preference
        .iter()
        .find(|s| offered.contains(s))
        .copied()
        .ok_or(NegotiationError::NoCommonSuite)
}

/// Checks, on the side that offered, that the chosen suite was offered.
pub fn check_suite_choice(
    offered: &[CipherSuite],
    chosen: CipherSuite,
) -> Result<(), NegotiationError> {
    if offered.contains(&chosen) {
        Ok(())
    } else {
        Err(NegotiationError::NotOffered)
    }
}

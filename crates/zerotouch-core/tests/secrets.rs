//! Secrets are redacted from Debug, compared in constant time, zeroizable, and well-formed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;
use zerotouch_core::*;

#[test]
fn secrets_are_redacted_from_debug() {
    let pass = Passphrase::new(b"correct horse battery").unwrap();
    let pin = Pin::new("482915").unwrap();
    let ds = DeviceSecret::new([0xAB; 32]);
    let sb = SecretBytes::from_slice(b"very secret");
    let key = SigningKey::from_secret_bytes(SignatureAlgorithm::Ed25519, &[0x5A; 32]).unwrap();
    let shown = format!(
        "{pass:?} {pin:?} {ds:?} {sb:?} {key:?} {:?}",
        SoftwareSigner::new(key.clone())
    );
    for leak in [
        "correct horse",
        "482915",
        "abab",
        "AB, AB",
        "171, 171",
        "very secret",
        "5a5a",
        "90, 90",
    ] {
        assert!(!shown.contains(leak), "{leak} leaked in {shown}");
    }
    assert!(shown.contains("<redacted>"));
}

#[test]
fn secrets_compare_by_value() {
    assert_eq!(Pin::new("482915").unwrap(), Pin::new("482915").unwrap());
    assert_ne!(Pin::new("482915").unwrap(), Pin::new("482916").unwrap());
    assert!(bool::from(
        SecretBytes::from_slice(b"abc").ct_eq(&SecretBytes::from_slice(b"abc"))
    ));
    assert!(!bool::from(
        SecretBytes::from_slice(b"abc").ct_eq(&SecretBytes::from_slice(b"abd"))
    ));
    assert!(!bool::from(
        SecretBytes::from_slice(b"abc").ct_eq(&SecretBytes::from_slice(b"abcd"))
    ));
    assert_ne!(DeviceSecret::new([1; 32]), DeviceSecret::new([2; 32]));
}

#[test]
fn secret_types_are_zeroized_on_drop() {
    // A compile-time check: each type must implement ZeroizeOnDrop.
    fn zeroized_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    zeroized_on_drop::<SecretBytes>();
    zeroized_on_drop::<Passphrase>();
    zeroized_on_drop::<Pin>();
    zeroized_on_drop::<DeviceSecret>();
    zeroized_on_drop::<ed25519_dalek::SigningKey>();
    zeroized_on_drop::<p256::ecdsa::SigningKey>();
    // And an explicit wipe clears the contents.
    let mut s = SecretBytes::from_slice(b"wipe me");
    s.zeroize();
    assert!(s.is_empty());
}

#[test]
fn passphrase_must_be_a_valid_wpa_credential() {
    assert!(Passphrase::new(b"12345678").is_ok());
    assert!(Passphrase::new(&[b'a'; 63]).is_ok());
    assert!(Passphrase::new(&[b'f'; 64]).is_ok()); // raw PSK in hex
    assert_eq!(
        Passphrase::new(b"1234567"),
        Err(SecretError::InvalidPassphrase)
    );
    assert_eq!(
        Passphrase::new(&[b'g'; 64]),
        Err(SecretError::InvalidPassphrase)
    );
    assert_eq!(
        Passphrase::new(b"tab\there!"),
        Err(SecretError::InvalidPassphrase)
    );
}

#[test]
fn pin_must_be_6_to_12_digits() {
    assert!(Pin::new("000000").is_ok());
    assert_eq!(Pin::new("12345"), Err(SecretError::InvalidPin));
    assert_eq!(Pin::new("1234567890123"), Err(SecretError::InvalidPin));
    assert_eq!(Pin::new("12345a"), Err(SecretError::InvalidPin));
}

#[test]
fn generated_pins_are_uniform_digits() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut counts = [0u32; 10];
    for _ in 0..2000 {
        let pin = Pin::generate(&mut rng, 6).unwrap();
        assert_eq!(pin.expose_secret().len(), 6);
        for c in pin.expose_secret().bytes() {
            counts[usize::from(c - b'0')] += 1;
        }
    }
    // 12,000 digits: each expected 1,200; a 6-sigma band (sd ~ 33) catches a skewed sampler.
    for c in counts {
        assert!((1000..1400).contains(&c), "{counts:?}");
    }
    assert!(Pin::generate(&mut rng, 5).is_err());
}

#[test]
fn device_secret_must_be_32_bytes() {
    assert!(DeviceSecret::from_slice(&[0; 32]).is_ok());
    assert_eq!(
        DeviceSecret::from_slice(&[0; 31]),
        Err(SecretError::InvalidDeviceSecret)
    );
}

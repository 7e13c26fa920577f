//! Records the suite stores: real keys, real PIN hashes.

use zerotouch_core::{
    DeviceSecret, Instant, KeyId, Passphrase, Pin, SignatureAlgorithm, SigningKey,
};
use zerotouch_store::{
    AccountId, Bands, DeviceIdentity, DeviceRecord, MIN_PIN_ITERATIONS, NewNetwork, PinRecord,
    SecurityType,
};

/// The PIN every fixture device has.
pub const PIN: &str = "482915";
/// The passphrase fixture networks have.
pub const PASSPHRASE: &[u8] = b"correct horse battery staple";

/// A P-256 device key from a seed byte (1..=255).
pub fn device_key(seed: u8) -> SigningKey {
    SigningKey::from_secret_bytes(SignatureAlgorithm::EcdsaP256Sha256, &[seed; 32])
        .expect("valid scalar")
}

/// A device with every field set.
pub fn device(seed: u8) -> DeviceRecord {
    let public = device_key(seed).public_key();
    DeviceRecord {
        key_id: public.key_id(),
        identity: DeviceIdentity::PublicKey(public.to_spki_der()),
        device_type: 7,
        serial: 1_000 + u64::from(seed),
        product_number: format!("ZT{seed:03}"),
        pin: Some(
            PinRecord::with_salt(&Pin::new(PIN).unwrap(), [seed; 16], MIN_PIN_ITERATIONS).unwrap(),
        ),
        device_secret: Some(DeviceSecret::new([seed ^ 0x5a; 32])),
        blocked: false,
        created_at: Instant(1_000),
    }
}

/// A device key id.
pub fn device_id(seed: u8) -> KeyId {
    device(seed).key_id
}

/// A WPA3 network for `account`.
pub fn network(account: AccountId, ssid: &str) -> NewNetwork {
    NewNetwork {
        account,
        ssid: ssid.as_bytes().to_vec(),
        passphrase: Passphrase::new(PASSPHRASE).unwrap(),
        security: SecurityType::Wpa3Personal,
        bands: Bands::GHZ_2_4.union(Bands::GHZ_5),
    }
}

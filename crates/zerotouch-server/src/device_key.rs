//! A device's identity key, as a hello names it or as the store records it. One place, so the
//! setup service and the association service read device records the same way.

use zerotouch_core::flow1::DeviceIdentityRef;
use zerotouch_core::{DeviceCertificate, PublicKey};
use zerotouch_store::{DeviceIdentity, DeviceRecord};

/// The device key a hello names (a certificate in clear proves nothing by itself; the key
/// proof in the credential request does).
pub(crate) fn identity_key(identity: &DeviceIdentityRef) -> Option<PublicKey> {
    match identity {
        DeviceIdentityRef::Certificate(der) => key_of(true, der),
        DeviceIdentityRef::PublicKey(der) => key_of(false, der),
    }
}

/// The device key a stored record holds.
pub(crate) fn record_key(device: &DeviceRecord) -> Option<PublicKey> {
    match &device.identity {
        DeviceIdentity::Certificate(der) => key_of(true, der),
        DeviceIdentity::PublicKey(der) => key_of(false, der),
    }
}

/// The public key in a DER certificate or SubjectPublicKeyInfo.
fn key_of(certificate: bool, der: &[u8]) -> Option<PublicKey> {
    if certificate {
        DeviceCertificate::from_der(der)
            .ok()
            .map(|c| c.public_key().clone())
    } else {
        PublicKey::from_spki_der(der).ok()
    }
}

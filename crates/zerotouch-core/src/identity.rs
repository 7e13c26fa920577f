//! Device identity: an X.509 device certificate and the key it carries.
//!
//! Devices have no trustworthy wall clock at first boot and their certificates may carry
//! notAfter 99991231235959Z (RFC 5280 section 4.1.2.5), so nothing here checks validity periods.
//! Chain validation to the manufacturer CA is the server's TLS layer's job; in the protocol a
//! certificate only names a key, and the key must prove itself by signing the transcript.

use alloc::vec::Vec;
use der::{Decode, Encode};

use crate::{CertificateError, KeyId, PublicKey};

/// A parsed device certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCertificate {
    der: Vec<u8>,
    public_key: PublicKey,
    serial_number: Vec<u8>,
}

impl DeviceCertificate {
    /// Parses a DER certificate and takes its Ed25519 or P-256 public key.
    pub fn from_der(der_bytes: &[u8]) -> Result<Self, CertificateError> {
        let cert = x509_cert::Certificate::from_der(der_bytes)
            .map_err(|_| CertificateError::MalformedDer)?;
        let tbs = cert.tbs_certificate();
        let spki = tbs
            .subject_public_key_info()
            .to_der()
            .map_err(|_| CertificateError::MalformedDer)?;
        let public_key = PublicKey::from_spki_der(&spki).map_err(|e| match e {
            crate::KeyError::UnsupportedAlgorithm => CertificateError::UnsupportedKey,
            _ => CertificateError::MalformedKey,
        })?;
        Ok(DeviceCertificate {
            der: der_bytes.to_vec(),
            public_key,
            serial_number: tbs.serial_number().as_bytes().to_vec(),
        })
    }

    /// The certificate as received.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The device's identity key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The identity key's id.
    pub fn key_id(&self) -> KeyId {
        self.public_key.key_id()
    }

    /// The certificate serial number, big-endian bytes as encoded.
    pub fn serial_number(&self) -> &[u8] {
        &self.serial_number
    }
}

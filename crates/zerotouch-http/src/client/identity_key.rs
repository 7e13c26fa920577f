//! The device's identity key as rustls's client-authentication key: the same key (a secure
//! element, in a product) signs the protocol's COSE structures and the TLS 1.3
//! CertificateVerify. The two never collide: a COSE `Sig_structure` starts with a CBOR array
//! header, a TLS 1.3 CertificateVerify input with 64 spaces and a context string, and the
//! device client speaks TLS 1.3 only (TLS 1.2 would sign raw handshake messages).

use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::pki_types::CertificateDer;
use rustls::sign::{CertifiedKey, Signer as TlsSigner, SigningKey as TlsSigningKey};
use rustls::{SignatureAlgorithm as TlsAlgorithm, SignatureScheme};
use zerotouch_core::{RustCryptoProvider, SignatureAlgorithm, Signer, ToBeSigned};

pub(crate) struct IdentityKey<S> {
    signer: Arc<S>,
}

impl<S> core::fmt::Debug for IdentityKey<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("IdentityKey(<device identity key>)")
    }
}

impl<S: Signer + 'static> IdentityKey<S> {
    pub(crate) fn new(signer: Arc<S>) -> Self {
        IdentityKey { signer }
    }

    fn scheme(&self) -> SignatureScheme {
        match self.signer.algorithm() {
            SignatureAlgorithm::EcdsaP256Sha256 => SignatureScheme::ECDSA_NISTP256_SHA256,
            SignatureAlgorithm::Ed25519 => SignatureScheme::ED25519,
        }
    }
}

impl<S: Signer + 'static> TlsSigningKey for IdentityKey<S> {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn TlsSigner>> {
        let scheme = self.scheme();
        offered.contains(&scheme).then(|| {
            Box::new(IdentitySigner {
                signer: Arc::clone(&self.signer),
                scheme,
            }) as Box<dyn TlsSigner>
        })
    }

    fn algorithm(&self) -> TlsAlgorithm {
        match self.signer.algorithm() {
            SignatureAlgorithm::EcdsaP256Sha256 => TlsAlgorithm::ECDSA,
            SignatureAlgorithm::Ed25519 => TlsAlgorithm::ED25519,
        }
    }
}

struct IdentitySigner<S> {
    signer: Arc<S>,
    scheme: SignatureScheme,
}

impl<S> core::fmt::Debug for IdentitySigner<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "IdentitySigner({:?})", self.scheme)
    }
}

impl<S: Signer + 'static> TlsSigner for IdentitySigner<S> {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        // The zerotouch signer signs SHA-256(message) for ECDSA P-256 and the message itself
        // for Ed25519: what TLS's ecdsa_secp256r1_sha256 and ed25519 schemes sign.
        let tbs = ToBeSigned::new(message.to_vec(), &RustCryptoProvider);
        let signature = self
            .signer
            .sign(&tbs)
            .map_err(|e| rustls::Error::General(format!("identity key: {e}")))?;
        match self.scheme {
            SignatureScheme::ECDSA_NISTP256_SHA256 => {
                // TLS carries ECDSA signatures DER-encoded; COSE carries r || s.
                let sig = p256::ecdsa::Signature::from_slice(&signature.bytes)
                    .map_err(|_| rustls::Error::General("identity key: bad signature".into()))?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            _ => Ok(signature.bytes.to_vec()),
        }
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

/// Always presents the device certificate.
#[derive(Debug)]
pub(crate) struct DeviceCertificateResolver(pub(crate) Arc<CertifiedKey>);

impl DeviceCertificateResolver {
    pub(crate) fn new<S: Signer + 'static>(certificate_der: Vec<u8>, signer: Arc<S>) -> Self {
        DeviceCertificateResolver(Arc::new(CertifiedKey::new(
            vec![CertificateDer::from(certificate_der)],
            Arc::new(IdentityKey::new(signer)),
        )))
    }
}

impl ResolvesClientCert for DeviceCertificateResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

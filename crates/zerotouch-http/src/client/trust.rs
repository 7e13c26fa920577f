//! How a client recognises the server: a CA, with or without a clock, or a pinned key.

use std::sync::Arc;

use der::Decode as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::tls::HandshakeSignatures;
use crate::HttpError;

/// What a client accepts as the server's certificate.
#[derive(Clone, PartialEq, Eq)]
pub enum ServerTrust {
    /// A chain to this CA (DER) naming the server. With `check_dates: false` (devices: no
    /// trustworthy clock at first boot) the chain is checked at the latest `notBefore` in it,
    /// so signatures, names and usages are checked and only "is it still valid now" is not.
    Ca {
        /// The CA certificate (DER).
        ca_der: Vec<u8>,
        /// Whether the client's clock is trusted to check validity periods.
        check_dates: bool,
    },
    /// The server certificate's SubjectPublicKeyInfo must hash (SHA-256) to this value,
    /// whoever signed it and whatever name it carries.
    PinnedKey {
        /// SHA-256 of the server key's DER SubjectPublicKeyInfo.
        spki_sha256: [u8; 32],
    },
}

impl core::fmt::Debug for ServerTrust {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ServerTrust::Ca { check_dates, .. } => f
                .debug_struct("Ca")
                .field("check_dates", check_dates)
                .finish_non_exhaustive(),
            ServerTrust::PinnedKey { spki_sha256 } => f
                .debug_struct("PinnedKey")
                .field("spki_sha256", &hex::encode(spki_sha256))
                .finish(),
        }
    }
}

impl ServerTrust {
    /// The pin for a certificate: SHA-256 of its SubjectPublicKeyInfo.
    pub fn pin_of_certificate(certificate_der: &[u8]) -> Result<Self, HttpError> {
        Ok(ServerTrust::PinnedKey {
            spki_sha256: spki_sha256(certificate_der)?,
        })
    }
}

fn parse(der: &[u8]) -> Result<x509_cert::Certificate, HttpError> {
    x509_cert::Certificate::from_der(der)
        .map_err(|e| HttpError::Certificate(format!("unparseable certificate: {e}")))
}

fn spki_sha256(certificate_der: &[u8]) -> Result<[u8; 32], HttpError> {
    use der::Encode as _;
    let cert = parse(certificate_der)?;
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| HttpError::Certificate(format!("unencodable key: {e}")))?;
    Ok(Sha256::digest(&spki).into())
}

/// The verifier behind [`ServerTrust`].
#[derive(Debug)]
pub(crate) struct TrustVerifier {
    trust: ServerTrust,
    roots: RootCertStore,
    provider: Arc<CryptoProvider>,
    handshake: HandshakeSignatures,
}

impl TrustVerifier {
    pub(crate) fn new(
        trust: ServerTrust,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, HttpError> {
        let mut roots = RootCertStore::empty();
        if let ServerTrust::Ca { ca_der, .. } = &trust {
            roots.add(CertificateDer::from(ca_der.clone()))?;
        }
        Ok(TrustVerifier {
            trust,
            roots,
            handshake: HandshakeSignatures(Arc::clone(&provider)),
            provider,
        })
    }
}

fn bad(e: HttpError) -> rustls::Error {
    rustls::Error::General(e.to_string())
}

/// The latest `notBefore` in the chain the server sent: a moment at which every certificate
/// in it was issued, used in place of a clock.
fn chain_time(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Result<UnixTime, HttpError> {
    let mut latest = core::time::Duration::ZERO;
    for der in core::iter::once(end_entity).chain(intermediates) {
        let cert = parse(der)?;
        let not_before = cert
            .tbs_certificate()
            .validity()
            .not_before
            .to_unix_duration();
        latest = latest.max(not_before);
    }
    Ok(UnixTime::since_unix_epoch(latest))
}

impl ServerCertVerifier for TrustVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.trust {
            ServerTrust::Ca { check_dates, .. } => {
                let at = if *check_dates {
                    now
                } else {
                    chain_time(end_entity, intermediates).map_err(bad)?
                };
                let parsed = ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_cert_signed_by_trust_anchor(
                    &parsed,
                    &self.roots,
                    intermediates,
                    at,
                    self.provider.signature_verification_algorithms.all,
                )?;
                rustls::client::verify_server_name(&parsed, server_name)?;
            }
            ServerTrust::PinnedKey { spki_sha256: pin } => {
                let presented = spki_sha256(end_entity).map_err(bad)?;
                if !bool::from(presented.ct_eq(pin)) {
                    return Err(rustls::Error::InvalidCertificate(
                        rustls::CertificateError::ApplicationVerificationFailure,
                    ));
                }
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.handshake.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.handshake.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.handshake.schemes()
    }
}

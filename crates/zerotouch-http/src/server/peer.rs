//! Who is on the other end of a connection. TLS proves the client holds the key of the
//! certificate it sent; which endpoints that certificate opens is decided per request,
//! against the CA of the role each endpoint needs, so a failure gets an HTTP status that says
//! what was wrong instead of a bare TLS alert.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore};
use rustls::{SignatureScheme, pki_types::TrustAnchor};
use zerotouch_core::{DeviceCertificate, PublicKey};

use crate::HttpError;
use crate::client::tls::HandshakeSignatures;

/// The roles a client certificate can have; each has its own CAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerRole {
    /// A device (manufacturer CA).
    Device,
    /// A registrar (registrar CA).
    Registrar,
    /// A provisioner relaying devices (provisioner CA).
    Provisioner,
}

impl PeerRole {
    pub(crate) fn ca_name(self) -> &'static str {
        match self {
            PeerRole::Device => "manufacturer",
            PeerRole::Registrar => "registrar",
            PeerRole::Provisioner => "provisioner",
        }
    }

    fn index(self) -> usize {
        match self {
            PeerRole::Device => 0,
            PeerRole::Registrar => 1,
            PeerRole::Provisioner => 2,
        }
    }
}

/// Why a certificate does not open an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateProblem {
    /// The client sent none.
    Missing,
    /// It does not chain to a CA of the role.
    NotTrusted,
    /// Its validity period is over.
    Expired,
    /// Its validity period has not begun.
    NotYetValid,
    /// It is not for client authentication, or otherwise unusable.
    Unusable(String),
}

/// The per-role verifiers.
#[derive(Debug)]
pub(crate) struct RoleVerifiers {
    verifiers: [Option<Arc<dyn ClientCertVerifier>>; 3],
    hints: Vec<DistinguishedName>,
}

fn roots(cas: &[CertificateDer<'static>]) -> Result<RootCertStore, HttpError> {
    let mut store = RootCertStore::empty();
    for ca in cas {
        store
            .add(ca.clone())
            .map_err(|e| HttpError::Certificate(format!("unusable CA certificate: {e}")))?;
    }
    Ok(store)
}

fn subject_of(anchor: &TrustAnchor<'_>) -> DistinguishedName {
    DistinguishedName::in_sequence(anchor.subject.as_ref())
}

impl RoleVerifiers {
    pub(crate) fn new(
        device: &[CertificateDer<'static>],
        registrar: &[CertificateDer<'static>],
        provisioner: &[CertificateDer<'static>],
        provider: &Arc<CryptoProvider>,
    ) -> Result<Self, HttpError> {
        let mut hints = Vec::new();
        let mut build = |cas: &[CertificateDer<'static>]| -> Result<_, HttpError> {
            if cas.is_empty() {
                return Ok(None);
            }
            let store = roots(cas)?;
            hints.extend(store.roots.iter().map(subject_of));
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(store), Arc::clone(provider))
                    .build()
                    .map_err(|e| HttpError::Certificate(e.to_string()))?;
            Ok(Some(verifier))
        };
        let verifiers = [build(device)?, build(registrar)?, build(provisioner)?];
        Ok(RoleVerifiers { verifiers, hints })
    }

    fn check(
        &self,
        role: PeerRole,
        chain: &[CertificateDer<'static>],
    ) -> Result<(), CertificateProblem> {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Err(CertificateProblem::Missing);
        };
        let verifier = self
            .verifiers
            .get(role.index())
            .and_then(Option::as_ref)
            .ok_or(CertificateProblem::NotTrusted)?;
        match verifier.verify_client_cert(leaf, intermediates, UnixTime::now()) {
            Ok(_) => Ok(()),
            Err(rustls::Error::InvalidCertificate(e)) => Err(match e {
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    CertificateProblem::Expired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    CertificateProblem::NotYetValid
                }
                CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                    CertificateProblem::NotTrusted
                }
                other => CertificateProblem::Unusable(format!("{other:?}")),
            }),
            Err(other) => Err(CertificateProblem::Unusable(other.to_string())),
        }
    }
}

/// A TLS-level verifier that takes any well-formed client certificate whose key signed the
/// handshake, and none: authorization is per endpoint, in [`Peer::authorize`]. The CA
/// subjects are still sent as hints so clients with several certificates pick the right one.
#[derive(Debug)]
pub(crate) struct ProofOfPossession {
    pub(crate) roles: Arc<RoleVerifiers>,
    pub(crate) handshake: HandshakeSignatures,
}

impl ClientCertVerifier for ProofOfPossession {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        // Registrars with API tokens, operators and load-balancer health checks have none.
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.roles.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Only well-formedness here; the chain is checked per endpoint and role.
        ParsedCertificate::try_from(end_entity)?;
        Ok(ClientCertVerified::assertion())
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

/// One connection's client: its address and certificate chain, with each role's verdict
/// computed once.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) remote: SocketAddr,
    chain: Vec<CertificateDer<'static>>,
    roles: Arc<RoleVerifiers>,
    verdicts: [OnceLock<Result<(), CertificateProblem>>; 3],
    key: OnceLock<Option<PublicKey>>,
}

impl Peer {
    pub(crate) fn new(
        remote: SocketAddr,
        chain: Vec<CertificateDer<'static>>,
        roles: Arc<RoleVerifiers>,
    ) -> Self {
        Peer {
            remote,
            chain,
            roles,
            verdicts: Default::default(),
            key: OnceLock::new(),
        }
    }

    /// The certificate's public key, if it sent one with a supported key.
    pub(crate) fn key(&self) -> Option<&PublicKey> {
        self.key
            .get_or_init(|| {
                let leaf = self.chain.first()?;
                DeviceCertificate::from_der(leaf)
                    .ok()
                    .map(|c| c.public_key().clone())
            })
            .as_ref()
    }

    pub(crate) fn has_certificate(&self) -> bool {
        !self.chain.is_empty()
    }

    /// Whether the certificate chains, now, to a CA of `role`; its key if so.
    pub(crate) fn authorize(&self, role: PeerRole) -> Result<&PublicKey, CertificateProblem> {
        let verdict = self
            .verdicts
            .get(role.index())
            .ok_or(CertificateProblem::NotTrusted)?
            .get_or_init(|| self.roles.check(role, &self.chain));
        verdict.clone()?;
        self.key().ok_or_else(|| {
            CertificateProblem::Unusable("its key is neither P-256 nor Ed25519".into())
        })
    }
}

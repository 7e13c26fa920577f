//! rustls client configurations: the device's (its identity key, TLS 1.3 only) and the
//! relay's and registrar's (a PKCS#8 key, or no certificate for token-holding registrars).

use std::sync::Arc;

use rustls::ClientConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use zerotouch_core::Signer;

use super::identity_key::DeviceCertificateResolver;
use super::trust::{ServerTrust, TrustVerifier};
use crate::HttpError;

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The handshake-signature checks both our verifiers delegate to: the provider's, unchanged.
#[derive(Debug)]
pub(crate) struct HandshakeSignatures(pub(crate) Arc<CryptoProvider>);

impl HandshakeSignatures {
    pub(crate) fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    pub(crate) fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    pub(crate) fn schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A device's TLS client configuration: it presents `certificate_der` and signs with
/// `identity` (the same key its protocol session signs with), speaks TLS 1.3 only, and
/// accepts the server `trust` names.
pub fn device_tls_config<S: Signer + 'static>(
    certificate_der: Vec<u8>,
    identity: Arc<S>,
    trust: ServerTrust,
) -> Result<Arc<ClientConfig>, HttpError> {
    let provider = provider();
    let verifier = TrustVerifier::new(trust, Arc::clone(&provider))?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(Arc::new(DeviceCertificateResolver::new(
            certificate_der,
            identity,
        )));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A relay's or registrar's TLS client configuration: a certificate chain and PKCS#8 key
/// when it authenticates with one, none for a registrar that uses an API token.
pub fn client_tls_config(
    client_certificate: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    trust: ServerTrust,
) -> Result<Arc<ClientConfig>, HttpError> {
    let provider = provider();
    let verifier = TrustVerifier::new(trust, Arc::clone(&provider))?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut config = match client_certificate {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

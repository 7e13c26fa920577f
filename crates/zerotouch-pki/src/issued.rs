//! A certificate issued together with its private key.

use core::fmt;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use zeroize::Zeroizing;

/// A certificate and the PKCS#8 private key it certifies. `Debug` never shows the key; the
/// key bytes are zeroized on drop.
#[derive(Clone)]
pub struct IssuedCertificate {
    pub(crate) certificate_der: Vec<u8>,
    pub(crate) issuer_der: Vec<u8>,
    pub(crate) private_key_pkcs8: Zeroizing<Vec<u8>>,
}

impl IssuedCertificate {
    /// The certificate (DER).
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The issuing CA's certificate (DER).
    pub fn issuer_der(&self) -> &[u8] {
        &self.issuer_der
    }

    /// The private key (PKCS#8 DER). Handle with care: this is a secret.
    pub fn private_key_pkcs8(&self) -> &[u8] {
        &self.private_key_pkcs8
    }

    /// The chain a TLS peer presents: the certificate alone (the verifier holds the CA).
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        vec![CertificateDer::from(self.certificate_der.clone())]
    }

    /// The private key in the form rustls takes.
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.private_key_pkcs8.to_vec()))
    }

    /// The certificate as PEM.
    pub fn certificate_pem(&self) -> String {
        crate::authority::pem("CERTIFICATE", &self.certificate_der)
    }

    /// The private key as PEM (`PRIVATE KEY`, PKCS#8), zeroized on drop.
    pub fn private_key_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(crate::authority::pem(
            "PRIVATE KEY",
            &self.private_key_pkcs8,
        ))
    }
}

impl fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field(
                "certificate_der",
                &format_args!("{} bytes", self.certificate_der.len()),
            )
            .field("private_key_pkcs8", &"<redacted>")
            .finish()
    }
}

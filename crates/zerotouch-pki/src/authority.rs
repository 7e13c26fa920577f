//! A certificate authority: its key, its self-signed certificate, and the certificates it
//! issues.

use core::fmt;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509CertificationRequest};
use zeroize::Zeroizing;
use zerotouch_core::{PublicKey, SignatureAlgorithm};

use crate::{IssuedCertificate, PkiError, Validity};

/// What a client certificate is for: each role has its own CA in a deployment, so a
/// certificate of one role is never accepted where another is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientRole {
    /// A registrar: a shop's scanner, a phone app or a retailer's service that associates
    /// devices with accounts.
    Registrar,
    /// A provisioner: a router or sponsor relaying a device's messages from a transport
    /// without TLS.
    Provisioner,
}

/// A CA with its key in memory (a factory keeps it in an HSM; this is for tests, the
/// command line and small deployments).
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    certificate_der: Vec<u8>,
    algorithm: SignatureAlgorithm,
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("algorithm", &self.algorithm)
            .field(
                "certificate_der",
                &format_args!("{} bytes", self.certificate_der.len()),
            )
            .finish_non_exhaustive()
    }
}

fn rcgen_algorithm(algorithm: SignatureAlgorithm) -> &'static rcgen::SignatureAlgorithm {
    match algorithm {
        SignatureAlgorithm::EcdsaP256Sha256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        SignatureAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
    }
}

/// A zerotouch public key as rcgen takes it: the raw point or key bytes and the algorithm.
struct SubjectKey<'a>(&'a PublicKey);

impl PublicKeyData for SubjectKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0.raw_bytes()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        rcgen_algorithm(self.0.algorithm())
    }
}

pub(crate) fn pem(tag: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(tag, der.to_vec()))
}

/// 16 random bytes with the top bit clear: a positive serial number no one can predict
/// (CA/Browser Forum practice, and unique without a counter).
fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| PkiError::Random)?;
    if let Some(first) = bytes.first_mut() {
        *first = (*first & 0x7f) | 0x01;
    }
    Ok(SerialNumber::from_slice(&bytes))
}

fn name(common_name: &str, organizational_unit: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationalUnitName, organizational_unit);
    dn.push(DnType::CommonName, common_name);
    dn
}

fn leaf_params(
    dn: DistinguishedName,
    validity: Validity,
    usage: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.not_before = validity.not_before()?;
    params.not_after = validity.not_after()?;
    params.serial_number = Some(random_serial()?);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

impl CertificateAuthority {
    /// A new CA named `common_name` with a fresh key of `algorithm`.
    pub fn new(
        common_name: &str,
        algorithm: SignatureAlgorithm,
        validity: Validity,
    ) -> Result<Self, PkiError> {
        let key = KeyPair::generate_for(rcgen_algorithm(algorithm))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(common_name, "zerotouch CA");
        params.not_before = validity.not_before()?;
        params.not_after = validity.not_after()?;
        params.serial_number = Some(random_serial()?);
        // Path length 0: this CA issues end-entity certificates only.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let certificate = params.self_signed(&key)?;
        Ok(CertificateAuthority {
            certificate_der: certificate.der().to_vec(),
            issuer: Issuer::new(params, key),
            algorithm,
        })
    }

    /// Loads a CA from its certificate and private key, both PEM (`CERTIFICATE`; `PRIVATE KEY`
    /// PKCS#8, or `EC PRIVATE KEY`): a CA made earlier by [`Self::new`] and saved with
    /// [`Self::to_pem`], or one made with `openssl`.
    ///
    /// Refused: a key other than P-256 or Ed25519, a certificate that is not a CA certificate
    /// (basic constraints with `cA` true), and a certificate whose public key is not the
    /// private key's (every certificate issued would then fail to verify).
    pub fn from_pem(certificate_pem: &str, private_key_pem: &str) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(private_key_pem)
            .map_err(|e| PkiError::PrivateKey(format!("not a readable private key PEM: {e}")))?;
        let algorithm = if key.algorithm() == &rcgen::PKCS_ECDSA_P256_SHA256 {
            SignatureAlgorithm::EcdsaP256Sha256
        } else if key.algorithm() == &rcgen::PKCS_ED25519 {
            SignatureAlgorithm::Ed25519
        } else {
            return Err(PkiError::UnsupportedKeyAlgorithm(format!(
                "CA key is {:?}; P-256 or Ed25519 expected",
                key.algorithm()
            )));
        };
        let cert = ::pem::parse(certificate_pem)
            .map_err(|e| PkiError::CaCertificate(format!("not a PEM block: {e}")))?;
        if cert.tag() != "CERTIFICATE" {
            return Err(PkiError::CaCertificate(format!(
                "PEM block is {:?}, not CERTIFICATE",
                cert.tag()
            )));
        }
        let certificate_der = cert.contents().to_vec();
        {
            let (rest, parsed) = x509_parser::parse_x509_certificate(&certificate_der)
                .map_err(|e| PkiError::CaCertificate(format!("not X.509 DER: {e}")))?;
            if !rest.is_empty() {
                return Err(PkiError::CaCertificate(
                    "trailing bytes after the certificate".into(),
                ));
            }
            let is_ca = matches!(
                parsed.tbs_certificate.basic_constraints(),
                Ok(Some(bc)) if bc.value.ca
            );
            if !is_ca {
                return Err(PkiError::CaCertificate(
                    "not a CA certificate (basic constraints cA is not true)".into(),
                ));
            }
            let certified = PublicKey::from_spki_der(parsed.tbs_certificate.subject_pki.raw)
                .map_err(|e| {
                    PkiError::UnsupportedKeyAlgorithm(format!("CA certificate key: {e}"))
                })?;
            if certified.algorithm() != algorithm || certified.raw_bytes() != key.public_key_raw() {
                return Err(PkiError::CaCertificate(
                    "the certificate does not certify this private key".into(),
                ));
            }
        }
        let issuer =
            Issuer::from_ca_cert_der(&CertificateDer::from(certificate_der.as_slice()), key)
                .map_err(|e| PkiError::CaCertificate(format!("rcgen refused it: {e}")))?;
        Ok(CertificateAuthority {
            issuer,
            certificate_der,
            algorithm,
        })
    }

    /// The CA certificate and its private key (PKCS#8) as PEM, for saving to files and loading
    /// again with [`Self::from_pem`]. The key's text is zeroized on drop.
    pub fn to_pem(&self) -> (String, Zeroizing<String>) {
        (
            self.certificate_pem(),
            Zeroizing::new(self.issuer.key().serialize_pem()),
        )
    }

    /// The CA certificate (DER): what verifiers are configured with.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The CA certificate as PEM.
    pub fn certificate_pem(&self) -> String {
        pem("CERTIFICATE", &self.certificate_der)
    }

    /// The CA's key algorithm.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// Issues a device certificate for `device_key` (its private half stays on the device),
    /// for client authentication, never expiring. The subject names the device type and
    /// serial number.
    pub fn issue_device(
        &self,
        device_key: &PublicKey,
        device_type: u32,
        serial: u64,
    ) -> Result<Vec<u8>, PkiError> {
        self.issue_device_with_validity(device_key, device_type, serial, Validity::forever())
    }

    /// [`Self::issue_device`] with an explicit validity (manufacturers whose policy sets one).
    pub fn issue_device_with_validity(
        &self,
        device_key: &PublicKey,
        device_type: u32,
        serial: u64,
        validity: Validity,
    ) -> Result<Vec<u8>, PkiError> {
        let params = leaf_params(
            name(&format!("{device_type}-{serial}"), "zerotouch device"),
            validity,
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let certificate = params.signed_by(&SubjectKey(device_key), &self.issuer)?;
        Ok(certificate.der().to_vec())
    }

    /// Issues a device certificate for the key a PKCS#10 certificate signing request (DER, or
    /// PEM `CERTIFICATE REQUEST`) names, exactly as [`Self::issue_device`] does: a device
    /// (or its secure element) made the key and signed the request, the factory never sees
    /// the private key. Only the request's key is used; its subject and requested extensions
    /// are ignored (the CA decides what a device certificate says).
    pub fn issue_device_from_csr(
        &self,
        csr: &[u8],
        device_type: u32,
        serial: u64,
    ) -> Result<Vec<u8>, PkiError> {
        let key = csr_public_key(csr)?;
        self.issue_device(&key, device_type, serial)
    }

    /// Issues a client certificate for a registrar or provisioner named `common_name`, with a
    /// fresh P-256 key.
    pub fn issue_client(
        &self,
        role: ClientRole,
        common_name: &str,
        validity: Validity,
    ) -> Result<IssuedCertificate, PkiError> {
        let unit = match role {
            ClientRole::Registrar => "zerotouch registrar",
            ClientRole::Provisioner => "zerotouch provisioner",
        };
        let params = leaf_params(
            name(common_name, unit),
            validity,
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        self.issue_with_new_key(params)
    }

    /// Issues a server certificate for `dns_names` (IP addresses are accepted too), with a
    /// fresh P-256 key.
    pub fn issue_server(
        &self,
        dns_names: &[&str],
        validity: Validity,
    ) -> Result<IssuedCertificate, PkiError> {
        let first = dns_names
            .first()
            .ok_or_else(|| PkiError::InvalidName("a server certificate needs a name".into()))?;
        let mut params = leaf_params(
            name(first, "zerotouch server"),
            validity,
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        params.subject_alt_names = dns_names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => (*n)
                    .to_string()
                    .try_into()
                    .map(SanType::DnsName)
                    .map_err(|_| PkiError::InvalidName((*n).to_string())),
            })
            .collect::<Result<_, _>>()?;
        self.issue_with_new_key(params)
    }

    fn issue_with_new_key(&self, params: CertificateParams) -> Result<IssuedCertificate, PkiError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let certificate = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCertificate {
            certificate_der: certificate.der().to_vec(),
            issuer_der: self.certificate_der.clone(),
            private_key_pkcs8: Zeroizing::new(key.serialize_der()),
        })
    }
}

/// The public key of a PKCS#10 certificate signing request (DER, or PEM `CERTIFICATE REQUEST`
/// / `NEW CERTIFICATE REQUEST`), after checking the request's self-signature: a request whose
/// signature does not verify under the key it names proves nothing and is refused, and so is
/// a key other than P-256 or Ed25519.
pub fn csr_public_key(csr: &[u8]) -> Result<PublicKey, PkiError> {
    let der = if csr.starts_with(b"-----BEGIN") {
        let block = ::pem::parse(csr)
            .map_err(|e| PkiError::MalformedSigningRequest(format!("PEM: {e}")))?;
        if block.tag() != "CERTIFICATE REQUEST" && block.tag() != "NEW CERTIFICATE REQUEST" {
            return Err(PkiError::MalformedSigningRequest(format!(
                "PEM block is {:?}, not CERTIFICATE REQUEST",
                block.tag()
            )));
        }
        block.into_contents()
    } else {
        csr.to_vec()
    };
    let (rest, request) = X509CertificationRequest::from_der(&der)
        .map_err(|e| PkiError::MalformedSigningRequest(format!("PKCS#10 DER: {e}")))?;
    if !rest.is_empty() {
        return Err(PkiError::MalformedSigningRequest(
            "trailing bytes after the request".into(),
        ));
    }
    let key = PublicKey::from_spki_der(request.certification_request_info.subject_pki.raw)
        .map_err(|e| PkiError::UnsupportedKeyAlgorithm(format!("signing request key: {e}")))?;
    request
        .verify_signature()
        .map_err(|_| PkiError::SigningRequestSignature)?;
    Ok(key)
}

//! A certificate authority: its key, its self-signed certificate, and the certificates it
//! issues.

use core::fmt;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
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

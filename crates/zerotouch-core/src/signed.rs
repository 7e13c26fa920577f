//! Signed messages: COSE_Sign1 (RFC 9052) bound to the envelope, the key's role and the
//! transcript.
//!
//! The protected header holds exactly the algorithm (-8 EdDSA or -7 ES256) and the key id. The
//! external AAD is
//!
//! ```text
//! CBOR[ "zerotouch-sig", role, version, flow, tag, session_id, seq, transcript_hash ]
//! ```
//!
//! so a signature covers the whole envelope header, the role the key signed in (a key is never
//! accepted outside its role) and everything the session agreed on before. Stock COSE
//! libraries verify our messages given that AAD.

use alloc::vec::Vec;
use ciborium::Value;
use coset::{AsCborValue, CoseSign1, CoseSign1Builder, HeaderBuilder, iana};

use crate::envelope::{Body, Envelope, Header};
use crate::{
    CryptoProvider, DecodeError, Error, KeyId, KeyLookup, KeyRole, PublicKey, SignRequest,
    Signature, SignatureAlgorithm, SignatureError, Signer, ToBeSigned, TranscriptHash,
};

const SIGNATURE_LABEL: &str = "zerotouch-sig";

/// The external AAD of a signature on a message with `header`, signed in `role` over `th`.
pub fn external_aad(header: &Header, role: KeyRole, th: &TranscriptHash) -> Vec<u8> {
    crate::cbor::encode(&Value::Array(alloc::vec![
        Value::Text(SIGNATURE_LABEL.into()),
        Value::Integer(role.to_u8().into()),
        Value::Integer(header.version.0.into()),
        Value::Integer(header.flow.to_u8().into()),
        Value::Integer(header.tag.to_u8().into()),
        Value::Bytes(header.session_id.0.to_vec()),
        Value::Integer(header.seq.into()),
        Value::Bytes(th.0.to_vec()),
    ]))
}

fn cose_alg(alg: SignatureAlgorithm) -> iana::Algorithm {
    match alg {
        SignatureAlgorithm::Ed25519 => iana::Algorithm::EdDSA,
        SignatureAlgorithm::EcdsaP256Sha256 => iana::Algorithm::ES256,
    }
}

fn protected_header(alg: SignatureAlgorithm, key_id: &KeyId) -> coset::Header {
    HeaderBuilder::new()
        .algorithm(cose_alg(alg))
        .key_id(key_id.0.to_vec())
        .build()
}

/// The one accepted protected header: `{1: alg, 4: kid}` in this order, shortest encodings:
/// `a2 01 26|27 04 58 20 <32-byte key id>`.
fn parse_protected(bytes: &[u8]) -> Result<(SignatureAlgorithm, KeyId), DecodeError> {
    let (Some(prefix), Some(kid)) = (bytes.get(..6), bytes.get(6..)) else {
        return Err(DecodeError::Cose(
            "protected header must hold only alg and kid",
        ));
    };
    let algorithm = match prefix {
        [0xa2, 0x01, 0x27, 0x04, 0x58, 0x20] => SignatureAlgorithm::Ed25519,
        [0xa2, 0x01, 0x26, 0x04, 0x58, 0x20] => SignatureAlgorithm::EcdsaP256Sha256,
        _ => {
            return Err(DecodeError::Cose(
                "protected header must be {1: -8 or -7, 4: 32-byte kid}",
            ));
        }
    };
    let key_id = KeyId::from_slice(kid).ok_or(DecodeError::Cose("key id must be 32 bytes"))?;
    Ok((algorithm, key_id))
}

/// A received COSE_Sign1 body, structurally valid but not yet verified. Its payload is reachable
/// only through a `verify` call.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedBody {
    cose: CoseSign1,
    algorithm: SignatureAlgorithm,
    key_id: KeyId,
    signature: Signature,
}

impl SignedBody {
    pub(crate) fn from_value(value: Value) -> Result<Self, DecodeError> {
        // Parse by hand against the one accepted form before any general COSE parser sees the
        // bytes: a protected header is a byte string that a generic parser would decode with its
        // own (deep) recursion limit, and a crafted one of ~190 bytes overflows a small stack.
        let Value::Array(items) = value else {
            return Err(DecodeError::Cose("COSE_Sign1 must be an array"));
        };
        let [protected, unprotected, payload, signature]: [Value; 4] = items
            .try_into()
            .map_err(|_| DecodeError::Cose("COSE_Sign1 must have 4 elements"))?;
        let Value::Bytes(protected) = protected else {
            return Err(DecodeError::Cose("protected header must be a byte string"));
        };
        let (algorithm, key_id) = parse_protected(&protected)?;
        if !matches!(&unprotected, Value::Map(m) if m.is_empty()) {
            return Err(DecodeError::Cose("unprotected header must be empty"));
        }
        let Value::Bytes(payload) = payload else {
            return Err(DecodeError::Cose("payload must be attached"));
        };
        let Value::Bytes(signature) = signature else {
            return Err(DecodeError::Cose("signature must be a byte string"));
        };
        let signature = Signature::from_slice(algorithm, &signature)
            .map_err(|_| DecodeError::Cose("signature must be 64 bytes"))?;
        let mut cose = CoseSign1Builder::new()
            .protected(protected_header(algorithm, &key_id))
            .payload(payload)
            .signature(signature.bytes.to_vec())
            .build();
        cose.protected.original_data = Some(protected);
        Ok(SignedBody {
            cose,
            algorithm,
            key_id,
            signature,
        })
    }

    pub(crate) fn to_value(&self) -> Value {
        // A structure that decoded (or that we built) always re-encodes; Null would fail to
        // decode on the other side rather than panic here.
        self.cose.clone().to_cbor_value().unwrap_or(Value::Null)
    }

    /// The same body with its signature in canonical form (see [`Signature::normalized`]).
    pub fn normalized(&self) -> SignedBody {
        let signature = self.signature.normalized();
        let mut out = self.clone();
        out.cose.signature = signature.bytes.to_vec();
        out.signature = signature;
        out
    }

    /// The key id the sender claims signed it.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// The algorithm the sender claims.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// The 64-byte signature as received.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The exact input the signature must cover for a message with `header`, signed in `role`
    /// over `th`: for verifying elsewhere (a secure element, another library).
    pub fn to_be_signed(
        &self,
        header: &Header,
        role: KeyRole,
        th: &TranscriptHash,
        provider: &dyn CryptoProvider,
    ) -> ToBeSigned {
        ToBeSigned::new(
            self.cose.tbs_data(&external_aad(header, role, th)),
            provider,
        )
    }

    /// Verifies under one known key (the server checking a device's proof with the key from
    /// the association). Returns the verified payload.
    pub fn verify(
        &self,
        header: &Header,
        role: KeyRole,
        th: &TranscriptHash,
        key: &PublicKey,
        provider: &dyn CryptoProvider,
    ) -> Result<&[u8], SignatureError> {
        if key.key_id_with(provider) != self.key_id {
            return Err(SignatureError::KeyIdMismatch);
        }
        if key.algorithm() != self.algorithm {
            return Err(SignatureError::AlgorithmMismatch);
        }
        if header.tag.signer_role() != Some(role) {
            return Err(SignatureError::RoleNotForTag);
        }
        let tbs = ToBeSigned::new(
            self.cose.tbs_data(&external_aad(header, role, th)),
            provider,
        );
        provider.verify_signature(key, &tbs, &self.signature)?;
        Ok(self.cose.payload.as_deref().unwrap_or(&[]))
    }

    /// Verifies under whichever trusted key of `role` has the claimed key id (a device checking
    /// a server message against its pinned keys). Returns the verified payload.
    pub fn verify_trusted(
        &self,
        header: &Header,
        role: KeyRole,
        th: &TranscriptHash,
        keys: &dyn KeyLookup,
        provider: &dyn CryptoProvider,
    ) -> Result<&[u8], SignatureError> {
        let key = keys
            .trusted_key(role, &self.key_id)
            .ok_or(SignatureError::UnknownKey)?;
        self.verify(header, role, th, key, provider)
    }
}

/// A message waiting for its signature: the device session emits the [`SignRequest`], the
/// firmware has its secure element sign it, and [`PendingSignature::complete`] checks the answer
/// and yields the envelope.
#[derive(Debug, Clone)]
pub struct PendingSignature {
    header: Header,
    cose: CoseSign1,
    request: SignRequest,
}

impl PendingSignature {
    /// Prepares the signature of `payload` as a message with `header`, in `role`, over `th`, by
    /// the key `key_id` of `algorithm`.
    pub fn new(
        header: Header,
        role: KeyRole,
        th: &TranscriptHash,
        payload: Vec<u8>,
        key_id: KeyId,
        algorithm: SignatureAlgorithm,
        provider: &dyn CryptoProvider,
    ) -> Result<Self, Error> {
        match header.tag.signer_role() {
            None => return Err(DecodeError::WrongBodyKind(header.tag.to_u8()).into()),
            Some(r) if r != role => return Err(SignatureError::RoleNotForTag.into()),
            Some(_) => {}
        }
        let protected = protected_header(algorithm, &key_id);
        // Fix the protected header's bytes now, so the bytes signed are the bytes sent and a
        // built message equals the same message decoded.
        let protected_bytes = coset::CborSerializable::to_vec(protected.clone())
            .map_err(|_| DecodeError::Cose("protected header does not encode"))?;
        let mut cose = CoseSign1Builder::new()
            .protected(protected)
            .payload(payload)
            .build();
        cose.protected.original_data = Some(protected_bytes);
        let tbs = ToBeSigned::new(cose.tbs_data(&external_aad(&header, role, th)), provider);
        Ok(PendingSignature {
            header,
            cose,
            request: SignRequest {
                key_id,
                algorithm,
                tbs,
            },
        })
    }

    /// What must be signed.
    pub fn request(&self) -> &SignRequest {
        &self.request
    }

    /// Takes the signature, checks it answers the request under `key`, and builds the envelope.
    /// The check costs one verification; it catches a faulty or swapped secure element on the
    /// device rather than at the server.
    pub fn complete(
        self,
        signature: Signature,
        key: &PublicKey,
        provider: &dyn CryptoProvider,
    ) -> Result<Envelope, SignatureError> {
        self.request.check_response(key, &signature, provider)?;
        Ok(self.into_envelope(signature))
    }

    fn into_envelope(self, signature: Signature) -> Envelope {
        let mut cose = self.cose;
        cose.signature = signature.bytes.to_vec();
        Envelope {
            header: self.header,
            body: Body::Signed(alloc::boxed::Box::new(SignedBody {
                cose,
                algorithm: signature.algorithm,
                key_id: self.request.key_id,
                signature,
            })),
        }
    }
}

/// Signs `payload` as a message with `header` in one step with a [`Signer`] (server keys,
/// HSM, KMS), without re-verifying the signature (see [`PendingSignature::complete`]).
pub fn sign_message(
    header: Header,
    role: KeyRole,
    th: &TranscriptHash,
    payload: Vec<u8>,
    signer: &dyn Signer,
    provider: &dyn CryptoProvider,
) -> Result<Envelope, Error> {
    let pending = PendingSignature::new(
        header,
        role,
        th,
        payload,
        signer.key_id(),
        signer.algorithm(),
        provider,
    )?;
    let signature = provider.sign(signer, &pending.request().tbs)?;
    if signature.algorithm != signer.algorithm() {
        return Err(SignatureError::ResponseMismatch.into());
    }
    // No verification of our own signature here: a server signs for every session, and a
    // second verification would double its signing cost. Devices use `complete`, which checks.
    Ok(pending.into_envelope(signature))
}

//! Signed orders to open a setup network (seed 000, paragraph 0053, claim 6): after a registrar
//! ties a new device to an account, the setup server may tell one of the owner's already-joined
//! devices to open a restricted setup network for that device, for a limited time.
//!
//! The order is a signed envelope (tag `OpenSetupNetworkOrder`, role `ProvisionerOrder`). Its
//! transcript binds the order id and the receiving device's key, so an order for one device
//! cannot be replayed to another:
//!
//! ```text
//! th   = Transcript(flow 1, transport HTTPS, session_id = order_id) + PeerKey(provisioner SPKI)
//! body = [ order_id: bstr .size 16, provisioner_key_id: bstr .size 32,
//!          device_key_id: bstr .size 32, issued_at_ms: uint, not_after_ms: uint ]
//! ```
//!
//! Times are Unix milliseconds: an already-joined device has network time. The receiver
//! refuses an order that has expired, that would stay open longer than its policy allows, that
//! names another provisioner, or that it has already carried out.

use alloc::vec::Vec;
use ciborium::Value;
use zerotouch_core::{
    CryptoProvider, DecodeError, Envelope, Flow, Header, KeyId, KeyRole, MessageTag,
    ProtocolVersion, PublicKey, SessionId, Signer, Transcript, TranscriptField, TranscriptHash,
    Transport, cbor, sign_message,
};

use crate::OrderError;

/// The content of an open-network order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenNetworkOrder {
    /// Unique id; also the envelope's session id.
    pub order_id: [u8; 16],
    /// The already-joined device that is to open the network.
    pub provisioner_key_id: KeyId,
    /// The one new device the network is opened for.
    pub device_key_id: KeyId,
    /// When the server issued the order (Unix ms).
    pub issued_at_ms: u64,
    /// When the network must close again (Unix ms).
    pub not_after_ms: u64,
}

/// The transcript an order is signed over.
pub fn order_transcript(
    provider: &dyn CryptoProvider,
    order_id: &[u8; 16],
    provisioner: &PublicKey,
) -> TranscriptHash {
    let mut t = Transcript::new(
        provider,
        Flow::ServerSetup,
        Transport::Https,
        &SessionId(*order_id),
    );
    t.absorb(
        provider,
        TranscriptField::PeerKey,
        &provisioner.to_spki_der(),
    );
    t.hash()
}

impl OpenNetworkOrder {
    fn encode_body(&self) -> Vec<u8> {
        cbor::encode(&Value::Array(alloc::vec![
            Value::Bytes(self.order_id.to_vec()),
            Value::Bytes(self.provisioner_key_id.0.to_vec()),
            Value::Bytes(self.device_key_id.0.to_vec()),
            Value::Integer(self.issued_at_ms.into()),
            Value::Integer(self.not_after_ms.into()),
        ]))
    }

    fn decode_body(bytes: &[u8]) -> Result<Self, OrderError> {
        // Canonical, bounded decoding as for every zerotouch message body.
        let [id, prov, dev, issued, not_after]: [Value; 5] =
            cbor::array(cbor::decode(bytes)?, "order", 5)?
                .try_into()
                .map_err(|_| DecodeError::OutOfRange { field: "order" })?;
        Ok(OpenNetworkOrder {
            order_id: cbor::fixed_bytes::<16>(id, "order_id")?,
            provisioner_key_id: KeyId(cbor::fixed_bytes::<32>(prov, "provisioner_key_id")?),
            device_key_id: KeyId(cbor::fixed_bytes::<32>(dev, "device_key_id")?),
            issued_at_ms: cbor::uint(&issued, "issued_at_ms", u64::MAX)?,
            not_after_ms: cbor::uint(&not_after, "not_after_ms", u64::MAX)?,
        })
    }

    /// Signs the order for `provisioner` with the server's order key: the setup server's side.
    pub fn sign(
        &self,
        provisioner: &PublicKey,
        signer: &dyn Signer,
        provider: &dyn CryptoProvider,
    ) -> Result<Vec<u8>, zerotouch_core::Error> {
        let header = Header {
            version: ProtocolVersion::V1,
            flow: Flow::ServerSetup,
            tag: MessageTag::OpenSetupNetworkOrder,
            session_id: SessionId(self.order_id),
            seq: 0,
        };
        let th = order_transcript(provider, &self.order_id, provisioner);
        Ok(sign_message(
            header,
            KeyRole::ProvisionerOrder,
            &th,
            self.encode_body(),
            signer,
            provider,
        )?
        .encode())
    }

    /// Decodes and verifies an order received by `provisioner` against its trusted order keys.
    /// Checks signature, role and addressee; expiry and replay are the engine's to check.
    pub fn verify(
        bytes: &[u8],
        provisioner: &PublicKey,
        trusted: &dyn zerotouch_core::KeyLookup,
        provider: &dyn CryptoProvider,
    ) -> Result<Self, OrderError> {
        let env = Envelope::decode(bytes)?;
        if env.header.tag != MessageTag::OpenSetupNetworkOrder || env.header.seq != 0 {
            return Err(OrderError::WrongMessage);
        }
        let zerotouch_core::Body::Signed(body) = &env.body else {
            return Err(OrderError::WrongMessage);
        };
        let th = order_transcript(provider, &env.header.session_id.0, provisioner);
        let payload = body.verify_trusted(
            &env.header,
            KeyRole::ProvisionerOrder,
            &th,
            trusted,
            provider,
        )?;
        let order = Self::decode_body(payload)?;
        if order.order_id != env.header.session_id.0 {
            return Err(OrderError::WrongMessage);
        }
        if order.provisioner_key_id != provisioner.key_id() {
            return Err(OrderError::NotForThisDevice);
        }
        Ok(order)
    }
}

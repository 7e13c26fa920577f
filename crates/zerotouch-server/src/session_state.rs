//! What a setup session remembers between its two round trips. It lives in the store (sealed
//! at rest there), so any server process can continue any session.

use core::fmt;

use ciborium::Value;
use zeroize::Zeroizing;
use zerotouch_core::{CipherSuite, DecodeError, KeyId, Nonce, TranscriptHash, Transport, cbor};
use zerotouch_store::AccountId;

/// Where a setup session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The proof went out; the credential request is awaited.
    AwaitingRequest = 1,
    /// Credentials went out (or were refused); nothing more is accepted.
    Finished = 2,
    /// One credential request (its digest in `claimed_by`) holds the session: no other
    /// request will be answered, and that one may be run again if its process died.
    Claimed = 3,
}

/// The session state. `Debug` leaves out the sealing key.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SetupSession {
    pub stage: Stage,
    pub device: KeyId,
    pub account: AccountId,
    pub suite: CipherSuite,
    pub server_key: KeyId,
    /// `t2`: the transcript after the proof.
    pub transcript: TranscriptHash,
    pub server_nonce: Nonce,
    pub pin_required: bool,
    pub transport: Transport,
    /// The ephemeral key the report is sealed to; dropped once the session is finished.
    pub sealing_key: Zeroizing<Vec<u8>>,
    /// The canonical digest of the credential request that claimed the session.
    pub claimed_by: Option<[u8; 32]>,
}

impl fmt::Debug for SetupSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetupSession")
            .field("stage", &self.stage)
            .field("device", &self.device)
            .field("account", &self.account)
            .field("server_key", &self.server_key)
            .field("pin_required", &self.pin_required)
            .finish_non_exhaustive()
    }
}

fn suite_bytes(s: CipherSuite) -> Vec<u8> {
    [s.kem, s.kdf, s.aead]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect()
}

impl SetupSession {
    /// The stored bytes (the caller hands them to the store, which seals them).
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut items = vec![
            Value::Integer((self.stage as u8).into()),
            Value::Bytes(self.device.0.to_vec()),
            Value::Integer(self.account.0.into()),
            Value::Bytes(suite_bytes(self.suite)),
            Value::Bytes(self.server_key.0.to_vec()),
            Value::Bytes(self.transcript.0.to_vec()),
            Value::Bytes(self.server_nonce.0.to_vec()),
            Value::Bool(self.pin_required),
            Value::Integer(self.transport.to_u8().into()),
            Value::Bytes(self.sealing_key.to_vec()),
        ];
        // Sessions stored before claims existed have ten fields: the claim is an 11th.
        if let Some(digest) = self.claimed_by {
            items.push(Value::Bytes(digest.to_vec()));
        }
        let value = Value::Array(items);
        let out = Zeroizing::new(cbor::encode(&value));
        if let Value::Array(mut items) = value
            && let Some(Value::Bytes(key)) = items.get_mut(9)
        {
            zeroize::Zeroize::zeroize(key);
        }
        out
    }

    /// Decodes stored bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let Value::Array(mut items) = cbor::decode(bytes)? else {
            return Err(DecodeError::UnexpectedType {
                field: "setup_session",
                expected: "array",
            });
        };
        let claimed_by = if items.len() == 11 {
            items
                .pop()
                .map(|v| cbor::fixed_bytes(v, "claimed_by"))
                .transpose()?
        } else {
            None
        };
        let [
            stage,
            device,
            account,
            suite,
            server_key,
            th,
            nonce,
            pin,
            transport,
            key,
        ] = cbor::fields(Value::Array(items), "setup_session")?;
        let stage = match cbor::uint(&stage, "stage", 3)? {
            1 => Stage::AwaitingRequest,
            2 => Stage::Finished,
            3 => Stage::Claimed,
            _ => return Err(DecodeError::OutOfRange { field: "stage" }),
        };
        let account = match account {
            Value::Integer(i) => i64::try_from(i128::from(i))
                .map_err(|_| DecodeError::OutOfRange { field: "account" })?,
            _ => {
                return Err(DecodeError::UnexpectedType {
                    field: "account",
                    expected: "integer",
                });
            }
        };
        let suite: [u8; 6] = cbor::fixed_bytes(suite, "suite")?;
        let [a, b, c, d, e, f] = suite;
        let Value::Bool(pin_required) = pin else {
            return Err(DecodeError::UnexpectedType {
                field: "pin_required",
                expected: "bool",
            });
        };
        Ok(SetupSession {
            stage,
            device: KeyId(cbor::fixed_bytes(device, "device")?),
            account: AccountId(account),
            suite: CipherSuite {
                kem: u16::from_be_bytes([a, b]),
                kdf: u16::from_be_bytes([c, d]),
                aead: u16::from_be_bytes([e, f]),
            },
            server_key: KeyId(cbor::fixed_bytes(server_key, "server_key")?),
            transcript: TranscriptHash(cbor::fixed_bytes(th, "transcript")?),
            server_nonce: Nonce(cbor::fixed_bytes(nonce, "server_nonce")?),
            pin_required,
            transport: Transport::from_u64(cbor::uint(&transport, "transport", 255)?)?,
            sealing_key: Zeroizing::new(cbor::bytes(key, "sealing_key")?),
            claimed_by,
        })
    }
}

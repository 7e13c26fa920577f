//! The outcome report after joining (its own short exchange over the home network) and the
//! server's signed acknowledgement.

use alloc::vec::Vec;
use ciborium::Value;

use super::uint_value;
use crate::{DecodeError, Message, MessageTag, Nonce, SessionId, cbor};

/// How joining went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum JoinOutcome {
    /// Joined, with an address.
    Joined = 1,
    /// The access point refused the passphrase.
    WrongPassphrase = 2,
    /// The network was not found any more.
    NetworkGone = 3,
    /// Associated, but DHCP gave no address.
    DhcpFailed = 4,
}

/// `outcome_report = [ setup_session: bstr .size 16, ssid: bstr, outcome: uint,
/// device_nonce: bstr .size 16 ]`, signed by the device's identity key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeReport {
    /// The setup session this reports on.
    pub setup_session: SessionId,
    /// The network it tried last.
    pub ssid: Vec<u8>,
    /// How it went.
    pub outcome: JoinOutcome,
    /// A fresh nonce, echoed in the acknowledgement.
    pub device_nonce: Nonce,
}

impl Message for OutcomeReport {
    const TAG: MessageTag = MessageTag::OutcomeReport;

    fn encode_body(&self) -> Vec<u8> {
        cbor::encode(&Value::Array(alloc::vec![
            Value::Bytes(self.setup_session.0.to_vec()),
            Value::Bytes(self.ssid.clone()),
            uint_value(self.outcome as u64),
            Value::Bytes(self.device_nonce.0.to_vec()),
        ]))
    }

    fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
        let [session, ssid, outcome, nonce] = cbor::fields(cbor::decode(bytes)?, "outcome_report")?;
        let outcome = match cbor::uint(&outcome, "outcome", 4)? {
            1 => JoinOutcome::Joined,
            2 => JoinOutcome::WrongPassphrase,
            3 => JoinOutcome::NetworkGone,
            4 => JoinOutcome::DhcpFailed,
            _ => return Err(DecodeError::OutOfRange { field: "outcome" }),
        };
        Ok(OutcomeReport {
            setup_session: SessionId(cbor::fixed_bytes::<16>(session, "setup_session")?),
            ssid: cbor::bytes_in(ssid, "ssid", 1, 32)?,
            outcome,
            device_nonce: Nonce(cbor::fixed_bytes::<16>(nonce, "device_nonce")?),
        })
    }
}

/// `outcome_ack = [ device_nonce: bstr .size 16 ]`, signed by the SetupSigning key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeAck {
    /// The report's nonce.
    pub device_nonce: Nonce,
}

impl Message for OutcomeAck {
    const TAG: MessageTag = MessageTag::OutcomeAck;

    fn encode_body(&self) -> Vec<u8> {
        cbor::encode(&Value::Array(alloc::vec![Value::Bytes(
            self.device_nonce.0.to_vec()
        )]))
    }

    fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
        let [nonce] = cbor::fields(cbor::decode(bytes)?, "outcome_ack")?;
        Ok(OutcomeAck {
            device_nonce: Nonce(cbor::fixed_bytes::<16>(nonce, "device_nonce")?),
        })
    }
}

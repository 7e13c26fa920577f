//! The credential request: the device's session key and its sealed report, signed with its
//! identity key; and the report itself (PIN and visible networks), which only the server reads.

use alloc::vec::Vec;
use ciborium::Value;
use zeroize::{Zeroize, Zeroizing};

use super::server_proof::MAX_KEM_KEY_LEN;
use super::{small_uint, uint_value};
use crate::{DecodeError, Message, MessageTag, Pin, cbor};

/// Most networks a report may list.
pub const MAX_REPORTED_NETWORKS: usize = 40;
/// Longest sealed report (40 networks at their largest, plus the PIN and the AEAD tag).
const MAX_SEALED_REPORT_LEN: usize = 2048;

/// The report sealed to the server's ephemeral key (HPKE, one message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedReport {
    /// HPKE encapsulated key.
    pub encapsulated_key: Vec<u8>,
    /// The sealed [`DeviceReport`].
    pub ciphertext: Vec<u8>,
}

/// `credential_request = [ session_key: bstr, [ enc: bstr, ciphertext: bstr ] ]`, the payload
/// of a COSE_Sign1 by the device's identity key over the transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRequest {
    /// The device's per-session public key (the chosen suite's KEM): credentials are sealed
    /// to it.
    pub session_key: Vec<u8>,
    /// The sealed PIN proof and network report.
    pub report: SealedReport,
}

impl Message for CredentialRequest {
    const TAG: MessageTag = MessageTag::CredentialRequest;

    fn encode_body(&self) -> Vec<u8> {
        cbor::encode(&Value::Array(alloc::vec![
            Value::Bytes(self.session_key.clone()),
            Value::Array(alloc::vec![
                Value::Bytes(self.report.encapsulated_key.clone()),
                Value::Bytes(self.report.ciphertext.clone()),
            ]),
        ]))
    }

    fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
        let [key, report] = cbor::fields(cbor::decode(bytes)?, "credential_request")?;
        let [enc, ct] = cbor::fields(report, "report")?;
        Ok(CredentialRequest {
            session_key: cbor::bytes_in(key, "session_key", 32, MAX_KEM_KEY_LEN)?,
            report: SealedReport {
                encapsulated_key: cbor::bytes_in(enc, "encapsulated_key", 32, MAX_KEM_KEY_LEN)?,
                ciphertext: cbor::bytes_in(ct, "report", 16, MAX_SEALED_REPORT_LEN)?,
            },
        })
    }
}

/// One network the device can see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedNetwork {
    /// SSID, 1 to 32 bytes.
    pub ssid: Vec<u8>,
    /// Signal strength as a loss below 0 dBm: 48 means -48 dBm (0 to 127).
    pub signal_loss_db: u8,
    /// Band bits: 1 = 2.4 GHz, 2 = 5 GHz, 4 = 6 GHz.
    pub band: u8,
    /// Channel number.
    pub channel: u16,
    /// Security bits the network advertises: 1 = WPA2-Personal, 2 = WPA3-Personal (SAE).
    pub security: u8,
}

/// What the device seals to the server: its PIN (when asked), the networks it sees, and what
/// its radio can join. `Debug` redacts the PIN.
///
/// `report = [ pin: tstr / null, networks: [* [ssid, loss, band, channel, security]],
/// radio_bands: uint, radio_security: uint ]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceReport {
    /// The PIN printed for this device, if the server asked for it.
    pub pin: Option<Pin>,
    /// Every visible secured network, strongest first.
    pub networks: Vec<ReportedNetwork>,
    /// Band bits the device's radio supports.
    pub radio_bands: u8,
    /// Security bits the device supports.
    pub radio_security: u8,
}

impl DeviceReport {
    /// The report's plaintext bytes (sealed before sending). The PIN's copies, in the
    /// buffer and in the intermediate CBOR value, are wiped when they are dropped.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut value = Value::Array(alloc::vec![
            match &self.pin {
                Some(p) => Value::Text(p.expose_secret().into()),
                None => Value::Null,
            },
            Value::Array(
                self.networks
                    .iter()
                    .map(|n| Value::Array(alloc::vec![
                        Value::Bytes(n.ssid.clone()),
                        uint_value(n.signal_loss_db.into()),
                        uint_value(n.band.into()),
                        uint_value(n.channel.into()),
                        uint_value(n.security.into()),
                    ]))
                    .collect()
            ),
            uint_value(self.radio_bands.into()),
            uint_value(self.radio_security.into()),
        ]);
        let bytes = Zeroizing::new(cbor::encode(&value));
        if let Value::Array(items) = &mut value
            && let Some(Value::Text(pin)) = items.first_mut()
        {
            pin.zeroize();
        }
        bytes
    }

    /// Decodes opened report bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let [pin, networks, bands, security] = cbor::fields(cbor::decode(bytes)?, "report")?;
        let pin = cbor::nullable(pin, |v| match v {
            Value::Text(t) => Pin::new(&t).map_err(|_| DecodeError::OutOfRange { field: "pin" }),
            _ => Err(DecodeError::UnexpectedType {
                field: "pin",
                expected: "text or null",
            }),
        })?;
        let networks = cbor::list(networks, "networks", MAX_REPORTED_NETWORKS)?
            .into_iter()
            .map(|n| {
                let [ssid, loss, band, channel, security] = cbor::fields(n, "network")?;
                Ok(ReportedNetwork {
                    ssid: cbor::bytes_in(ssid, "ssid", 1, 32)?,
                    signal_loss_db: small_uint(&loss, "signal_loss_db", 127)?,
                    band: small_uint(&band, "band", 7)?,
                    channel: small_uint(&channel, "channel", u64::from(u16::MAX))?,
                    security: small_uint(&security, "security", 3)?,
                })
            })
            .collect::<Result<_, DecodeError>>()?;
        Ok(DeviceReport {
            pin,
            networks,
            radio_bands: small_uint(&bands, "radio_bands", 7)?,
            radio_security: small_uint(&security, "radio_security", 3)?,
        })
    }
}

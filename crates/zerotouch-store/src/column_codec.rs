//! Conversions between the store's types and SQL columns, shared by the SQLite and PostgreSQL
//! stores so both write the same values: one place decides how a time, an id list or a scan
//! report becomes a column.

use zerotouch_core::{Instant, KeyId, Nonce, SessionId};

use crate::{Bands, SecurityType, SeenNetwork, StoreError};

/// SQL integers are signed 64-bit (SQLite `INTEGER`, PostgreSQL `BIGINT`): unsigned values are
/// stored by bit pattern, so order is kept for values below 2^63 (every time and serial we
/// store).
pub(crate) fn u2i(v: u64) -> i64 {
    i64::from_ne_bytes(v.to_ne_bytes())
}

pub(crate) fn i2u(v: i64) -> u64 {
    u64::from_ne_bytes(v.to_ne_bytes())
}

pub(crate) fn t(v: Instant) -> i64 {
    u2i(v.0)
}

pub(crate) fn instant(v: i64) -> Instant {
    Instant(i2u(v))
}

pub(crate) fn key_id(bytes: &[u8]) -> Result<KeyId, StoreError> {
    KeyId::from_slice(bytes).ok_or(StoreError::Corrupt { what: "key id" })
}

pub(crate) fn session_id(bytes: &[u8]) -> Result<SessionId, StoreError> {
    let arr: [u8; 16] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt { what: "session id" })?;
    Ok(SessionId(arr))
}

pub(crate) fn nonce_bytes(n: &Nonce) -> Vec<u8> {
    n.0.to_vec()
}

pub(crate) fn digest(bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt { what: "digest" })
}

pub(crate) fn small<T: TryFrom<i64>>(v: i64, what: &'static str) -> Result<T, StoreError> {
    T::try_from(v).map_err(|_| StoreError::Corrupt { what })
}

/// Account ids as text, for the audit log's `previous_accounts` ("3,7").
pub(crate) fn ids_to_text(ids: &[crate::AccountId]) -> String {
    ids.iter()
        .map(|a| a.0.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn text_to_ids(text: &str) -> Result<Vec<crate::AccountId>, StoreError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|s| {
            s.parse()
                .map(crate::AccountId)
                .map_err(|_| StoreError::Corrupt {
                    what: "audit entry",
                })
        })
        .collect()
}

/// A scan report's networks before sealing: per network, SSID length (1) ‖ SSID ‖ RSSI (1)
/// ‖ band bits (1) ‖ channel (2, big-endian) ‖ security (1).
pub(crate) fn encode_seen(networks: &[SeenNetwork]) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    for n in networks {
        let len = u8::try_from(n.ssid.len())
            .ok()
            .filter(|l| (1..=32).contains(l))
            .ok_or(StoreError::InvalidInput("an SSID is 1 to 32 bytes"))?;
        out.push(len);
        out.extend_from_slice(&n.ssid);
        out.push(n.rssi_dbm.to_be_bytes()[0]);
        out.push(n.band.bits());
        out.extend_from_slice(&n.channel.to_be_bytes());
        out.push(n.security.to_u8());
    }
    Ok(out)
}

pub(crate) fn decode_seen(mut bytes: &[u8]) -> Result<Vec<SeenNetwork>, StoreError> {
    let corrupt = || StoreError::Corrupt {
        what: "scan report",
    };
    let mut out = Vec::new();
    while let Some((&len, rest)) = bytes.split_first() {
        let len = usize::from(len);
        let ssid = rest.get(..len).ok_or_else(corrupt)?;
        let rest = rest.get(len..).ok_or_else(corrupt)?;
        let (fixed, rest) = rest.split_first_chunk::<5>().ok_or_else(corrupt)?;
        let [rssi, band, ch_hi, ch_lo, security] = *fixed;
        out.push(SeenNetwork {
            ssid: ssid.to_vec(),
            rssi_dbm: i8::from_be_bytes([rssi]),
            band: Bands::from_bits(band).ok_or_else(corrupt)?,
            channel: u16::from_be_bytes([ch_hi, ch_lo]),
            security: SecurityType::from_u8(security).ok_or_else(corrupt)?,
        });
        bytes = rest;
    }
    Ok(out)
}

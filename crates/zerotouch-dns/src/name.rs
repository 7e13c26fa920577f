//! Query names: `<data labels>.<header label>.<zone>`, in a case-insensitive base32.
//!
//! Resolvers randomise the case of names (0x20) or lower-case them, so only a
//! case-insensitive alphabet survives: RFC 4648 base32 without padding, written lower-case
//! and read in either case. The header label sits next to the zone so that a resolver's QNAME
//! minimisation probes (one label at a time from the zone down) can be told apart from the
//! query itself; data labels follow outward, 63 characters each, the last one shorter.

use alloc::string::String;
use alloc::vec::Vec;

use data_encoding::BASE32_NOPAD;

use crate::header::{HEADER_LABEL_LEN, HEADER_LEN, QueryHeader};
use crate::{DnsError, Zone};

/// Octets of a name on the wire, at most (RFC 1035).
pub const MAX_NAME_OCTETS: usize = 255;
/// Characters of a label, at most.
pub const MAX_LABEL: usize = 63;

/// One query: its header and the data its name carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The header.
    pub header: QueryHeader,
    /// The data (empty except in data queries).
    pub data: Vec<u8>,
}

/// What a name under the zone turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameKind {
    /// The zone itself.
    Apex,
    /// A name on the way to a query (a QNAME-minimisation probe): its header decodes and it
    /// has fewer data labels than the header needs.
    Intermediate,
    /// A whole query.
    Query(Query),
}

fn encode_base32(bytes: &[u8]) -> String {
    BASE32_NOPAD.encode(bytes).to_ascii_lowercase()
}

fn decode_base32(label: &str) -> Result<Vec<u8>, DnsError> {
    // BASE32_NOPAD rejects non-zero spare bits: one name, one meaning.
    BASE32_NOPAD
        .decode(label.to_ascii_uppercase().as_bytes())
        .map_err(|_| DnsError::NotBase32)
}

/// Base32 characters for `n` bytes.
fn chars_for(n: usize) -> usize {
    (n * 8).div_ceil(5)
}

/// Data labels for `n` bytes.
fn labels_for(n: usize) -> usize {
    chars_for(n).div_ceil(MAX_LABEL)
}

/// Wire octets of a name carrying `data_len` bytes under `zone`.
pub fn name_wire_len(zone: &Zone, data_len: usize) -> usize {
    zone.wire_len() + HEADER_LABEL_LEN + 1 + chars_for(data_len) + labels_for(data_len)
}

/// The most data bytes one query carries under `zone`: the largest n with
/// `name_wire_len(zone, n)` ≤ 255 (135 under `zt.test`).
pub fn max_data_per_query(zone: &Zone) -> usize {
    // A name of 255 octets holds fewer than 255 bytes of data whatever the zone.
    (0..=MAX_NAME_OCTETS)
        .rev()
        .find(|&n| name_wire_len(zone, n) <= MAX_NAME_OCTETS)
        .unwrap_or(0)
}

/// The most data labels a name under `zone` has.
fn max_data_labels(zone: &Zone) -> usize {
    labels_for(max_data_per_query(zone))
}

impl Query {
    /// The query's name under `zone`, lower-case, without the trailing dot. The header's
    /// first byte says how many data labels the data takes.
    pub fn to_name(&self, zone: &Zone) -> Result<String, DnsError> {
        let wire = name_wire_len(zone, self.data.len());
        if wire > MAX_NAME_OCTETS {
            return Err(DnsError::NameTooLong(wire));
        }
        let data = encode_base32(&self.data);
        let mut labels: Vec<&str> = Vec::new();
        let mut rest = data.as_str();
        while !rest.is_empty() {
            let (label, tail) = rest.split_at(rest.len().min(MAX_LABEL));
            labels.push(label);
            rest = tail;
        }
        // At most four: a 255-octet name holds no more (checked above).
        let count = u8::try_from(labels.len()).map_err(|_| DnsError::NameTooLong(wire))?;
        let mut name = String::with_capacity(wire);
        for label in labels.iter().rev() {
            name.push_str(label);
            name.push('.');
        }
        name.push_str(&encode_base32(&self.header.to_bytes(count)));
        name.push('.');
        name.push_str(zone.as_str());
        Ok(name)
    }

    /// Reads `name` (any case, trailing dot or not) under `zone`.
    pub fn classify(name: &str, zone: &Zone) -> Result<NameKind, DnsError> {
        let labels = zone.labels_below(name).ok_or(DnsError::OutsideZone)?;
        let Some((header_label, data_labels)) = labels.split_first() else {
            return Ok(NameKind::Apex);
        };
        if header_label.len() != HEADER_LABEL_LEN {
            return Err(DnsError::BadHeader("header label length"));
        }
        let raw = decode_base32(header_label)?;
        let bytes: [u8; HEADER_LEN] = raw
            .as_slice()
            .try_into()
            .map_err(|_| DnsError::BadHeader("header length"))?;
        let (header, declared) = QueryHeader::from_bytes(&bytes)?;
        let declared = usize::from(declared);
        // No name with that many data labels fits 255 octets under this zone: not one the
        // binding writes, whole or cut short by QNAME minimisation.
        if declared > max_data_labels(zone) {
            return Err(DnsError::BadHeader(
                "more data labels than a name under the zone holds",
            ));
        }
        if data_labels.len() < declared {
            return Ok(NameKind::Intermediate);
        }
        if data_labels.len() > declared {
            return Err(DnsError::LabelCount {
                declared,
                found: data_labels.len(),
            });
        }
        let mut text = String::with_capacity(declared * MAX_LABEL);
        for (i, label) in data_labels.iter().enumerate() {
            let last = i + 1 == data_labels.len();
            if label.is_empty() || label.len() > MAX_LABEL || (!last && label.len() != MAX_LABEL) {
                return Err(DnsError::LabelSplit);
            }
            text.push_str(label);
        }
        let data = decode_base32(&text)?;
        let wire = name_wire_len(zone, data.len());
        if wire > MAX_NAME_OCTETS {
            return Err(DnsError::NameTooLong(wire));
        }
        Ok(NameKind::Query(Query { header, data }))
    }
}

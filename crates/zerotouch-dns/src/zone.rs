//! The zone the authoritative server serves, and matching query names against it.

use alloc::string::String;
use alloc::vec::Vec;

use crate::DnsError;

/// A DNS zone such as `zt.example.com`, kept lower-case without the trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Zone {
    name: String,
    labels: usize,
}

impl Zone {
    /// Parses `name` (a trailing dot is allowed). Labels are 1 to 63 letters, digits or
    /// hyphens; the name leaves room for a header and at least one data label.
    pub fn new(name: &str) -> Result<Zone, DnsError> {
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        if name.is_empty() {
            return Err(DnsError::InvalidZone);
        }
        let mut labels = 0;
        for label in name.split('.') {
            let ok = !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !ok {
                return Err(DnsError::InvalidZone);
            }
            labels += 1;
        }
        let zone = Zone { name, labels };
        // The header label (24 characters and its length octet) plus a data label carrying
        // one byte (two base32 characters and a length octet) must fit.
        if zone.wire_len() + crate::header::HEADER_LABEL_LEN + 1 + 3 > crate::name::MAX_NAME_OCTETS
        {
            return Err(DnsError::ZoneTooLong(zone.wire_len()));
        }
        Ok(zone)
    }

    /// The zone, lower-case, without the trailing dot.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// Octets the zone takes at the end of a name on the wire, the root's zero byte included.
    pub fn wire_len(&self) -> usize {
        self.name.len() + 2
    }

    /// The labels of `name` below the zone, nearest the zone first, as given (case kept),
    /// or `None` when `name` is not the zone or under it.
    pub fn labels_below<'n>(&self, name: &'n str) -> Option<Vec<&'n str>> {
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.eq_ignore_ascii_case(&self.name) {
            return Some(Vec::new());
        }
        let cut = name.len().checked_sub(self.name.len() + 1)?;
        let (below, suffix) = (name.get(..cut)?, name.get(cut..)?);
        let zone_part = suffix.strip_prefix('.')?;
        if !zone_part.eq_ignore_ascii_case(&self.name) || below.is_empty() {
            return None;
        }
        let mut labels: Vec<&str> = below.split('.').collect();
        labels.reverse();
        Some(labels)
    }

    /// The number of labels of the zone itself.
    pub fn label_count(&self) -> usize {
        self.labels
    }
}

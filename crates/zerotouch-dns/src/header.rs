//! The 15-byte header every query name carries in the label next to the zone.

use crate::DnsError;

/// The binding's version, in the high two bits of the header's first byte.
pub const VERSION: u8 = 1;
/// Bytes of a header.
pub const HEADER_LEN: usize = 15;
/// Characters of the header label (15 bytes in base32: 120 bits, no spare bit).
pub const HEADER_LABEL_LEN: usize = 24;
/// The most data labels a name may have (a name of 255 octets holds at most four).
pub const MAX_DATA_LABELS: u8 = 4;
/// The most queries one logical query may be sent as (the attempt counter has four bits,
/// and every attempt needs a name no cache has seen).
pub const MAX_ATTEMPTS: u8 = 16;
/// The most messages one tunnel carries (the message index has four bits).
pub const MAX_MESSAGES: u8 = 16;

/// What a query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QueryKind {
    /// A retry cookie for a new tunnel; carries no data.
    Cookie = 1,
    /// A chunk of a message, more to follow: answered with an acknowledgement.
    Data = 2,
    /// The last chunk of a message: answered with the first piece of the response.
    LastData = 3,
    /// A later piece of the response, from the byte offset in `position`.
    Poll = 4,
    /// An answer filled up to the answer limit, to learn whether answers that large arrive.
    Probe = 5,
}

impl QueryKind {
    fn from_u8(v: u8) -> Option<QueryKind> {
        Some(match v {
            1 => QueryKind::Cookie,
            2 => QueryKind::Data,
            3 => QueryKind::LastData,
            4 => QueryKind::Poll,
            5 => QueryKind::Probe,
            _ => return None,
        })
    }

    /// Whether queries of this kind carry data (Data and LastData).
    pub fn carries_data(self) -> bool {
        matches!(self, QueryKind::Data | QueryKind::LastData)
    }
}

/// A tunnel: one device's exchange with the server, named by 5 random bytes it chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TunnelId(pub [u8; 5]);

/// The server's stateless retry cookie for a tunnel (5 bytes of a MAC; all zero in a cookie
/// request). Not a secret: whoever sees the traffic sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Cookie(pub [u8; 5]);

/// The largest answer the device can receive, in 16-byte units (32 = 512 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AnswerLimit(u8);

impl AnswerLimit {
    /// 512 bytes: what every resolver delivers without EDNS.
    pub const CLASSIC: AnswerLimit = AnswerLimit(32);

    /// The limit for answers of at most `bytes` (rounded down to 16; 512 to 4,080).
    pub fn from_bytes(bytes: usize) -> Result<AnswerLimit, DnsError> {
        let units = u8::try_from(bytes / 16).map_err(|_| DnsError::AnswerLimit(bytes))?;
        AnswerLimit::from_units(units).ok_or(DnsError::AnswerLimit(bytes))
    }

    fn from_units(units: u8) -> Option<AnswerLimit> {
        (units >= 32).then_some(AnswerLimit(units))
    }

    /// The limit in bytes.
    pub fn bytes(self) -> usize {
        usize::from(self.0) * 16
    }
}

/// The header of a query name. The number of data labels that follow it is not a field: the
/// name's data decides it ([`crate::Query::to_name`] writes it, [`Self::to_bytes`] takes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueryHeader {
    /// What the query asks for.
    pub kind: QueryKind,
    /// The tunnel.
    pub tunnel: TunnelId,
    /// The retry cookie (zero in a cookie request).
    pub cookie: Cookie,
    /// The message's index in the tunnel (0 to 15).
    pub message: u8,
    /// How many times this query was sent before (0 to 15): every retry gets a new name.
    pub attempt: u8,
    /// Data: the chunk's index. Poll: the byte offset of the piece asked for. Else 0.
    pub position: u16,
    /// The largest answer the device can receive.
    pub limit: AnswerLimit,
}

impl QueryHeader {
    /// The 15 bytes of a name with `data_labels` data labels (0 to 7 fit the field; a
    /// reader refuses more than [`MAX_DATA_LABELS`]).
    pub fn to_bytes(&self, data_labels: u8) -> [u8; HEADER_LEN] {
        let [t0, t1, t2, t3, t4] = self.tunnel.0;
        let [c0, c1, c2, c3, c4] = self.cookie.0;
        let [p0, p1] = self.position.to_be_bytes();
        [
            (VERSION << 6) | ((data_labels & 0x07) << 3) | (self.kind as u8 & 0x07),
            t0,
            t1,
            t2,
            t3,
            t4,
            c0,
            c1,
            c2,
            c3,
            c4,
            ((self.message & 0x0f) << 4) | (self.attempt & 0x0f),
            p0,
            p1,
            self.limit.0,
        ]
    }

    /// Parses 15 bytes: the header and the number of data labels it declares.
    pub fn from_bytes(b: &[u8; HEADER_LEN]) -> Result<(QueryHeader, u8), DnsError> {
        let [v, t0, t1, t2, t3, t4, c0, c1, c2, c3, c4, ma, p0, p1, lim] = *b;
        if v >> 6 != VERSION {
            return Err(DnsError::BadHeader("unknown version"));
        }
        let labels = (v >> 3) & 0x07;
        let kind = QueryKind::from_u8(v & 0x07).ok_or(DnsError::BadHeader("unknown kind"))?;
        if labels > MAX_DATA_LABELS {
            return Err(DnsError::BadHeader("more than four data labels"));
        }
        let limit = AnswerLimit::from_units(lim).ok_or(DnsError::BadHeader("answer limit"))?;
        let header = QueryHeader {
            kind,
            tunnel: TunnelId([t0, t1, t2, t3, t4]),
            cookie: Cookie([c0, c1, c2, c3, c4]),
            message: ma >> 4,
            attempt: ma & 0x0f,
            position: u16::from_be_bytes([p0, p1]),
            limit,
        };
        let carries_data = kind.carries_data();
        if !carries_data && (labels != 0 || (kind != QueryKind::Poll && header.position != 0)) {
            return Err(DnsError::BadHeader(
                "fields set that this kind does not use",
            ));
        }
        if kind == QueryKind::Cookie && header.cookie != Cookie::default() {
            return Err(DnsError::BadHeader("a cookie in a cookie request"));
        }
        if carries_data && labels == 0 {
            return Err(DnsError::BadHeader("a data query without data"));
        }
        Ok((header, labels))
    }
}

//! The 18-byte header every query name carries in the label next to the zone.

use crate::DnsError;

/// The binding's version, in the high four bits of the header's first byte.
pub const VERSION: u8 = 1;
/// Bytes of a header.
pub const HEADER_LEN: usize = 18;
/// Characters of the header label (18 bytes in base32: 144 bits, one spare zero bit).
pub const HEADER_LABEL_LEN: usize = 29;
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
}

/// A tunnel: one device's exchange with the server, named by 6 random bytes it chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TunnelId(pub [u8; 6]);

/// The server's stateless retry cookie for a tunnel (6 bytes of a MAC; all zero in a cookie
/// request). Not a secret: whoever sees the traffic sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Cookie(pub [u8; 6]);

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

/// The header of a query name.
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
    /// Data bytes in the name's data labels.
    pub data_len: u8,
}

impl QueryHeader {
    /// The 18 bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        let [p0, p1] = self.position.to_be_bytes();
        let fields = [
            (VERSION << 4) | self.kind as u8,
            self.tunnel.0[0],
            self.tunnel.0[1],
            self.tunnel.0[2],
            self.tunnel.0[3],
            self.tunnel.0[4],
            self.tunnel.0[5],
            self.cookie.0[0],
            self.cookie.0[1],
            self.cookie.0[2],
            self.cookie.0[3],
            self.cookie.0[4],
            self.cookie.0[5],
            ((self.message & 0x0f) << 4) | (self.attempt & 0x0f),
            p0,
            p1,
            self.limit.0,
            self.data_len,
        ];
        b.copy_from_slice(&fields);
        b
    }

    /// Parses 18 bytes.
    pub fn from_bytes(b: &[u8; HEADER_LEN]) -> Result<QueryHeader, DnsError> {
        let [v, t0, t1, t2, t3, t4, t5, c0, c1, c2, c3, c4, c5, ma, p0, p1, lim, len] = *b;
        if v >> 4 != VERSION {
            return Err(DnsError::BadHeader("unknown version"));
        }
        let kind = QueryKind::from_u8(v & 0x0f).ok_or(DnsError::BadHeader("unknown kind"))?;
        let limit = AnswerLimit::from_units(lim).ok_or(DnsError::BadHeader("answer limit"))?;
        let header = QueryHeader {
            kind,
            tunnel: TunnelId([t0, t1, t2, t3, t4, t5]),
            cookie: Cookie([c0, c1, c2, c3, c4, c5]),
            message: ma >> 4,
            attempt: ma & 0x0f,
            position: u16::from_be_bytes([p0, p1]),
            limit,
            data_len: len,
        };
        let carries_data = matches!(kind, QueryKind::Data | QueryKind::LastData);
        if !carries_data && (len != 0 || (kind != QueryKind::Poll && header.position != 0)) {
            return Err(DnsError::BadHeader("fields set that this kind does not use"));
        }
        if kind == QueryKind::Cookie && header.cookie != Cookie::default() {
            return Err(DnsError::BadHeader("a cookie in a cookie request"));
        }
        if carries_data && len == 0 {
            return Err(DnsError::BadHeader("a data query without data"));
        }
        Ok(header)
    }
}

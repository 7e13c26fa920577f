//! What the server keeps of a tunnel between queries: the chunks of the message being
//! assembled. Stored (sealed) in the server's store, so any server process can take the next
//! query; the responses themselves are stored apart, one per message.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::DnsError;

/// The longest message a tunnel assembles (flow-1 requests are at most 3,072 bytes).
pub const MAX_MESSAGE_LEN: usize = 8192;
/// The most chunks one message may come in.
pub const MAX_CHUNKS: u16 = 256;

const RECORD_VERSION: u8 = 1;

/// The assembly state of one tunnel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TunnelRecord {
    /// The message being assembled (chunks of earlier ones are dropped).
    pub message: u8,
    /// Its chunks so far, by index.
    pub chunks: BTreeMap<u16, Vec<u8>>,
}

/// What adding a chunk did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkAdded {
    /// Stored: the record changed.
    Stored,
    /// The same bytes were already there (a retransmission): nothing changed.
    Duplicate,
    /// The chunk belongs to a message before the one being assembled (a late retransmission).
    Stale,
}

impl TunnelRecord {
    /// Adds chunk `index` of `message`. A later message drops the chunks of the earlier one.
    pub fn add_chunk(
        &mut self,
        message: u8,
        index: u16,
        data: &[u8],
    ) -> Result<ChunkAdded, AddChunkError> {
        if message < self.message {
            return Ok(ChunkAdded::Stale);
        }
        if message > self.message {
            self.message = message;
            self.chunks.clear();
        }
        // A query carries at most 139 bytes (a name is 255 octets at most), and the stored
        // form says a chunk's length in one byte: more is refused.
        if index >= MAX_CHUNKS || data.len() > usize::from(u8::MAX) {
            return Err(AddChunkError::TooLarge);
        }
        if let Some(held) = self.chunks.get(&index) {
            return if held.as_slice() == data {
                Ok(ChunkAdded::Duplicate)
            } else {
                Err(AddChunkError::Conflict)
            };
        }
        let total: usize = self.chunks.values().map(Vec::len).sum::<usize>() + data.len();
        if total > MAX_MESSAGE_LEN {
            return Err(AddChunkError::TooLarge);
        }
        self.chunks.insert(index, data.to_vec());
        Ok(ChunkAdded::Stored)
    }

    /// The whole message if chunks `0..=last` of `message` are all here.
    pub fn assemble(&self, message: u8, last: u16) -> Option<Vec<u8>> {
        if message != self.message || self.chunks.len() != usize::from(last) + 1 {
            return None;
        }
        let mut out = Vec::new();
        for i in 0..=last {
            out.extend_from_slice(self.chunks.get(&i)?);
        }
        Some(out)
    }

    /// The stored form: version, message, then each chunk as index (2), length (1), bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.push(RECORD_VERSION);
        out.push(self.message);
        for (index, data) in &self.chunks {
            out.extend_from_slice(&index.to_be_bytes());
            // Chunks are at most 255 bytes: `add_chunk` refuses longer ones.
            out.push(u8::try_from(data.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(data);
        }
        out
    }

    /// Reads the stored form.
    pub fn from_bytes(bytes: &[u8]) -> Result<TunnelRecord, DnsError> {
        let [version, message, rest @ ..] = bytes else {
            return Err(DnsError::CorruptRecord("too short"));
        };
        if *version != RECORD_VERSION {
            return Err(DnsError::CorruptRecord("unknown version"));
        }
        let mut record = TunnelRecord {
            message: *message,
            chunks: BTreeMap::new(),
        };
        let mut rest = rest;
        let mut total = 0;
        while let [i0, i1, len, tail @ ..] = rest {
            let len = usize::from(*len);
            let data = tail
                .get(..len)
                .ok_or(DnsError::CorruptRecord("chunk cut short"))?;
            let index = u16::from_be_bytes([*i0, *i1]);
            // Only what `add_chunk` can build, in the order `to_bytes` writes it: a repeated
            // index would otherwise drop a chunk silently.
            if record
                .chunks
                .last_key_value()
                .is_some_and(|(&last, _)| index <= last)
            {
                return Err(DnsError::CorruptRecord("chunk indices not ascending"));
            }
            total += len;
            if index >= MAX_CHUNKS || total > MAX_MESSAGE_LEN {
                return Err(DnsError::CorruptRecord("more than a message may hold"));
            }
            record.chunks.insert(index, data.to_vec());
            rest = tail.get(len..).unwrap_or_default();
        }
        if !rest.is_empty() {
            return Err(DnsError::CorruptRecord("trailing bytes"));
        }
        Ok(record)
    }
}

/// Why a chunk was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddChunkError {
    /// The index was already filled with other bytes.
    Conflict,
    /// The message would exceed [`MAX_MESSAGE_LEN`] or [`MAX_CHUNKS`].
    TooLarge,
}

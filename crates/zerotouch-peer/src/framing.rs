//! Length-prefixed frames over any reliable byte stream (TCP, an RFCOMM or L2CAP channel, a
//! serial line), sans-IO.
//!
//! A frame is a 2-byte big-endian length followed by that many bytes of body; the body is one
//! Noise message. Streams deliver bytes in whatever chunks they like, so [`FrameDecoder`]
//! takes chunks of any size and gives back whole frames. Headers are checked as soon as they
//! arrive, so a peer announcing a huge or empty frame is refused at once, before anything is
//! buffered for it.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::num::NonZeroU16;

/// Length of the frame header: the body length, big-endian.
pub const HEADER_LEN: usize = 2;

/// Default largest frame body.
///
/// Application messages on the local channel stay within 4096 bytes of plaintext. The largest
/// Noise message carrying one is an XX second handshake message: ephemeral (32) + encrypted
/// static key (32 + 16) + payload + tag (16), that is 4096 + 96 = 4192 bytes; a transport
/// message is 4096 + 16. 4200 covers both with a little room and keeps what a peer can make
/// us buffer small (one frame, 4202 bytes with the header) on devices with little RAM.
pub const MAX_FRAME_LEN: usize = 4200;

/// Why a frame was refused. Once the decoder has returned one, the stream is out of step (or
/// hostile) and the decoder refuses everything after: close the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// A header announced a body of zero bytes: no message is empty, so the stream is broken.
    #[error("empty frame")]
    EmptyFrame,
    /// A header announced (or a caller tried to send) a body longer than the limit.
    #[error("frame of {len} bytes is longer than the limit of {max}")]
    FrameTooLong {
        /// The length announced or given.
        len: usize,
        /// The limit in force.
        max: usize,
    },
}

/// Frames `body`: its length as 2 bytes big-endian, then the body.
///
/// # Errors
/// [`FramingError::EmptyFrame`] for an empty body, [`FramingError::FrameTooLong`] above
/// [`MAX_FRAME_LEN`].
pub fn encode_frame(body: &[u8]) -> Result<Vec<u8>, FramingError> {
    if body.is_empty() {
        return Err(FramingError::EmptyFrame);
    }
    let len = u16::try_from(body.len())
        .ok()
        .filter(|&len| usize::from(len) <= MAX_FRAME_LEN)
        .ok_or(FramingError::FrameTooLong {
            len: body.len(),
            max: MAX_FRAME_LEN,
        })?;
    let mut frame = Vec::with_capacity(HEADER_LEN + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(body);
    Ok(frame)
}

/// Reassembles frames from a byte stream delivered in arbitrary chunks.
///
/// Call [`FrameDecoder::push`] with each chunk read from the stream, then
/// [`FrameDecoder::next_frame`] until it returns `None`. The bytes of the frame still being
/// received never exceed one maximal frame plus its header; frames already complete wait
/// here until taken, so take them after each push.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_len: usize,
    /// Whole frame bodies, oldest first.
    ready: VecDeque<Vec<u8>>,
    /// The start of the frame being received: header first, then body.
    partial: Vec<u8>,
    /// Set by the first error; the stream cannot be trusted after it.
    failed: Option<FramingError>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder with the default limit, [`MAX_FRAME_LEN`].
    #[must_use]
    pub fn new() -> Self {
        Self::with_limit(MAX_FRAME_LEN)
    }

    /// A decoder accepting bodies up to `max_len` bytes (at most 65535, as the header is 16
    /// bits).
    #[must_use]
    pub fn with_max_len(max_len: NonZeroU16) -> Self {
        Self::with_limit(usize::from(max_len.get()))
    }

    fn with_limit(max_len: usize) -> Self {
        Self {
            max_len,
            ready: VecDeque::new(),
            partial: Vec::new(),
            failed: None,
        }
    }

    /// The largest body this decoder accepts.
    #[must_use]
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Takes the next chunk of the stream, of any size (empty included).
    ///
    /// # Errors
    /// [`FramingError::EmptyFrame`] or [`FramingError::FrameTooLong`] for a bad header; then
    /// the same error for every later call, and no more frames (those completed before the
    /// bad header in earlier pushes can still be taken).
    pub fn push(&mut self, mut bytes: &[u8]) -> Result<(), FramingError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        while !bytes.is_empty() {
            // Complete the header first, so the body length is known before any body byte is
            // kept: that is what bounds the buffer.
            if self.partial.len() < HEADER_LEN {
                let (head, rest) = bytes.split_at(bytes.len().min(HEADER_LEN - self.partial.len()));
                self.partial.extend_from_slice(head);
                bytes = rest;
                if self.partial.len() < HEADER_LEN {
                    break;
                }
            }
            let body_len = match self.announced_len() {
                Ok(len) => len,
                Err(error) => {
                    self.failed = Some(error);
                    self.partial = Vec::new();
                    return Err(error);
                }
            };
            if self.partial.capacity() < HEADER_LEN + body_len {
                self.partial
                    .reserve_exact(HEADER_LEN + body_len - self.partial.len());
            }
            let missing = HEADER_LEN + body_len - self.partial.len();
            let (body, rest) = bytes.split_at(bytes.len().min(missing));
            self.partial.extend_from_slice(body);
            bytes = rest;
            if self.partial.len() == HEADER_LEN + body_len {
                let mut frame = core::mem::take(&mut self.partial);
                frame.drain(..HEADER_LEN);
                self.ready.push_back(frame);
            }
        }
        Ok(())
    }

    /// The next whole frame body, oldest first, or `None` if no frame is complete.
    pub fn next_frame(&mut self) -> Option<Vec<u8>> {
        self.ready.pop_front()
    }

    /// Bytes held for the frame still being received (header included).
    #[must_use]
    pub fn buffered_len(&self) -> usize {
        self.partial.len()
    }

    /// The body length in the (complete) header of `partial`, checked against the limit.
    fn announced_len(&self) -> Result<usize, FramingError> {
        let Some(header) = self.partial.first_chunk::<HEADER_LEN>() else {
            return Err(FramingError::EmptyFrame);
        };
        let len = usize::from(u16::from_be_bytes(*header));
        if len == 0 {
            Err(FramingError::EmptyFrame)
        } else if len > self.max_len {
            Err(FramingError::FrameTooLong {
                len,
                max: self.max_len,
            })
        } else {
            Ok(len)
        }
    }
}

//! The encrypted local channel: a Noise NN handshake, then transport messages, each in a
//! length-prefixed frame over whatever reliable byte stream links the two devices.
//!
//! NN authenticates nobody, and that is deliberate: who the peers are is proven above the
//! channel, by the association server's signatures and the joiner's device secret. What the
//! channel adds is confidentiality (the credential crosses it) and its binding value, the
//! handshake hash, which no two channels share. The sponsor has the server sign the binding of
//! its own channel; a device relaying between two channels cannot make both ends agree on one.

use alloc::vec::Vec;
use rand_core::CryptoRng;
use zerotouch_core::flow2::{ChannelBinding, NOISE_PROLOGUE};

use crate::PeerError;
use crate::framing::{FrameDecoder, encode_frame};
use crate::noise::{Handshake, Pattern, Role, Transport};

enum Phase {
    Handshaking(Handshake),
    Open(Transport),
    Closed,
}

/// One side of the local channel, sans-IO: bytes from the stream in, bytes for the stream and
/// decrypted messages out.
pub struct LocalChannel {
    phase: Phase,
    frames: FrameDecoder,
}

impl core::fmt::Debug for LocalChannel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let phase = match self.phase {
            Phase::Handshaking(_) => "handshaking",
            Phase::Open(_) => "open",
            Phase::Closed => "closed",
        };
        f.debug_struct("LocalChannel")
            .field("phase", &phase)
            .finish()
    }
}

/// What the stream delivered, once decrypted.
#[derive(Debug, Default)]
pub struct Received {
    /// Bytes to write back to the stream (the handshake's answer).
    pub reply: Vec<u8>,
    /// Whether the handshake completed with these bytes.
    pub opened: bool,
    /// Whole decrypted messages, in order.
    pub messages: Vec<Vec<u8>>,
}

impl LocalChannel {
    /// The joiner's side: it speaks first. Returns the channel and the bytes to send.
    pub fn initiator<R: CryptoRng + ?Sized>(rng: &mut R) -> Result<(Self, Vec<u8>), PeerError> {
        let mut hs = Handshake::new(Pattern::Nn, Role::Initiator, NOISE_PROLOGUE, None, rng)?;
        let first = encode_frame(&hs.write_message(&[])?)?;
        Ok((
            LocalChannel {
                phase: Phase::Handshaking(hs),
                frames: FrameDecoder::new(),
            },
            first,
        ))
    }

    /// The sponsor's side: it answers.
    pub fn responder<R: CryptoRng + ?Sized>(rng: &mut R) -> Result<Self, PeerError> {
        let hs = Handshake::new(Pattern::Nn, Role::Responder, NOISE_PROLOGUE, None, rng)?;
        Ok(LocalChannel {
            phase: Phase::Handshaking(hs),
            frames: FrameDecoder::new(),
        })
    }

    /// Feeds bytes from the stream, in any chunking. A frame that fails to decrypt, or a
    /// malformed handshake, closes the channel: a Noise session cannot resynchronise, and a
    /// peer that sends garbage gets nothing more.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Received, PeerError> {
        let mut out = Received::default();
        if let Err(e) = self.frames.push(bytes) {
            self.phase = Phase::Closed;
            return Err(e.into());
        }
        while let Some(frame) = self.frames.next_frame() {
            if let Err(e) = self.receive_frame(&frame, &mut out) {
                self.phase = Phase::Closed;
                return Err(e);
            }
        }
        Ok(out)
    }

    fn receive_frame(&mut self, frame: &[u8], out: &mut Received) -> Result<(), PeerError> {
        match core::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Handshaking(mut hs) => {
                hs.read_message(frame)?;
                if !hs.is_finished() && hs.is_my_turn() {
                    out.reply.extend(encode_frame(&hs.write_message(&[])?)?);
                }
                if hs.is_finished() {
                    self.phase = Phase::Open(hs.into_transport()?);
                    out.opened = true;
                } else {
                    self.phase = Phase::Handshaking(hs);
                }
            }
            Phase::Open(mut transport) => {
                out.messages.push(transport.decrypt(frame)?);
                self.phase = Phase::Open(transport);
            }
            Phase::Closed => return Err(PeerError::ChannelClosed),
        }
        Ok(())
    }

    /// Encrypts and frames one message for the stream.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, PeerError> {
        match &mut self.phase {
            Phase::Open(transport) => Ok(encode_frame(&transport.encrypt(plaintext)?)?),
            Phase::Handshaking(_) => Err(PeerError::ChannelNotOpen),
            Phase::Closed => Err(PeerError::ChannelClosed),
        }
    }

    /// The channel's binding (its handshake hash), once open.
    pub fn binding(&self) -> Option<ChannelBinding> {
        match &self.phase {
            Phase::Open(t) => Some(ChannelBinding(t.handshake_hash())),
            _ => None,
        }
    }

    /// Whether the handshake completed and the channel still works.
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open(_))
    }

    /// Closes the channel: nothing more is sent or accepted.
    pub fn close(&mut self) {
        self.phase = Phase::Closed;
    }
}

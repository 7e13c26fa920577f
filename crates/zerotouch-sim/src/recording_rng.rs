//! The device's RNG, seeded and recorded: every draw is kept, so a run's random values can be
//! published with its messages and fed to another implementation of the device.

use core::convert::Infallible;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, TryCryptoRng, TryRng};

/// A ChaCha20 stream that logs what it hands out.
#[derive(Debug, Clone)]
pub struct RecordingRng {
    inner: ChaCha20Rng,
    draws: Vec<Vec<u8>>,
}

impl RecordingRng {
    /// A recorder over `inner`.
    pub fn new(inner: ChaCha20Rng) -> Self {
        RecordingRng {
            inner,
            draws: Vec::new(),
        }
    }

    /// Takes the draws made since the last call, in order.
    pub fn take_draws(&mut self) -> Vec<Vec<u8>> {
        core::mem::take(&mut self.draws)
    }
}

impl TryRng for RecordingRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let v = self.inner.next_u32();
        self.draws.push(v.to_le_bytes().to_vec());
        Ok(v)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let v = self.inner.next_u64();
        self.draws.push(v.to_le_bytes().to_vec());
        Ok(v)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.inner.fill_bytes(dst);
        self.draws.push(dst.to_vec());
        Ok(())
    }
}

impl TryCryptoRng for RecordingRng {}

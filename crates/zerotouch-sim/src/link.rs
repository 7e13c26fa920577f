//! Lossy links: what happens to a datagram between its sender and its receiver.

use rand_chacha::ChaCha20Rng;
use rand_core::Rng;
use zerotouch_core::Instant;

/// How a link treats each datagram, drawn independently from the simulation's link RNG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkConditions {
    /// Chance a datagram is lost, in per mille.
    pub loss_per_mille: u32,
    /// Chance a delivered datagram arrives twice, in per mille.
    pub duplicate_per_mille: u32,
    /// Shortest one-way delay.
    pub min_delay_ms: u64,
    /// Longest one-way delay. A spread wider than the gap between two datagrams reorders
    /// them.
    pub max_delay_ms: u64,
}

impl LinkConditions {
    /// Every datagram arrives once, after a fixed 20 ms.
    pub const PERFECT: LinkConditions = LinkConditions {
        loss_per_mille: 0,
        duplicate_per_mille: 0,
        min_delay_ms: 20,
        max_delay_ms: 20,
    };

    /// `loss_percent` loss, 10 % duplication and a delay of 10 ms to 1.5 s, so
    /// retransmissions and duplicates overtake each other.
    pub const fn hostile(loss_percent: u32) -> LinkConditions {
        LinkConditions {
            loss_per_mille: loss_percent * 10,
            duplicate_per_mille: 100,
            min_delay_ms: 10,
            max_delay_ms: 1_500,
        }
    }

    /// Every datagram is lost (an unreachable service).
    pub const DEAD: LinkConditions = LinkConditions {
        loss_per_mille: 1_000,
        duplicate_per_mille: 0,
        min_delay_ms: 0,
        max_delay_ms: 0,
    };

    /// The arrival times of one datagram sent at `now`: none if lost, two if duplicated.
    pub(crate) fn arrivals(&self, now: Instant, rng: &mut ChaCha20Rng) -> Vec<Instant> {
        if chance(rng, self.loss_per_mille) {
            return Vec::new();
        }
        let copies = if chance(rng, self.duplicate_per_mille) {
            2
        } else {
            1
        };
        (0..copies)
            .map(|_| Instant(now.0.saturating_add(self.delay(rng))))
            .collect()
    }

    fn delay(&self, rng: &mut ChaCha20Rng) -> u64 {
        let spread = self.max_delay_ms.saturating_sub(self.min_delay_ms);
        if spread == 0 {
            return self.min_delay_ms;
        }
        self.min_delay_ms + rng.next_u64() % (spread + 1)
    }
}

fn chance(rng: &mut ChaCha20Rng, per_mille: u32) -> bool {
    per_mille > 0 && (rng.next_u32() % 1_000) < per_mille
}

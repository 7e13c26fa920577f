//! Who sits on the links: a hook that sees every datagram before its link and may change,
//! drop, replay or add to it.

use zerotouch_core::{Instant, Transport};
use zerotouch_device::Path;

/// What an adversary puts on the links after seeing a device's datagram.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Wire {
    /// Sent on towards the server (in order).
    pub to_server: Vec<Vec<u8>>,
    /// Sent back to the device as if from the server (forgeries, replays).
    pub to_device: Vec<Vec<u8>>,
    /// Relayed to the server over another transport (no client certificate); the answers
    /// come back to the device as answers to it would.
    pub to_server_over: Vec<(Transport, Vec<u8>)>,
}

impl Wire {
    /// The datagram passed on unchanged.
    pub fn forward(bytes: Vec<u8>) -> Wire {
        Wire {
            to_server: vec![bytes],
            ..Wire::default()
        }
    }
}

/// An attacker on the setup network, the home network, or the path to the server. Every
/// datagram passes through it before the link's loss, delay and duplication. The default
/// methods pass everything on unchanged.
pub trait Adversary {
    /// A datagram the device sent over `path`.
    fn on_device_datagram(&mut self, now: Instant, path: Path, bytes: Vec<u8>) -> Wire {
        let _ = (now, path);
        Wire::forward(bytes)
    }

    /// An answer the server sent to the device over `path`: returns what the device gets.
    fn on_server_answer(&mut self, now: Instant, path: Path, bytes: Vec<u8>) -> Vec<Vec<u8>> {
        let _ = (now, path);
        vec![bytes]
    }
}

/// Nobody on the links.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoAdversary;

impl Adversary for NoAdversary {}

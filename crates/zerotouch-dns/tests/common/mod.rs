//! Test infrastructure for the DNS transport: a real unbound on loopback and a faulty relay.
// Each test binary uses a different part of these helpers.
#![allow(dead_code)]

pub mod attacker;
pub mod proxy;
pub mod unbound;
#[cfg(all(feature = "server", feature = "client"))]
pub mod world;

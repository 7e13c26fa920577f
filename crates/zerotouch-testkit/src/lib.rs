//! # zerotouch-testkit
//!
//! Test support the transport crates share (`publish = false`), so each binding's tests build
//! the same deployment the same way:
//!
//! - [`flow1`]: the server's keys and what firmware pins, a setup service with fixture device 1
//!   (from `zerotouch-store-suite`) registered to an account with a home network, the device's
//!   session on any transport, a radio that sees that network, and one call that runs flow 1.
//! - [`raw_client`]: a device speaking flow 1 by hand from the core's primitives, for tests
//!   that send what a correct device sends, and anything else (a nonce used twice, a request
//!   signed by another key).
//! - [`spec`]: reads a section of `docs/PROTOCOL.md`, its tables and its numbers, for the
//!   tests that keep the spec and the code from drifting.
//!
//! ```
//! use zerotouch_testkit::spec;
//!
//! assert_eq!(spec::grouped(4202), "4,202");
//! assert_eq!(spec::number("about 1,232 bytes"), 1232);
//! ```

pub mod flow1;
pub mod raw_client;
pub mod spec;

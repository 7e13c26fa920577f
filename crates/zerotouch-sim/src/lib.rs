//! # zerotouch-sim
//!
//! Flow 1 (and, in [`HandoffSim`], flow 2) proven the way quinn-proto proves its connection: a deterministic harness that
//! runs the real [`zerotouch_device::DeviceSession`], the real setup-network engine
//! ([`zerotouch_provisioner::SetupNetwork`], enforcing its admission and packet decisions on
//! every datagram over the setup network) and the real [`zerotouch_server::SetupService`] on
//! a real store, over links that drop, delay, duplicate and reorder, with an
//! [`Adversary`] on the wire and power cuts mid-flow.
//!
//! Nothing here reads a clock or an OS RNG: time is virtual and every RNG is seeded from
//! [`SimConfig::seed`], so a run is reproducible byte for byte (the whole-session vectors in
//! `docs/vectors/session.json` are one such run). Not published: it is a test harness.
//!
//! ```
//! use zerotouch_device::{Event, Trigger};
//! use zerotouch_server::ServiceConfig;
//! use zerotouch_sim::*;
//!
//! let mut config = SimConfig::new(7);
//! config.setup_link = LinkConditions::hostile(20);
//! let (mut sim, _) = household_sim(config, ServiceConfig::default(), DeviceSpec::fixture(1))?;
//! sim.start(Trigger::FirstBoot);
//! assert_eq!(sim.run(), Outcome::Stopped(Event::Complete { revocation_checked: true }));
//! # Ok::<(), SimError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod adversary;
mod air;
mod deployment;
mod error;
mod handoff;
mod link;
mod recording_rng;
mod scenario;
mod sim;

pub use adversary::{Adversary, NoAdversary, Wire};
pub use air::{AccessPoint, Air};
pub use deployment::{
    Deployment, EPOCH, REVOCATION_KEY_SEED, SETUP_KEY_SEEDS, label, server_keys, server_signer,
};
pub use error::SimError;
pub use handoff::{
    ASSOCIATION_KEY_SEED, HANDOFF_PASSPHRASE, HandoffConfig, HandoffOutcome, HandoffSim,
    JOINER_SEED, SPONSOR_SEED, StreamConditions, association_pinned, handoff_store,
};
pub use link::LinkConditions;
pub use recording_rng::RecordingRng;
pub use scenario::{
    HOME_2G_PASSPHRASE, Household, NEIGHBOUR_PASSPHRASE, household, household_air, household_sim,
    runtime,
};
pub use sim::{
    DeviceSpec, LinkStats, Outcome, ROUTER, Reboot, SERVER, Sender, Sent, Sim, SimConfig,
};

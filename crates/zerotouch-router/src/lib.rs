//! # zerotouch-router
//!
//! The router side of the setup network (seed 000, paragraphs 0044-0046), enforced by the
//! kernel. `zerotouch-provisioner` decides (admission, eviction, bans) and renders its policy as
//! an nftables ruleset; this crate loads that ruleset with `nft` and turns each decision into
//! one `nft` transaction on the ruleset's sets (never a reload), from the access point's station
//! events. The `zerotouch-router` binary does the same from `hostapd_cli` lines on its input.
//!
//! ```no_run
//! use core::net::{IpAddr, Ipv4Addr};
//! use zerotouch_core::Instant;
//! use zerotouch_provisioner::*;
//! use zerotouch_router::{Nft, SetupRouter, StationEvent};
//!
//! let router = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1));
//! let server = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));
//! let policy = SetupNetworkPolicy::with_defaults(router, (router, 24), vec![server]);
//! let interfaces = RouterInterfaces {
//!     setup_bridge: "br-setup".into(),
//!     setup_ports: vec!["wlan0-1".into()],
//!     home: vec!["br-lan".into()],
//! };
//! let mut setup = SetupRouter::start(
//!     policy, interfaces, NftOptions::default(), NetworkMode::AlwaysOpen, Nft::find()?, Instant(0),
//! )?;
//! if let Some(event) = StationEvent::parse("<3>AP-STA-CONNECTED 02:5a:00:00:00:0a") {
//!     for action in setup.station(event, Instant(10))? {
//!         println!("{action}"); // "admitted 02:5a:00:00:00:0a"
//!     }
//! }
//! # Ok::<(), zerotouch_router::RouterError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod nft;
mod setup_router;
mod station_event;

pub use error::RouterError;
pub use nft::Nft;
pub use setup_router::{RouterAction, SetupRouter};
pub use station_event::StationEvent;

//! # zerotouch-dns
//!
//! Flow 1 carried inside DNS queries and answers, through recursive resolvers, for a device
//! whose only way out is DNS (a hotel or shop network behind a captive portal). The binding
//! only moves the core's bytes; `docs/PROTOCOL.md` section 19 specifies it for a device in C.
//!
//! - The framing (`no_std` + `alloc`, what firmware on lwIP runs): [`Query`] names
//!   (`<data labels>.<header label>.<zone>`, base32 that survives 0x20 case randomisation),
//!   [`AnswerPayload`]s in one TXT record sized to the device's [`AnswerLimit`], and
//!   [`TunnelClient`], the device's sans-IO tunnel: message in, names out, answers in,
//!   response out, with timeouts, retries, pacing, a retry cookie and an EDNS probe.
//! - [`TunnelRecord`]: what the server keeps of a tunnel between queries (in its store).
//! - Feature `server`: the authoritative server (tokio, UDP and TCP) in front of the setup
//!   service. Feature `client`: the device client that drives a `zerotouch-device` session
//!   through a resolver.
//!
//! ```
//! use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
//! use zerotouch_core::Instant;
//! use zerotouch_dns::*;
//!
//! let zone = Zone::new("zt.example.com")?;
//! let mut tunnel = TunnelClient::new(TunnelConfig::new(zone.clone()), &mut ChaCha20Rng::seed_from_u64(1));
//! tunnel.send(b"a flow-1 message", &mut ChaCha20Rng::seed_from_u64(2))?;
//! // The first query asks for the server's retry cookie.
//! let query = tunnel.poll_query(Instant(0)).expect("a query is due");
//! assert_eq!(query.kind, QueryKind::Cookie);
//! // The server reads the name the way the resolver delivers it: in any case.
//! let seen = query.name.to_ascii_uppercase();
//! let NameKind::Query(parsed) = Query::classify(&seen, &zone)? else { panic!("a whole query") };
//! assert_eq!(parsed.header.tunnel, tunnel.tunnel());
//! // It answers with a cookie in one TXT record; the tunnel then sends the message's data.
//! let answer = AnswerPayload { status: AnswerStatus::Cookie, length: 0, body: vec![7; 5] };
//! assert_eq!(tunnel.handle_answer(Instant(5), &seen, Reply::Txt(answer.to_strings())), Handled::Accepted);
//! assert_eq!(tunnel.poll_query(Instant(20)).expect("data").kind, QueryKind::LastData);
//! # Ok::<(), DnsError>(())
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod answer;
#[cfg(feature = "client")]
pub mod client;
mod error;
pub mod header;
#[cfg(feature = "local-resolver")]
pub mod local_resolver;
pub mod name;
#[cfg(feature = "server")]
pub mod server;
pub mod tunnel_client;
pub mod tunnel_record;
mod zone;

pub use answer::{AnswerPayload, AnswerStatus, body_capacity};
pub use error::DnsError;
pub use header::{AnswerLimit, Cookie, QueryHeader, QueryKind, TunnelId};
pub use name::{NameKind, Query, max_data_per_query};
#[cfg(feature = "server")]
pub use server::{
    DnsHandler, DnsServerConfig, DnsServerError, HandlerAnswer, QueryLimit, RunningDnsServer,
    serve_dns,
};
pub use tunnel_client::{
    AnswerProblem, Handled, OutgoingQuery, Reply, TunnelClient, TunnelConfig, TunnelEvent,
    TunnelFailure, TunnelStats,
};
pub use tunnel_record::{ChunkAdded, TunnelRecord};
pub use zone::Zone;

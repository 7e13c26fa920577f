//! Flow 1 end to end over the DNS binding: a real device session, through a real caching
//! recursive resolver (unbound with 0x20 case randomisation and QNAME minimisation), to the
//! authoritative server in front of the setup service on the embedded store; then the same
//! without EDNS, and through a resolver of our own that drops, duplicates and delays. And the
//! EDNS probe through unbound, for a response long enough to need polls.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::proxy::{DnsProxy, Faults};
use common::unbound::{Unbound, UnboundOptions};
use common::world::{DnsWorld, ZONE, provision, tunnel_config, zone};
use zerotouch_core::Instant;
use zerotouch_device::Event;
use zerotouch_dns::client::{DnsClientConfig, DnsExchange};
use zerotouch_dns::name::name_wire_len;
use zerotouch_dns::server::response_key;
use zerotouch_dns::{AnswerLimit, body_capacity};
use zerotouch_store::{SessionStore, StoredResponse};
use zerotouch_store_suite::fixtures;

/// The run joined the home network with the account's passphrase, after the server asked for
/// and checked the PIN.
fn assert_provisioned(run: &zerotouch_device_tokio::DeviceRun, radio: &common::world::HomeRadio) {
    assert_eq!(run.joined.as_deref(), Some(&b"home"[..]));
    assert_eq!(radio.passphrase.as_deref(), Some(fixtures::PASSPHRASE));
    assert!(
        run.events
            .iter()
            .any(|e| matches!(e, Event::ServerAuthenticated { .. })),
        "the server proof was verified"
    );
    assert!(
        run.events
            .iter()
            .any(|e| matches!(e, Event::Complete { .. })),
        "the session completed (outcome report acknowledged over DNS too)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow1_completes_through_unbound_with_0x20_and_qname_minimisation() {
    let world = DnsWorld::start().await;
    let unbound = Unbound::start(ZONE, world.addr(), UnboundOptions::default())
        .await
        .unwrap();
    let mut exchange = DnsExchange::with_seed(
        DnsClientConfig::new(unbound.addr, tunnel_config(Some(1232))),
        [1; 32],
    );
    let (run, radio) = provision(&mut exchange, 1).await;
    let run = run.unwrap_or_else(|e| panic!("{e}\n{}", unbound.log()));
    assert_provisioned(&run, &radio);
    // Every flow-1 response fits the answer to its message's last chunk or needs one poll
    // whatever the answer size: the device never probed (PROTOCOL.md 19.6.2).
    let tunnel = exchange.tunnel_stats();
    assert_eq!(tunnel.probes, 0, "{tunnel:?}");
    assert_answers_within_512(&exchange);
}

/// The tunnel kept answers of 512 bytes, and every answer fit them without truncation.
fn assert_answers_within_512(exchange: &DnsExchange) {
    let wire = exchange.wire_stats();
    assert_eq!(exchange.tunnel().answer_limit().bytes(), 512);
    assert!(
        wire.largest_answer <= 512,
        "largest answer {} B",
        wire.largest_answer
    );
    assert_eq!(wire.tcp_queries, 0, "no answer was truncated");
}

/// A response too long for the answer to its last chunk: the device probes before the first
/// poll, unbound passes the 1,232-byte filler whole, and the polls ask for 1,232-byte answers.
/// (The server answers a message whose response it already holds with that response, as it
/// answers a retransmission: the test stores a long one for the tunnel's first message.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_needing_polls_is_probed_for_then_polled_at_1232_through_unbound() {
    let world = DnsWorld::start().await;
    let unbound = Unbound::start(ZONE, world.addr(), UnboundOptions::default())
        .await
        .unwrap();
    let mut exchange = DnsExchange::with_seed(
        DnsClientConfig::new(unbound.addr, tunnel_config(Some(1232))),
        [5; 32],
    );
    let response: Vec<u8> = (0..4000u32).map(|i| (i % 253) as u8).collect();
    let stored = StoredResponse {
        request_digest: [0; 32],
        response: response.clone(),
        expires_at: Instant(4_000_000_000_000),
    };
    world
        .store
        .put_response_if_absent(response_key(exchange.tunnel().tunnel(), 0), stored)
        .await
        .unwrap();
    let message = b"a message whose response is held";
    let got = exchange
        .round_trip(unbound.addr, message)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{e}
{}",
                unbound.log()
            )
        });
    assert_eq!(got, response);
    let (tunnel, wire) = (exchange.tunnel_stats(), exchange.wire_stats());
    assert_eq!(exchange.tunnel().answer_limit().bytes(), 1232, "{tunnel:?}");
    assert_eq!((tunnel.probes, tunnel.retries), (1, 0), "{tunnel:?}");
    // The first piece at 512 bytes, the rest in pieces as large as 1,232-byte answers allow.
    let first = body_capacity(AnswerLimit::CLASSIC, name_wire_len(&zone(), message.len()));
    let poll = body_capacity(
        AnswerLimit::from_bytes(1232).unwrap(),
        name_wire_len(&zone(), 0),
    );
    assert_eq!(
        tunnel.polls as usize,
        (4000 - first).div_ceil(poll),
        "{tunnel:?}"
    );
    assert!(
        wire.largest_answer > 1100 && wire.largest_answer <= 1232,
        "{wire:?}"
    );
    assert_eq!(wire.tcp_queries, 0, "no answer was truncated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow1_completes_through_unbound_without_edns_in_512_byte_answers() {
    let world = DnsWorld::start().await;
    let unbound = Unbound::start(ZONE, world.addr(), UnboundOptions::default())
        .await
        .unwrap();
    let mut exchange = DnsExchange::with_seed(
        DnsClientConfig::new(unbound.addr, tunnel_config(None)),
        [2; 32],
    );
    let (run, radio) = provision(&mut exchange, 2).await;
    let run = run.unwrap_or_else(|e| panic!("{e}\n{}", unbound.log()));
    assert_provisioned(&run, &radio);
    assert_answers_within_512(&exchange);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow1_completes_through_a_resolver_that_drops_duplicates_and_delays() {
    let world = DnsWorld::start().await;
    let faults = Faults {
        drop_query: 0.15,
        drop_answer: 0.15,
        duplicate_query: 0.25,
        delay_ms: (0, 40),
    };
    let proxy = DnsProxy::start(world.addr(), faults, 11).await;
    let mut exchange = DnsExchange::with_seed(
        DnsClientConfig::new(proxy.addr(), tunnel_config(None)),
        [3; 32],
    );
    let (run, radio) = provision(&mut exchange, 3).await;
    let run = run.unwrap();
    assert_provisioned(&run, &radio);
    let stats = proxy.stats();
    assert!(stats.dropped > 0, "{stats:?}");
    assert!(stats.duplicated > 0, "{stats:?}");
    assert!(exchange.tunnel_stats().retries > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow1_completes_through_a_lossy_resolver_in_front_of_unbound() {
    let world = DnsWorld::start().await;
    let unbound = Unbound::start(ZONE, world.addr(), UnboundOptions::default())
        .await
        .unwrap();
    let faults = Faults {
        drop_query: 0.1,
        drop_answer: 0.1,
        duplicate_query: 0.2,
        delay_ms: (0, 20),
    };
    let proxy = DnsProxy::start(unbound.addr, faults, 12).await;
    let mut exchange = DnsExchange::with_seed(
        DnsClientConfig::new(proxy.addr(), tunnel_config(Some(1232))),
        [4; 32],
    );
    let (run, radio) = provision(&mut exchange, 4).await;
    let run = run.unwrap_or_else(|e| panic!("{e}\n{}", unbound.log()));
    assert_provisioned(&run, &radio);
}

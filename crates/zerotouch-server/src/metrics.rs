//! What an operator watches: requests by message and result, reported outcomes, lock-outs,
//! revocation checks, flow-2 verification requests and store latency, as Prometheus metrics.
//!
//! The service counts; transports register the same families into their registry and add
//! their own (request latency by endpoint), so one scrape shows the whole server.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use zerotouch_core::MessageTag;
use zerotouch_store::OutcomeKind;

use crate::Refusal;

/// Label pairs: names and values are fixed strings, so no request can grow the label space.
pub type Labels = Vec<(&'static str, &'static str)>;

type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 100 µs to ~3.3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// The setup service's metrics. Clones share the same counters.
#[derive(Debug, Clone)]
pub struct ServiceMetrics {
    requests: Family<Labels, Counter>,
    outcomes: Family<Labels, Counter>,
    lockouts: Counter,
    revocation_checks: Family<Labels, Counter>,
    association_requests: Family<Labels, Counter>,
    store_latency: HistogramFamily,
}

impl Default for ServiceMetrics {
    fn default() -> Self {
        ServiceMetrics {
            requests: Family::default(),
            outcomes: Family::default(),
            lockouts: Counter::default(),
            revocation_checks: Family::default(),
            association_requests: Family::default(),
            store_latency: Family::new_with_constructor(latency_histogram),
        }
    }
}

fn message_name(tag: Option<MessageTag>) -> &'static str {
    match tag {
        Some(MessageTag::Hello) => "hello",
        Some(MessageTag::CredentialRequest) => "credential_request",
        Some(MessageTag::OutcomeReport) => "outcome_report",
        Some(MessageTag::RevocationQuery) => "revocation_query",
        Some(_) => "other",
        None => "undecodable",
    }
}

fn outcome_name(kind: OutcomeKind) -> &'static str {
    match kind {
        OutcomeKind::Joined => "joined",
        OutcomeKind::WrongPassphrase => "wrong_passphrase",
        OutcomeKind::NetworkGone => "network_gone",
        OutcomeKind::DhcpFailed => "dhcp_failed",
        OutcomeKind::Other => "other",
    }
}

impl ServiceMetrics {
    /// Registers every family into `registry` (names start with `zerotouch_`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "zerotouch_setup_requests",
            "Flow-1 requests by message and result (answered, or the refusal reason)",
            self.requests.clone(),
        );
        registry.register(
            "zerotouch_setup_outcomes",
            "Join outcomes devices reported, by outcome",
            self.outcomes.clone(),
        );
        registry.register(
            "zerotouch_pin_lockouts",
            "Devices locked out after wrong PINs",
            self.lockouts.clone(),
        );
        registry.register(
            "zerotouch_revocation_checks",
            "Revocation queries answered, by verdict",
            self.revocation_checks.clone(),
        );
        registry.register(
            "zerotouch_association_requests",
            "Flow-2 verification requests by result (answered, or the refusal reason)",
            self.association_requests.clone(),
        );
        registry.register(
            "zerotouch_store_operation_seconds",
            "Store operation latency, by operation",
            self.store_latency.clone(),
        );
    }

    pub(crate) fn request(&self, tag: Option<MessageTag>, refusal: Option<Refusal>) {
        let result = refusal.map_or("answered", Refusal::as_str);
        self.requests
            .get_or_create(&vec![("message", message_name(tag)), ("result", result)])
            .inc();
    }

    pub(crate) fn outcome(&self, kind: OutcomeKind) {
        self.outcomes
            .get_or_create(&vec![("outcome", outcome_name(kind))])
            .inc();
    }

    pub(crate) fn lockout(&self) {
        self.lockouts.inc();
    }

    pub(crate) fn revocation_check(&self, revoked: bool) {
        let verdict = if revoked { "revoked" } else { "good" };
        self.revocation_checks
            .get_or_create(&vec![("verdict", verdict)])
            .inc();
    }

    pub(crate) fn association_request(&self, result: &'static str) {
        self.association_requests
            .get_or_create(&vec![("result", result)])
            .inc();
    }

    /// Records one store operation's latency (used by [`crate::MeasuredStore`]).
    pub fn store_operation(&self, operation: &'static str, elapsed: Duration) {
        self.store_latency
            .get_or_create(&vec![("operation", operation)])
            .observe(elapsed.as_secs_f64());
    }

    /// How many requests with this message and result were counted (tests, health checks).
    pub fn requests_counted(&self, message: &'static str, result: &'static str) -> u64 {
        self.requests
            .get_or_create(&vec![("message", message), ("result", result)])
            .get()
    }

    /// How many flow-2 verification requests with this result were counted (`"answered"` or
    /// an [`AssociationRefusal::as_str`](crate::AssociationRefusal::as_str)).
    pub fn association_requests_counted(&self, result: &'static str) -> u64 {
        self.association_requests
            .get_or_create(&vec![("result", result)])
            .get()
    }
}

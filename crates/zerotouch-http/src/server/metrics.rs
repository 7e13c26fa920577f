//! The HTTP layer's own metrics, beside the setup service's.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

fn latency_histogram() -> Histogram {
    // 250 µs to ~8 s.
    Histogram::new(exponential_buckets(0.00025, 2.0, 16))
}

#[derive(Debug, Clone)]
pub(crate) struct HttpMetrics {
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    connections_refused: Family<Labels, Counter>,
    handshake_failures: Counter,
    open_connections: Gauge,
}

impl HttpMetrics {
    pub(crate) fn new(registry: &mut Registry) -> Self {
        let metrics = HttpMetrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            connections_refused: Family::default(),
            handshake_failures: Counter::default(),
            open_connections: Gauge::default(),
        };
        registry.register(
            "zerotouch_http_requests",
            "HTTP requests by endpoint and status",
            metrics.requests.clone(),
        );
        registry.register(
            "zerotouch_http_request_seconds",
            "HTTP request latency by endpoint, from head received to response ready",
            metrics.latency.clone(),
        );
        registry.register(
            "zerotouch_http_connections_refused",
            "Connections closed at accept, by reason",
            metrics.connections_refused.clone(),
        );
        registry.register(
            "zerotouch_tls_handshake_failures",
            "TLS handshakes that failed or timed out",
            metrics.handshake_failures.clone(),
        );
        registry.register(
            "zerotouch_http_connections_open",
            "Open client connections",
            metrics.open_connections.clone(),
        );
        metrics
    }

    pub(crate) fn request(&self, endpoint: &'static str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&vec![
                ("endpoint", endpoint.to_string()),
                ("status", status.to_string()),
            ])
            .inc();
        self.latency
            .get_or_create(&vec![("endpoint", endpoint.to_string())])
            .observe(elapsed.as_secs_f64());
    }

    pub(crate) fn connection_refused(&self, reason: &'static str) {
        self.connections_refused
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }

    pub(crate) fn handshake_failed(&self) {
        self.handshake_failures.inc();
    }

    pub(crate) fn connection_opened(&self) {
        self.open_connections.inc();
    }

    pub(crate) fn connection_closed(&self) {
        self.open_connections.dec();
    }
}

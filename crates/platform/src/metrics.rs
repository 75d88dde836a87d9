//! Prometheus metrics: one registry per service instance (so many instances can share a
//! test process), rendered at `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// The fleet's shared metrics; services register their own on [`Metrics::registry`].
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

// The outbox and consumer metrics are written only with the `messaging` feature (the
// gateway registers them and never moves them).
#[cfg_attr(not(feature = "messaging"), allow(dead_code))]
struct Inner {
    registry: Registry,
    http_requests: IntCounterVec,
    http_latency: HistogramVec,
    outbox_backlog: IntGauge,
    outbox_published: IntCounterVec,
    events: IntCounterVec,
    consumer_lag: IntGaugeVec,
}

/// What became of one consumed event, for `housebook_events_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// The handler's change committed.
    Applied,
    /// Its `eventId` was already in the inbox: skipped.
    Duplicate,
    /// Not an event type this service handles.
    Ignored,
    /// One failed attempt (it may be retried).
    Failed,
    /// Parked on the dead-letter topic.
    DeadLettered,
}

impl EventOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
            Self::Failed => "failed",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

impl Metrics {
    /// A fresh registry with the shared metrics, labelled with the service name.
    pub fn new(service: &str) -> Result<Self, prometheus::Error> {
        let labels = std::iter::once(("service".to_owned(), service.to_owned())).collect();
        let registry = Registry::new_custom(Some("housebook".into()), Some(labels))?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, matched route and status",
            ),
            &["method", "route", "status"],
        )?;
        let http_latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP latency by matched route",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["method", "route"],
        )?;
        let outbox_backlog = IntGauge::new("outbox_backlog", "Outbox rows not yet published")?;
        let outbox_published = IntCounterVec::new(
            Opts::new("outbox_published_total", "Outbox rows published to Kafka"),
            &["topic"],
        )?;
        let events = IntCounterVec::new(
            Opts::new("events_total", "Consumed events by type and outcome"),
            &["event_type", "outcome"],
        )?;
        let consumer_lag = IntGaugeVec::new(
            Opts::new(
                "consumer_lag",
                "Messages between the consumer position and the end",
            ),
            &["topic", "partition"],
        )?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_latency.clone()))?;
        registry.register(Box::new(outbox_backlog.clone()))?;
        registry.register(Box::new(outbox_published.clone()))?;
        registry.register(Box::new(events.clone()))?;
        registry.register(Box::new(consumer_lag.clone()))?;
        Ok(Self(Arc::new(Inner {
            registry,
            http_requests,
            http_latency,
            outbox_backlog,
            outbox_published,
            events,
            consumer_lag,
        })))
    }

    /// The registry, for service-specific metrics.
    pub fn registry(&self) -> &Registry {
        &self.0.registry
    }

    /// `method` is a [`method_label`] (`'static`: never a string the client sent).
    pub(crate) fn observe_http(
        &self,
        method: &'static str,
        route: &str,
        status: u16,
        elapsed: Duration,
    ) {
        self.0
            .http_requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.0
            .http_latency
            .with_label_values(&[method, route])
            .observe(elapsed.as_secs_f64());
    }

    #[cfg_attr(not(feature = "messaging"), allow(dead_code))]
    pub(crate) fn set_outbox_backlog(&self, rows: i64) {
        self.0.outbox_backlog.set(rows);
    }

    #[cfg_attr(not(feature = "messaging"), allow(dead_code))]
    pub(crate) fn outbox_published(&self, topic: &str, n: u64) {
        self.0
            .outbox_published
            .with_label_values(&[topic])
            .inc_by(n);
    }

    /// Counts one consumed event.
    pub fn event(&self, event_type: &str, outcome: EventOutcome) {
        self.0
            .events
            .with_label_values(&[event_type, outcome.label()])
            .inc();
    }

    /// How many events of a type ended with an outcome (tests read this).
    pub fn event_count(&self, event_type: &str, outcome: EventOutcome) -> u64 {
        self.0
            .events
            .with_label_values(&[event_type, outcome.label()])
            .get()
    }

    #[cfg_attr(not(feature = "messaging"), allow(dead_code))]
    pub(crate) fn set_consumer_lag(&self, topic: &str, partition: i32, lag: i64) {
        self.0
            .consumer_lag
            .with_label_values(&[topic, &partition.to_string()])
            .set(lag);
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if TextEncoder::new()
            .encode(&self.0.registry.gather(), &mut buf)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// The `method` label of a request: one of HTTP's nine methods (RFC 9110 and PATCH), else
/// `OTHER`. A client chooses the method it sends, and a label taken as sent would let it
/// mint a new time series (of any length) per request.
pub fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    KNOWN
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("OTHER")
}

/// `GET /metrics`.
pub async fn handler(State(metrics): State<Metrics>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_up_method_is_counted_as_other_and_a_known_one_as_itself() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("PATCH"), "PATCH");
        assert_eq!(method_label("get"), "OTHER");
        assert_eq!(method_label(&"X".repeat(3000)), "OTHER");
        let m = Metrics::new("t").expect("registry");
        for i in 0..30 {
            m.observe_http(method_label(&format!("BREW{i}")), "/x", 405, Duration::ZERO);
        }
        m.observe_http("GET", "/x", 200, Duration::ZERO);
        let text = m.render();
        assert!(
            text.contains(r#"housebook_http_requests_total{method="OTHER",route="/x",status="405",service="t"} 30"#),
            "{text}"
        );
        assert!(!text.contains("BREW"), "{text}");
        assert_eq!(
            text.matches("housebook_http_requests_total{").count(),
            2,
            "{text}"
        );
    }
}

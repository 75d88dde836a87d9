//! W3C trace context across the fleet (SPEC §8): taken from and given to every HTTP hop
//! (`traceparent`), and carried by every Kafka message — as a header, and in the envelope
//! in case headers are lost — so one booking is one trace from the gateway to house's
//! reservation, mypage's row and the customer's notification.
//!
//! An event produced while events are applied belongs to the trace of the event that
//! caused it: the consumer loop hands the handler a [`scope`] of trace contexts keyed by
//! correlation id (the booking), and the outbox looks its event's booking up there before
//! it falls back to the current span.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header (and envelope field) name.
pub const TRACEPARENT: &str = "traceparent";

tokio::task_local! {
    static CAUSES: HashMap<String, String>;
}

/// A span's context as a `traceparent` value; `None` when spans carry no trace (no
/// OpenTelemetry layer installed, as in tests that run services in-process).
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// The current span's `traceparent`.
pub fn current() -> Option<String> {
    traceparent_of(&tracing::Span::current())
}

/// Makes `span` a child of the context a `traceparent` names (ignored when malformed) and
/// records the trace id in its `trace_id` field, if it has one.
pub fn adopt(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(cx) = traceparent.and_then(context_of) {
        // Only fails when the span is disabled; then there is nothing to adopt.
        let _ = span.set_parent(cx);
    }
    let id = span.context().span().span_context().trace_id();
    if id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(id));
    }
}

/// The trace-context headers a client may send besides `traceparent`; an edge that does
/// not trust the client's context drops them too, so they reach no service.
pub const CLIENT_CONTEXT: [&str; 3] = [TRACEPARENT, "tracestate", "baggage"];

/// Starts `span` as a new trace linked to the client's context (when `traceparent` names
/// one), rather than in it: a client then cannot choose the fleet's trace ids nor join
/// its requests to another's trace, and its context is kept for whoever follows the link.
/// Records the new trace id in the span's `trace_id` field.
pub fn link(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(cx) = traceparent.and_then(context_of) {
        span.add_link(cx.span().span_context().clone());
    }
    adopt(span, None);
}

/// The context a `traceparent` names; `None` when it is malformed.
fn context_of(traceparent: &str) -> Option<opentelemetry::Context> {
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    cx.span().span_context().is_valid().then_some(cx)
}

/// Continues the client's trace ([`adopt`]) when `trusted`, else starts a new one linked
/// to it ([`link`]).
pub fn continue_or_link(span: &tracing::Span, traceparent: Option<&str>, trusted: bool) {
    if trusted {
        adopt(span, traceparent);
    } else {
        link(span, traceparent);
    }
}

/// The trace id in a `traceparent` (`00-<trace id>-<span id>-<flags>`).
pub fn trace_id(traceparent: &str) -> Option<&str> {
    traceparent.split('-').nth(1).filter(|t| t.len() == 32)
}

/// Runs `fut` with the trace contexts of the events it applies, by correlation id.
pub async fn scope<F: std::future::Future>(causes: HashMap<String, String>, fut: F) -> F::Output {
    CAUSES.scope(causes, fut).await
}

/// The `traceparent` an event about `correlation_id` belongs to: the event that caused it
/// (inside [`scope`]), else the current span.
pub fn for_event(correlation_id: &str) -> Option<String> {
    CAUSES
        .try_with(|c| c.get(correlation_id).cloned())
        .ok()
        .flatten()
        .or_else(current)
}

/// A request carrying the current trace context.
pub fn inject(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match current() {
        Some(tp) => request.header(TRACEPARENT, tp),
        None => request,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_id_is_the_second_part() {
        assert_eq!(
            trace_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(trace_id("garbage"), None);
        assert_eq!(trace_id("00-short-00f067aa0ba902b7-01"), None);
    }

    #[tokio::test]
    async fn inside_a_scope_an_event_belongs_to_its_cause() {
        let causes = HashMap::from([("b-1".to_owned(), "00-aa-bb-01".to_owned())]);
        let got = scope(causes, async { (for_event("b-1"), for_event("b-2")) }).await;
        assert_eq!(got, (Some("00-aa-bb-01".to_owned()), None));
        assert_eq!(
            for_event("b-1"),
            None,
            "outside the scope, the current span (none)"
        );
    }
}

//! `tracing` set-up: JSON logs (or pretty ones for a terminal) filtered by settings, and
//! OpenTelemetry traces under the same spans.
//!
//! Every span is also an OpenTelemetry span (`tracing-opentelemetry`), so it has a trace
//! id, which [`crate::trace`] carries over HTTP (`traceparent`) and Kafka (a header, and
//! the envelope). The spans the platform opens for a request or an event record that
//! trace id as a field, and JSON lines list their spans, so every line logged while
//! serving a request or applying an event carries it. Spans are exported over OTLP/HTTP
//! only when `log.otlp_endpoint` is set.

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

use crate::settings::LogSettings;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Installs the global subscriber once for `service`; later calls (tests) are no-ops.
pub fn init(service: &'static str, settings: &LogSettings) {
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| EnvFilter::try_new(&settings.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let provider = PROVIDER.get_or_init(|| {
        // The exporter's blocking HTTP client runs a runtime of its own, which may not be
        // made (or dropped) inside the async `main`: build it on a thread of its own.
        let settings = settings.clone();
        std::thread::spawn(move || provider(service, &settings))
            .join()
            .unwrap_or_else(|_| SdkTracerProvider::builder().build())
    });
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer(service));
    let logs = if settings.format == "pretty" {
        fmt::layer().with_target(false).boxed()
    } else {
        fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .boxed()
    };
    let result = tracing_subscriber::registry()
        .with(filter)
        .with(otel)
        .with(logs)
        .try_init();
    // A second init (many apps in one test process) is expected and harmless.
    drop(result);
}

/// The tracer provider: with an OTLP/HTTP exporter (batched, on a thread of its own) when
/// an endpoint is set; without one, spans still get ids and are dropped when they end.
fn provider(service: &'static str, settings: &LogSettings) -> SdkTracerProvider {
    let builder = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(service).build());
    let Some(endpoint) = settings.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) else {
        return builder.build();
    };
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .with_timeout(std::time::Duration::from_secs(5))
        .with_http_client(
            reqwest::blocking::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
        )
        .build();
    match exporter {
        Ok(exporter) => builder.with_batch_exporter(exporter).build(),
        Err(e) => {
            eprintln!("telemetry: no OTLP export to {endpoint}: {e}");
            builder.build()
        }
    }
}

/// Sends the spans not exported yet (before the process exits).
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        if let Err(e) = provider.shutdown() {
            tracing::debug!(error = %e, "telemetry: shutdown");
        }
    }
}

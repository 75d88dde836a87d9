//! `tracing` set-up: JSON logs (or pretty ones for a terminal) filtered by settings.

use tracing_subscriber::{fmt, EnvFilter};

use crate::settings::LogSettings;

/// Installs the global subscriber once; later calls (tests) are no-ops.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| EnvFilter::try_new(&settings.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let result = if settings.format == "pretty" {
        fmt().with_env_filter(filter).with_target(false).try_init()
    } else {
        fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .try_init()
    };
    // A second init (many apps in one test process) is expected and harmless.
    drop(result);
}

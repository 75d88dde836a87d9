//! Runs [`BookService::reconcile`] on a timer until shutdown (I2).

use std::time::Duration;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::domain::service::BookService;

/// How often, and after how long, unmatched payments are refunded.
#[derive(schemars::JsonSchema, Debug, Clone, Copy, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct ReconcileSettings {
    /// Pause between two passes, in milliseconds.
    pub interval_ms: u64,
    /// How long a payment may wait for its booking before it is refunded, in milliseconds.
    /// Far longer than any booking call; a payment is refunded at most
    /// `grace_ms + interval_ms` after book saw its `Paid`.
    pub grace_ms: u64,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        Self {
            interval_ms: 2_000,
            grace_ms: 10_000,
        }
    }
}

/// The reconciler loop.
pub async fn run(service: BookService, settings: ReconcileSettings, stop: CancellationToken) {
    let grace = Duration::from_millis(settings.grace_ms);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(settings.interval_ms)) => {}
        }
        match service.reconcile(grace).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(refunds = n, "reconcile: refunds made"),
            Err(e) => tracing::warn!(error = format!("{e:#}"), "reconcile pass failed"),
        }
    }
}

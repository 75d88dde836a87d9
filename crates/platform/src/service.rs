//! The shape every service's `Application` has, so `main` and the test harness are
//! written once for the whole fleet.

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::settings::{LogSettings, ServiceDefaults};

/// A service of the fleet: built from settings, then run until shutdown.
#[async_trait]
pub trait Service: Sized + Send + 'static {
    /// All of its settings.
    type Settings: DeserializeOwned + Send + 'static;
    /// Its name and local port.
    const DEFAULTS: ServiceDefaults;
    /// Its log settings.
    fn log(settings: &Self::Settings) -> &LogSettings;
    /// Connects, migrates and binds; serves nothing yet.
    async fn build(settings: Self::Settings, shutdown: CancellationToken) -> anyhow::Result<Self>;
    /// The bound port.
    fn port(&self) -> u16;
    /// Serves until `shutdown` is cancelled, then drains.
    async fn run(self) -> anyhow::Result<()>;
}

/// The whole of a service binary's `main`: settings, logs, signals, build, run.
pub async fn main<S: Service>() -> anyhow::Result<()> {
    let settings: S::Settings = crate::settings::load(S::DEFAULTS)?;
    crate::telemetry::init(S::DEFAULTS.name, S::log(&settings));
    let shutdown = CancellationToken::new();
    crate::shutdown::cancel_on_signal(shutdown.clone());
    let app = S::build(settings, shutdown).await?;
    let ran = app.run().await;
    // Blocking: the last spans go out (bounded by the exporter's timeout).
    let _ = tokio::task::spawn_blocking(crate::telemetry::shutdown).await;
    ran
}

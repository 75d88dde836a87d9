//! The `payment` service binary: settings in, application out, wait for shutdown.

use platform::shutdown::{cancel_on_signal, CancellationToken};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = payment::Settings::load()?;
    platform::telemetry::init(&settings.common.log);
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let app = payment::Application::build(settings, shutdown).await?;
    app.run().await
}

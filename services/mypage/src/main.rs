//! The `mypage` service binary. `mypage rebuild` rebuilds the view from scratch by
//! replaying the event topics (stop the service first; `./dev rebuild-mypage` does it all).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        None => platform::service::main::<mypage::Application>().await,
        Some("rebuild") => {
            let settings: mypage::Settings = platform::settings::load(mypage::DEFAULTS)?;
            platform::telemetry::init(mypage::NAME, &settings.common.log);
            let applied = mypage::rebuild(&settings).await?;
            tracing::info!(applied, "view rebuilt");
            Ok(())
        }
        Some(other) => anyhow::bail!("unknown command {other:?} (expected nothing, or `rebuild`)"),
    }
}

//! The `mypage` service binary. `mypage rebuild` rebuilds the view from scratch by
//! replaying the event topics (stop the service first; `./dev rebuild-mypage` does it all).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("rebuild") => {
            let settings: mypage::Settings = platform::settings::load(mypage::DEFAULTS)?;
            platform::telemetry::init(mypage::NAME, &settings.common.log);
            let applied = mypage::rebuild(&settings).await?;
            tracing::info!(applied, "view rebuilt");
            Ok(())
        }
        // Running, --help, --version, and refusing anything else: as every service.
        _ => {
            platform::service::main_with::<mypage::Application>(&[(
                "rebuild",
                "rebuilds the view from scratch by replaying the event topics, then exits \
             (stop the service first; ./dev rebuild-mypage does it all)",
            )])
            .await
        }
    }
}

//! The read side (SPEC §1, CQRS): one row per booking, owned by its customer and updated
//! in place by every event of that booking, plus per-house availability by night — built
//! only from events, never from another service's database. [`rebuild`] rebuilds it from
//! scratch by replaying the event topics.

pub mod domain;
pub mod inbound;
pub mod outbound;

use std::sync::Arc;

use platform::db::{Db, MigrationSql};
use platform::runtime::Runtime;
use platform::service::Service;
use platform::settings::{CommonSettings, LogSettings, ServiceDefaults};
use platform::shutdown::CancellationToken;
use serde::Deserialize;

use crate::domain::service::ViewService;

/// The service's name: consumer group, database file, metrics label.
pub const NAME: &str = "mypage";

/// Name and local port.
pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    name: NAME,
    port: fleet::MYPAGE.port,
};

/// The migrations of the view database (after the platform's outbox and inbox).
pub const MIGRATIONS: &[MigrationSql] = &[MigrationSql {
    version: 2,
    description: "the view",
    sqlite: include_str!("../migrations/0002_view.sql"),
    postgres: include_str!("../migrations/0002_view.sql"),
}];

/// All of mypage's settings.
#[derive(schemars::JsonSchema, Debug, Clone, Default, serde::Serialize, Deserialize)]
pub struct Settings {
    /// What every service has.
    #[serde(flatten)]
    pub common: CommonSettings,
}

/// A built, not yet running, mypage service.
pub struct Application {
    runtime: Runtime,
    router: axum::Router,
    handler: Arc<inbound::kafka::ViewEvents>,
}

#[async_trait::async_trait]
impl Service for Application {
    type Settings = Settings;
    const DEFAULTS: ServiceDefaults = DEFAULTS;

    fn log(settings: &Settings) -> &LogSettings {
        &settings.common.log
    }

    async fn build(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let runtime = Runtime::build(NAME, &settings.common, MIGRATIONS, shutdown).await?;
        let service = ViewService::new(Arc::new(outbound::db::SqlView::new(runtime.db().clone())));
        let verifier = platform::auth::TokenVerifier::new(&settings.common.auth)?;
        let handler = Arc::new(inbound::kafka::ViewEvents::new(service.clone()));
        let router = inbound::http::router(inbound::http::AppState { service, verifier });
        Ok(Self {
            runtime,
            router,
            handler,
        })
    }

    fn port(&self) -> u16 {
        self.runtime.port()
    }

    async fn run(self) -> anyhow::Result<()> {
        self.runtime.run(self.router, Some(self.handler)).await
    }
}

/// Empties the view and replays the event topics into it. Run it with the service stopped;
/// events after the replay's end are applied when the service starts (those it already
/// has are skipped by the inbox). Returns how many events were applied.
pub async fn rebuild(settings: &Settings) -> anyhow::Result<u64> {
    let db = Db::connect(&settings.common.database, MIGRATIONS).await?;
    let service = ViewService::new(Arc::new(outbound::db::SqlView::new(db.clone())));
    service.clear().await?;
    let applied = platform::consumer::replay(
        &settings.common.kafka,
        Arc::new(inbound::kafka::ViewEvents::new(service)),
    )
    .await;
    db.close().await;
    applied
}

#[cfg(test)]
mod help {
    /// `mypage --help` lists every setting, each a variable that works.
    #[test]
    fn every_setting_help_lists_is_a_variable_that_works() {
        platform::service::check_help::<super::Application>().unwrap();
    }
}

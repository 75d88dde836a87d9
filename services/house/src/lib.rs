//! The house context (SPEC §1, Supporting): houses and their night-by-night calendars.
//!
//! Admins register houses (`HouseRegistered`). When a booking is `Paid`, the house reserves
//! its nights atomically — a uniqueness constraint on (house, night) means two overlapping
//! reservations can never both succeed (I3) — and answers `HouseRented`, or
//! `HouseRentRejected` when a night is taken or the house is unknown. A cancelled payment
//! or booking releases the nights (`HouseRentCanceled`).

pub mod domain;
pub mod inbound;
pub mod outbound;

use std::sync::Arc;

use platform::db::MigrationSql;
use platform::runtime::Runtime;
use platform::service::Service;
use platform::settings::{CommonSettings, LogSettings, ServiceDefaults};
use platform::shutdown::CancellationToken;
use serde::Deserialize;

use crate::domain::service::HouseService;

/// The service's name: consumer group, database file, metrics label.
pub const NAME: &str = "house";

/// The migrations of the house database (after the platform's outbox and inbox).
pub const MIGRATIONS: &[MigrationSql] = &[MigrationSql {
    version: 2,
    description: "houses, nights, rentals",
    sqlite: include_str!("../migrations/sqlite/0002_houses.sql"),
    postgres: include_str!("../migrations/postgres/0002_houses.sql"),
}];

/// All of the house service's settings.
#[derive(schemars::JsonSchema, Debug, Clone, Default, serde::Serialize, Deserialize)]
pub struct Settings {
    /// What every service has.
    #[serde(flatten)]
    pub common: CommonSettings,
}

/// A built, not yet running, house service.
pub struct Application {
    runtime: Runtime,
    router: axum::Router,
    handler: Arc<inbound::kafka::HouseEvents>,
}

#[async_trait::async_trait]
impl Service for Application {
    type Settings = Settings;
    const DEFAULTS: ServiceDefaults = ServiceDefaults {
        name: NAME,
        port: fleet::HOUSE.port,
    };

    fn log(settings: &Settings) -> &LogSettings {
        &settings.common.log
    }

    async fn build(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let runtime = Runtime::build(NAME, &settings.common, MIGRATIONS, shutdown).await?;
        let repo = outbound::db::SqlHouses::new(runtime.db().clone(), runtime.outbox().clone());
        let service = HouseService::new(Arc::new(repo));
        let verifier = platform::auth::TokenVerifier::new(&settings.common.auth)?;
        let handler = Arc::new(inbound::kafka::HouseEvents::new(service.clone()));
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

#[cfg(test)]
mod help {
    /// `house --help` lists every setting, each a variable that works.
    #[test]
    fn every_setting_help_lists_is_a_variable_that_works() {
        platform::service::check_help::<super::Application>().unwrap();
    }
}

//! Notifications (issue 12, the seed's "open architecture"): each customer is told what
//! happened to their bookings and payments — paid, confirmed, rejected, cancelled,
//! refunded — from the events alone, in a store of its own. It was added without changing
//! book, payment, house or mypage or their databases: it joins the topics with a consumer
//! group of its own, which starts from their beginnings, so on its first deployment
//! it catches up on the whole history.

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

/// The service's name: consumer group, database file, metrics label.
pub const NAME: &str = "notification";

/// The migrations of its database (after the platform's outbox and inbox).
pub const MIGRATIONS: &[MigrationSql] = &[MigrationSql {
    version: 2,
    description: "notifications and booking owners",
    sqlite: include_str!("../migrations/0002_notifications.sql"),
    postgres: include_str!("../migrations/0002_notifications.sql"),
}];

/// All of its settings.
#[derive(Debug, Clone, Default, serde::Serialize, Deserialize)]
pub struct Settings {
    /// What every service has.
    #[serde(flatten)]
    pub common: CommonSettings,
}

/// A built, not yet running, notification service.
pub struct Application {
    runtime: Runtime,
    router: axum::Router,
    handler: Arc<inbound::kafka::NotificationEvents>,
}

#[async_trait::async_trait]
impl Service for Application {
    type Settings = Settings;
    const DEFAULTS: ServiceDefaults = ServiceDefaults {
        name: NAME,
        port: fleet::NOTIFICATION.port,
    };

    fn log(settings: &Settings) -> &LogSettings {
        &settings.common.log
    }

    async fn build(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let runtime = Runtime::build(NAME, &settings.common, MIGRATIONS, shutdown).await?;
        let store = Arc::new(outbound::db::SqlNotifications::new(runtime.db().clone()));
        let service = domain::service::NotificationService::new(store);
        let verifier = platform::auth::TokenVerifier::new(&settings.common.auth)?;
        let handler = Arc::new(inbound::kafka::NotificationEvents::new(service.clone()));
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
    /// `notification --help` lists every setting, each a variable that works.
    #[test]
    fn every_setting_help_lists_is_a_variable_that_works() {
        platform::service::check_help::<super::Application>().unwrap();
    }
}

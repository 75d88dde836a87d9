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
pub const MIGRATIONS: &[MigrationSql] = &[
    MigrationSql {
        version: 2,
        description: "notifications and booking owners",
        sqlite: include_str!("../migrations/0002_notifications.sql"),
        postgres: include_str!("../migrations/0002_notifications.sql"),
    },
    MigrationSql {
        version: 3,
        description: "the live feed's order",
        sqlite: include_str!("../migrations/0003_feed.sql"),
        postgres: include_str!("../migrations/0003_feed.sql"),
    },
];

/// How often the feed's end is read while streams are open, to wake them for what
/// another replica stored (this replica's own commits wake them at once).
pub const FEED_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// All of its settings.
#[derive(schemars::JsonSchema, Debug, Clone, Default, serde::Serialize, Deserialize)]
pub struct Settings {
    /// What every service has.
    #[serde(flatten)]
    pub common: CommonSettings,
    /// The live streams (`GET /notifications/stream`).
    #[serde(default)]
    pub streams: StreamSettings,
}

/// The live streams' bounds and timing.
#[derive(
    schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize,
)]
#[serde(default)]
pub struct StreamSettings {
    /// Open streams per token subject (`429` beyond) and in all (`503` beyond; keep it
    /// well below `http.max_connections`).
    #[serde(flatten)]
    pub bounds: platform::stream::StreamBounds,
    /// A stream with nothing sent for this long ends (the client reconnects).
    pub idle_secs: u64,
    /// A comment is sent this often while there is nothing else, so that the reader and
    /// every proxy between see the stream alive.
    pub keepalive_secs: u64,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            bounds: platform::stream::StreamBounds::default(),
            idle_secs: 300,
            keepalive_secs: 15,
        }
    }
}

impl StreamSettings {
    /// [`Self::idle_secs`] as a duration (at least a second).
    pub fn idle(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.idle_secs.max(1))
    }

    /// [`Self::keepalive_secs`] as a duration (at least a second).
    pub fn keepalive(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.keepalive_secs.max(1))
    }
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
        let runtime = Runtime::build(NAME, &settings.common, MIGRATIONS, shutdown.clone()).await?;
        let store = Arc::new(outbound::db::SqlNotifications::new(runtime.db().clone()));
        let service = domain::service::NotificationService::new(store);
        service.watch_feed(FEED_POLL, shutdown.clone());
        let verifier = platform::auth::TokenVerifier::new(&settings.common.auth)?;
        let handler = Arc::new(inbound::kafka::NotificationEvents::new(service.clone()));
        let router = inbound::http::router(inbound::http::AppState {
            service,
            verifier,
            streams: platform::stream::Streams::new(&settings.streams.bounds),
            stream_settings: settings.streams,
            stop: shutdown,
        });
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

//! The payment context (SPEC §1, Supporting): takes a payment for a booking — idempotent on
//! the booking id, so a retried call never charges twice — and refunds it, publishing
//! `Paid` and `PaymentCanceled` through the outbox.
//!
//! Layout (the same in every service): `domain` (models, ports, service), `inbound`
//! (HTTP), `outbound` (database).

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

use crate::domain::service::PaymentService;
use crate::inbound::faults::{FaultSettings, Faults};

/// The service's name: consumer group, database file, metrics label.
pub const NAME: &str = "payment";

/// The migrations of the payment database (after the platform's outbox and inbox).
pub const MIGRATIONS: &[MigrationSql] = &[MigrationSql {
    version: 2,
    description: "payments",
    sqlite: include_str!("../migrations/sqlite/0002_payments.sql"),
    postgres: include_str!("../migrations/postgres/0002_payments.sql"),
}];

/// All of the payment service's settings.
#[derive(Debug, Clone, Default, serde::Serialize, Deserialize)]
pub struct Settings {
    /// What every service has.
    #[serde(flatten)]
    pub common: CommonSettings,
    /// Artificial delay and failure for demos and tests (SPEC §8); off by default. Only
    /// `enabled` is a setting; the knobs are set at `/faults` while it runs.
    #[serde(default, serialize_with = "only_enabled")]
    pub faults: FaultSettings,
}

/// A built, not yet running, payment service.
pub struct Application {
    runtime: Runtime,
    router: axum::Router,
}

#[async_trait::async_trait]
impl Service for Application {
    type Settings = Settings;
    const DEFAULTS: ServiceDefaults = ServiceDefaults {
        name: NAME,
        port: 8082,
    };

    fn log(settings: &Settings) -> &LogSettings {
        &settings.common.log
    }

    async fn build(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let runtime = Runtime::build(NAME, &settings.common, MIGRATIONS, shutdown).await?;
        let repo = outbound::db::SqlPayments::new(runtime.db().clone(), runtime.outbox().clone());
        let service = PaymentService::new(Arc::new(repo));
        let verifier = platform::auth::TokenVerifier::new(&settings.common.auth)?;
        let faults = Faults::new(&settings.faults)?;
        let router = inbound::http::router(inbound::http::AppState {
            service,
            verifier,
            faults,
        });
        Ok(Self { runtime, router })
    }

    fn port(&self) -> u16 {
        self.runtime.port()
    }

    async fn run(self) -> anyhow::Result<()> {
        self.runtime.run(self.router, None).await
    }
}

/// `faults` as a setting: whether `/faults` exists (its knobs are set at run time).
fn only_enabled<S: serde::Serializer>(f: &FaultSettings, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct as _;
    let mut st = s.serialize_struct("FaultSettings", 1)?;
    st.serialize_field("enabled", &f.enabled)?;
    st.end()
}

#[cfg(test)]
mod help {
    /// `payment --help` lists every setting, each a variable that works.
    #[test]
    fn every_setting_help_lists_is_a_variable_that_works() {
        platform::service::check_help::<super::Application>().unwrap();
    }
}

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
use crate::inbound::faults::{FaultStartup, Faults};

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
#[derive(schemars::JsonSchema, Debug, Clone, Default, serde::Serialize, Deserialize)]
pub struct Settings {
    /// What every service has.
    #[serde(flatten)]
    pub common: CommonSettings,
    /// Artificial delay and failure for demos and tests (SPEC §8); off by default.
    #[serde(default)]
    pub faults: FaultStartup,
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
        port: fleet::PAYMENT.port,
    };

    fn log(settings: &Settings) -> &LogSettings {
        &settings.common.log
    }

    async fn build(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let runtime = Runtime::build(NAME, &settings.common, MIGRATIONS, shutdown).await?;
        let repo = outbound::db::SqlPayments::new(runtime.db().clone(), runtime.outbox().clone());
        let service = PaymentService::new(Arc::new(repo));
        let verifier = platform::auth::TokenVerifier::new(&settings.common.auth)?;
        let faults = Faults::new(&settings.faults.into())?;
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

#[cfg(test)]
mod help {
    /// `payment --help` lists every setting, each a variable that works.
    #[test]
    fn every_setting_help_lists_is_a_variable_that_works() {
        platform::service::check_help::<super::Application>().unwrap();
    }

    /// The knobs' start-up variables (docs/running.md, `inbound::faults`) set the knobs: their names
    /// used to be the API's camelCase ones, which no variable can spell.
    #[test]
    fn the_fault_knobs_are_set_by_their_variables() {
        let env = [
            ("HOUSEBOOK_FAULTS__ENABLED", "true"),
            ("HOUSEBOOK_FAULTS__DELAY_MIN_MS", "400"),
            ("HOUSEBOOK_FAULTS__DELAY_MAX_MS", "620"),
            ("HOUSEBOOK_FAULTS__FAILURE_RATE", "0.25"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let s: super::Settings = platform::settings::load_from(
            <super::Application as platform::service::Service>::DEFAULTS,
            None,
            Some(env),
        )
        .unwrap();
        let f = s.faults;
        assert!(f.enabled);
        assert_eq!(
            (f.delay_min_ms, f.delay_max_ms, f.failure_rate),
            (400, 620, 0.25)
        );
    }
}

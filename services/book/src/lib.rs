//! The booking context (SPEC §1, Core): the Book aggregate and the saga it drives.
//!
//! `POST /books` prices the stay from book's own copy of the listings (built from
//! `HouseRegistered`; a house not in it yet is asked of house directly), pays
//! synchronously through a circuit breaker, and only then commits `BOOKED` with its
//! `Booked` event. The house's answer moves the booking to `CONFIRMED` or `REJECTED` (and
//! the payment is refunded). Cancelling commits `BOOK_CANCELED` with its refund due, then
//! refunds. A reconciler refunds payments whose booking never committed (I2) and makes
//! refunds that could not be made at once.
//!
//! The same calls are served over REST and, when `grpc.port` is set, over gRPC
//! (`proto/housebook/book/v1/bookings.proto`).

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

use crate::domain::service::BookService;
use crate::inbound::grpc::GrpcSettings;
use crate::inbound::reconciler::ReconcileSettings;
use crate::outbound::house_client::{HouseClientSettings, HttpHouses};
use crate::outbound::payment_client::{HttpPayments, PaymentClientSettings};

/// The service's name: consumer group, database file, metrics label.
pub const NAME: &str = "book";

/// The migrations of the booking database (after the platform's outbox and inbox).
pub const MIGRATIONS: &[MigrationSql] = &[
    MigrationSql {
        version: 2,
        description: "listings, bookings, early decisions, unmatched payments",
        sqlite: include_str!("../migrations/0002_bookings.sql"),
        postgres: include_str!("../migrations/0002_bookings.sql"),
    },
    MigrationSql {
        version: 3,
        description: "booking claims",
        sqlite: include_str!("../migrations/0003_booking_claims.sql"),
        postgres: include_str!("../migrations/0003_booking_claims.sql"),
    },
    MigrationSql {
        version: 4,
        description: "bookings by status",
        sqlite: include_str!("../migrations/0004_bookings_by_status.sql"),
        postgres: include_str!("../migrations/0004_bookings_by_status.sql"),
    },
];

/// All of the booking service's settings.
#[derive(schemars::JsonSchema, Debug, Clone, Default, serde::Serialize, Deserialize)]
pub struct Settings {
    /// What every service has.
    #[serde(flatten)]
    pub common: CommonSettings,
    /// How to reach payment (and book's service identity).
    #[serde(default)]
    pub payment: PaymentClientSettings,
    /// How to reach house, for listings not known here yet.
    #[serde(default)]
    pub house: HouseClientSettings,
    /// The reconciler.
    #[serde(default)]
    pub reconcile: ReconcileSettings,
    /// The gRPC adapter's listener.
    #[serde(default)]
    pub grpc: GrpcSettings,
    /// What a booking may ask.
    #[serde(default)]
    pub booking: BookingSettings,
}

/// What a booking may ask, and what one customer may hold (`HOUSEBOOK_BOOKING__*`).
#[derive(schemars::JsonSchema, Debug, Clone, serde::Serialize, Deserialize)]
pub struct BookingSettings {
    /// How many days ahead bookings open: a check-in after today + this is refused (422).
    #[serde(default = "default_horizon_days")]
    pub horizon_days: u32,
    /// Nights ahead one customer may hold, in the bookings that stand, every house
    /// together; a booking beyond is refused (422). `0`: no bound (load tests).
    #[serde(default = "default_max_nights_ahead")]
    pub max_nights_ahead: u32,
    /// New bookings per customer (per replica of book); beyond, `429` + `Retry-After`
    /// and nothing is charged. `per_second` 0: no pace (load tests).
    #[serde(default = "default_pace")]
    pub pace: platform::limit::Rate,
}

fn default_max_nights_ahead() -> u32 {
    domain::models::Holdings::DEFAULT_NIGHTS
}

fn default_pace() -> platform::limit::Rate {
    BookService::PACE
}

impl BookingSettings {
    /// No bound on holdings or pace: for load tests and fixtures that book at machine pace
    /// as one customer (the rules' own tests use the defaults).
    pub fn unbounded(horizon_days: u32) -> Self {
        Self {
            horizon_days,
            max_nights_ahead: 0,
            pace: platform::limit::Rate {
                per_second: 0.0,
                burst: 0.0,
            },
        }
    }
}

fn default_horizon_days() -> u32 {
    domain::models::Horizon::DEFAULT_DAYS
}

impl Default for BookingSettings {
    fn default() -> Self {
        Self {
            horizon_days: default_horizon_days(),
            max_nights_ahead: default_max_nights_ahead(),
            pace: default_pace(),
        }
    }
}

/// A built, not yet running, booking service.
pub struct Application {
    runtime: Runtime,
    router: axum::Router,
    handler: Arc<inbound::kafka::BookEvents>,
    service: BookService,
    reconcile: ReconcileSettings,
    grpc: Option<Grpc>,
}

/// The gRPC side, bound at build time (so a taken port fails start-up).
struct Grpc {
    listener: tokio::net::TcpListener,
    api: inbound::grpc::BookingsApi,
    settings: GrpcSettings,
}

impl Application {
    /// The bound gRPC port, when gRPC is served.
    pub fn grpc_port(&self) -> Option<u16> {
        self.grpc
            .as_ref()
            .and_then(|g| g.listener.local_addr().ok())
            .map(|a| a.port())
    }
}

#[async_trait::async_trait]
impl Service for Application {
    type Settings = Settings;
    const DEFAULTS: ServiceDefaults = ServiceDefaults {
        name: NAME,
        port: fleet::BOOK.port,
    };

    fn log(settings: &Settings) -> &LogSettings {
        &settings.common.log
    }

    async fn build(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let runtime = Runtime::build(NAME, &settings.common, MIGRATIONS, shutdown).await?;
        let repo = outbound::db::SqlBookings::new(runtime.db().clone(), runtime.outbox().clone());
        let token = HttpPayments::service_token(&settings.payment)?;
        let payments = HttpPayments::new(
            &settings.payment,
            runtime.metrics().registry(),
            token.clone(),
        )?;
        payments.watch(runtime.shutdown());
        let houses = HttpHouses::new(settings.house.clone(), token)?;
        houses.watch(runtime.shutdown());
        let service = BookService::new(Arc::new(repo), payments, Arc::new(houses))
            .with_horizon(domain::models::Horizon::days(settings.booking.horizon_days))
            .with_holdings(
                domain::models::Holdings {
                    max_nights_ahead: settings.booking.max_nights_ahead,
                },
                settings.booking.pace,
            );
        let verifier = platform::auth::TokenVerifier::new(&settings.common.auth)?;
        let handler = Arc::new(inbound::kafka::BookEvents::new(service.clone()));
        let grpc = match settings.grpc.port {
            Some(port) => Some(Grpc {
                listener: tokio::net::TcpListener::bind((settings.common.http.host.as_str(), port))
                    .await?,
                api: inbound::grpc::BookingsApi::new(
                    service.clone(),
                    verifier.clone(),
                    &settings.grpc,
                ),
                settings: settings.grpc.clone(),
            }),
            None => None,
        };
        let router = inbound::http::router(inbound::http::AppState {
            service: service.clone(),
            verifier,
        });
        Ok(Self {
            runtime,
            router,
            handler,
            service,
            reconcile: settings.reconcile,
            grpc,
        })
    }

    fn port(&self) -> u16 {
        self.runtime.port()
    }

    async fn run(self) -> anyhow::Result<()> {
        let reconciler = tokio::spawn(inbound::reconciler::run(
            self.service,
            self.reconcile,
            self.runtime.shutdown(),
        ));
        let grpc = self.grpc.map(|g| {
            let http = self.runtime.settings().http.clone();
            let health = self.runtime.health();
            let shutdown = self.runtime.shutdown();
            tokio::spawn(async move {
                let served = inbound::grpc::serve(
                    g.listener,
                    g.api,
                    &g.settings,
                    &http,
                    health,
                    shutdown.clone(),
                )
                .await;
                // The process serves both protocols or neither.
                shutdown.cancel();
                served
            })
        });
        let served = self.runtime.run(self.router, Some(self.handler)).await;
        if let Err(e) = reconciler.await {
            tracing::error!(error = %e, "reconciler task failed");
        }
        if let Some(grpc) = grpc {
            match grpc.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = format!("{e:#}"), "grpc server failed");
                    return served.and(Err(e));
                }
                Err(e) => tracing::error!(error = %e, "grpc task failed"),
            }
        }
        served
    }
}

#[cfg(test)]
mod help {
    /// `book --help` lists every setting, each a variable that works.
    #[test]
    fn every_setting_help_lists_is_a_variable_that_works() {
        platform::service::check_help::<super::Application>().unwrap();
    }
}

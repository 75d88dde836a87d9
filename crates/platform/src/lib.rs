//! Shared plumbing of the housebook fleet: everything every service does the same way.
//!
//! A service's `main` loads its [`settings`], calls [`telemetry::init`], and hands its
//! domain router and event handler to `runtime::Runtime`, which owns the database, the
//! outbox relay, the idempotent consumer loop, health, metrics and graceful shutdown.
//!
//! In parts, by feature, so that a service compiles only what it uses:
//! - always: settings, telemetry and traces, metrics, health, errors, auth, the clock,
//!   rate limits, serving HTTP with its bounds ([`serve`], [`server`], [`http`], shares per
//!   client address in [`fair`] and [`origin`], long-lived answers in [`stream`]), calling
//!   upstreams ([`upstream`]) and the process shell ([`service`], [`shutdown`]);
//! - `storage`: the service's database (`db`);
//! - `messaging`: Kafka clients (`kafka`), the transactional outbox (`outbox`) and the
//!   idempotent consumer with its inbox, dead letters and replay (`consumer`);
//! - `grpc`: serving gRPC with the same bounds, health and drain (`grpc`);
//! - `calls`: calling other services with a breaker, retries and a service token (`calls`);
//! - `runtime`: the application shell of a service with a database and a broker.
//!
//! The gateway uses the default part only: `cargo tree -p gateway -i rdkafka` (or
//! `-i sqlx`) finds nothing.

pub mod auth;
#[cfg(feature = "calls")]
pub mod calls;
pub mod clock;
#[cfg(feature = "messaging")]
pub mod consumer;
#[cfg(feature = "storage")]
pub mod db;
pub mod error;
pub mod fair;
#[cfg(feature = "grpc")]
pub mod grpc;
pub mod health;
pub mod http;
#[cfg(feature = "messaging")]
pub mod kafka;
pub mod limit;
pub mod metrics;
pub mod origin;
#[cfg(feature = "messaging")]
pub mod outbox;
#[cfg(feature = "runtime")]
pub mod runtime;
pub mod serve;
pub mod server;
pub mod service;
pub mod settings;
pub mod shutdown;
pub mod stream;
pub mod telemetry;
pub mod trace;
pub mod upstream;

pub use error::ApiError;
pub use http::{AppJson, AppListQuery, AppPath, AppQuery};

//! Shared plumbing of the housebook fleet: everything every service does the same way.
//!
//! A service's `main` loads its [`settings`], calls [`telemetry::init`], and hands its
//! domain router and event handler to [`runtime::Runtime`], which owns the database, the
//! outbox relay, the idempotent consumer loop, health, metrics and graceful shutdown.

pub mod auth;
pub mod clock;
pub mod consumer;
pub mod db;
pub mod error;
pub mod health;
pub mod http;
pub mod kafka;
pub mod limit;
pub mod metrics;
pub mod outbox;
pub mod runtime;
pub mod server;
pub mod service;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
pub mod trace;
pub mod upstream;

pub use error::ApiError;
pub use http::{AppJson, AppPath, AppQuery};

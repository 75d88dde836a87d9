//! Liveness (`/healthz`) and readiness (`/readyz`).
//!
//! Ready means: not draining; the database answers; for a service that consumes, its
//! Kafka consumer loop is running; and every further condition holds (the gateway's: a
//! place is free).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

/// Something a service cannot serve without (its database): readiness asks it.
#[async_trait::async_trait]
pub trait Dependency: Send + Sync + 'static {
    /// `Err` with a short public reason while it cannot be used.
    async fn ready(&self) -> Result<(), &'static str>;
}

/// Readiness state shared by the runtime's tasks.
#[derive(Clone)]
pub struct Health {
    dependency: Option<Arc<dyn Dependency>>,
    inner: Arc<Flags>,
    /// Further conditions: each says why not ready, if so.
    conditions: Arc<std::sync::Mutex<Vec<Condition>>>,
}

type Condition = Arc<dyn Fn() -> Option<&'static str> + Send + Sync>;

struct Flags {
    draining: AtomicBool,
    needs_consumer: AtomicBool,
    consumer_running: AtomicBool,
}

impl Health {
    /// Readiness over a dependency, its database (`None` for a service that has none,
    /// like the gateway).
    pub fn new(dependency: Option<Arc<dyn Dependency>>) -> Self {
        Self {
            dependency,
            inner: Arc::new(Flags {
                draining: AtomicBool::new(false),
                needs_consumer: AtomicBool::new(false),
                consumer_running: AtomicBool::new(false),
            }),
            conditions: Arc::default(),
        }
    }

    /// Readiness also requires `unready` to say nothing (it says why not, when not: the
    /// gateway's "at capacity").
    pub fn require(&self, unready: impl Fn() -> Option<&'static str> + Send + Sync + 'static) {
        self.conditions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::new(unready));
    }

    /// From now on, not ready: shutdown has begun.
    pub fn start_draining(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    /// Readiness also requires the consumer loop.
    pub fn require_consumer(&self) {
        self.inner.needs_consumer.store(true, Ordering::SeqCst);
    }

    /// Set by the consumer loop while it runs.
    pub fn set_consumer_running(&self, running: bool) {
        self.inner.consumer_running.store(running, Ordering::SeqCst);
    }

    /// Whether the service should receive traffic, and why not.
    pub async fn check(&self) -> Result<(), &'static str> {
        if self.inner.draining.load(Ordering::SeqCst) {
            return Err("draining");
        }
        if self.inner.needs_consumer.load(Ordering::SeqCst)
            && !self.inner.consumer_running.load(Ordering::SeqCst)
        {
            return Err("consumer not running");
        }
        let conditions = self
            .conditions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(reason) = conditions.iter().find_map(|c| c()) {
            return Err(reason);
        }
        match &self.dependency {
            Some(d) => d.ready().await,
            None => Ok(()),
        }
    }
}

/// `GET /healthz`: the process is alive and serving.
pub async fn live() -> impl IntoResponse {
    Json(json!({"status": "UP"}))
}

/// `GET /readyz`.
pub async fn ready(State(health): State<Health>) -> impl IntoResponse {
    match health.check().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "READY"}))),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "NOT_READY", "reason": reason})),
        ),
    }
}

//! Calling another service of the fleet: its replicas balanced by readiness
//! ([`crate::upstream::Pool`]), a timeout per call, retries after a timeout or a 5xx while
//! the circuit lets calls through, and a circuit breaker ([`breaker`]); plus the service
//! token the caller presents ([`token`]). A client of one service keeps only that
//! service's API on top of [`Upstream::call`].

pub mod breaker;
pub mod token;

use std::time::Duration;

use failsafe::futures::CircuitBreaker as _;
use failsafe::{Config, StateMachine};
use tokio_util::sync::CancellationToken;

use crate::upstream::Pool;
use breaker::{BreakerMetrics, FailureRateWindow};

/// How an upstream is called.
#[derive(Debug, Clone, Copy)]
pub struct CallSettings {
    /// Timeout of one call (and of connecting).
    pub timeout: Duration,
    /// Extra attempts after a timeout or a 5xx while the circuit is closed: only for
    /// calls the upstream makes idempotent.
    pub retries: u32,
    /// How often replicas' `/readyz` is polled (lists of two or more).
    pub health_interval: Duration,
    /// The rolling window the breaker looks at.
    pub breaker_window: Duration,
    /// Calls needed in the window before the breaker may open.
    pub breaker_min_calls: usize,
    /// Share of failed calls in the window that opens the circuit.
    pub breaker_failure_rate: f64,
    /// How long the circuit stays open before a probe call.
    pub breaker_open: Duration,
}

/// Why a call came to nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFailure {
    /// Down, slow or failing (a timeout, a 5xx, a 429), or the circuit is open: try again
    /// after `retry_after`. Counts against the breaker.
    Unavailable {
        /// What happened.
        reason: String,
        /// When to try again.
        retry_after: Duration,
    },
    /// The upstream refused the request itself (a 4xx other than 404: a bug on the
    /// caller's side, not an outage). Does not count against the breaker.
    Refused(String),
}

type Breaker = StateMachine<FailureRateWindow, BreakerMetrics>;

/// One upstream service, behind a breaker.
pub struct Upstream {
    name: &'static str,
    http: reqwest::Client,
    pool: Pool,
    settings: CallSettings,
    breaker: Breaker,
}

impl Upstream {
    /// `name` at `urls` (one base URL or a comma-separated list of replicas), its breaker's
    /// metrics in `registry` under `circuit="{name}"`.
    pub fn new(
        name: &'static str,
        urls: &str,
        settings: CallSettings,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<Self> {
        let breaker = Config::new()
            .failure_policy(FailureRateWindow::new(
                settings.breaker_window,
                settings.breaker_min_calls,
                settings.breaker_failure_rate,
                settings.breaker_open,
            ))
            .instrument(BreakerMetrics::register(registry, name)?)
            .build();
        Ok(Self {
            name,
            http: client(settings.timeout)?,
            pool: Pool::parse(name, urls)?,
            settings,
            breaker,
        })
    }

    /// The HTTP client to build requests with.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Starts polling the replicas' readiness until `stop`.
    pub fn watch(&self, stop: CancellationToken) {
        self.pool.watch(
            self.settings.health_interval.max(Duration::from_millis(10)),
            stop,
        );
    }

    /// `Err` at once while the circuit is open (fail fast, before any other work).
    pub fn ready(&self) -> Result<(), CallFailure> {
        if self.breaker.is_call_permitted() {
            Ok(())
        } else {
            Err(self.circuit_open())
        }
    }

    fn circuit_open(&self) -> CallFailure {
        CallFailure::Unavailable {
            reason: format!("{} circuit is open", self.name),
            retry_after: self.settings.breaker_open.max(Duration::from_secs(1)),
        }
    }

    /// Calls a ready replica (`request` gets its base URL): the answer's JSON body, or
    /// `None` when the upstream answered `404`. Tried again after a timeout or a 5xx while
    /// the circuit lets calls through.
    pub async fn call(
        &self,
        request: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<Option<serde_json::Value>, CallFailure> {
        let mut attempt = 0;
        loop {
            match self.call_once(&request).await {
                Err(CallFailure::Unavailable { reason, .. })
                    if attempt < self.settings.retries && self.breaker.is_call_permitted() =>
                {
                    attempt += 1;
                    tracing::debug!(upstream = self.name, %reason, attempt, "call failed; trying again");
                }
                other => return other,
            }
        }
    }

    /// One call through the breaker; a replica that refuses the connection (stopped,
    /// restarting) is skipped for the next one, since nothing reached it.
    async fn call_once(
        &self,
        request: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<Option<serde_json::Value>, CallFailure> {
        let timeout = self.settings.timeout;
        let pool = &self.pool;
        let unavailable = |reason: String| CallFailure::Unavailable {
            reason,
            retry_after: Duration::from_secs(1),
        };
        let fut = async move {
            let res = pool
                .send(|base| request(base).timeout(timeout))
                .await
                .map_err(|e| unavailable(e.to_string()))?;
            let status = res.status();
            let body: serde_json::Value = match res.bytes().await {
                Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
                // The answer did not arrive whole (timed out): the call failed.
                Err(e) => return Err(unavailable(format!("reading the answer: {e}"))),
            };
            if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                Err(unavailable(format!("answered {status}")))
            } else if status == reqwest::StatusCode::NOT_FOUND {
                Ok(None)
            } else if status.is_client_error() {
                Err(CallFailure::Refused(format!("answered {status}: {body}")))
            } else {
                Ok(Some(body))
            }
        };
        let counts = |e: &CallFailure| matches!(e, CallFailure::Unavailable { .. });
        match self.breaker.call_with(counts, fut).await {
            Ok(body) => Ok(body),
            Err(failsafe::Error::Rejected) => Err(self.circuit_open()),
            Err(failsafe::Error::Inner(e)) => Err(e),
        }
    }
}

/// An HTTP client for calls within the fleet: idle connections closed before the server
/// would, `timeout` to connect.
pub fn client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_idle_timeout(crate::server::CLIENT_IDLE_TIMEOUT)
        .connect_timeout(timeout)
        .build()
}

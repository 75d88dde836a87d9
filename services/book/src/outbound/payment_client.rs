//! The payment context over HTTP, behind a `failsafe` circuit breaker.
//!
//! Every call has a timeout (the seed's 610 ms by default) and carries a service token
//! from the gateway's client-credentials grant (cached until shortly before it expires).
//! Timeouts, connection failures and 5xx answers count against the breaker; after
//! `breaker_failures` in a row it opens and calls fail at once with `Retry-After` until
//! `breaker_open_ms` has passed, then one call is let through to probe recovery.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use failsafe::futures::CircuitBreaker as _;
use failsafe::{backoff, failure_policy, Config, StateMachine};
use prometheus::{IntCounter, IntGauge};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;

use crate::domain::ports::{PaymentError, PaymentRequest, Payments};

/// How `book` reaches `payment`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PaymentClientSettings {
    /// Base URL of the payment service.
    pub url: String,
    /// Timeout of one call, in milliseconds (the seed's Hystrix setting: 610).
    pub timeout_ms: u64,
    /// Consecutive failures that open the circuit.
    pub breaker_failures: u32,
    /// How long the circuit stays open before a probe call, in milliseconds.
    pub breaker_open_ms: u64,
    /// The gateway's token endpoint (client-credentials grant).
    pub token_url: String,
    /// This service's client id.
    pub client_id: String,
    /// Its client secret. The default is a LOCAL DEVELOPMENT value.
    pub client_secret: SecretString,
    /// A fixed token to use instead of the grant (tests).
    pub static_token: Option<SecretString>,
}

impl Default for PaymentClientSettings {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8082".into(),
            timeout_ms: 610,
            breaker_failures: 5,
            breaker_open_ms: 3000,
            token_url: "http://127.0.0.1:8088/oauth/token".into(),
            client_id: "book".into(),
            client_secret: SecretString::from("book-dev-secret"),
            static_token: None,
        }
    }
}

/// Exposes the breaker's state as metrics.
#[derive(Clone)]
pub struct BreakerMetrics {
    open: IntGauge,
    rejected: IntCounter,
}

impl BreakerMetrics {
    /// Registers `circuit_open{circuit="payment"}` and `circuit_rejected_total`.
    pub fn register(registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        let open = IntGauge::with_opts(
            prometheus::Opts::new(
                "circuit_open",
                "1 while the circuit to a dependency is open",
            )
            .const_label("circuit", "payment"),
        )?;
        let rejected = IntCounter::with_opts(
            prometheus::Opts::new(
                "circuit_rejected_total",
                "Calls refused at once by an open circuit",
            )
            .const_label("circuit", "payment"),
        )?;
        registry.register(Box::new(open.clone()))?;
        registry.register(Box::new(rejected.clone()))?;
        Ok(Self { open, rejected })
    }
}

impl failsafe::Instrument for BreakerMetrics {
    fn on_call_rejected(&self) {
        self.rejected.inc();
    }
    fn on_open(&self) {
        tracing::warn!(circuit = "payment", "circuit opened");
        self.open.set(1);
    }
    fn on_half_open(&self) {
        tracing::info!(circuit = "payment", "circuit half-open: probing");
    }
    fn on_closed(&self) {
        tracing::info!(circuit = "payment", "circuit closed");
        self.open.set(0);
    }
}

type Breaker = StateMachine<failure_policy::ConsecutiveFailures<backoff::Constant>, BreakerMetrics>;

/// What one call to payment came to.
#[derive(Debug)]
enum CallError {
    /// Counts against the breaker.
    Unavailable(String),
    /// Does not (a 4xx: the service is up and answered).
    Refused(String),
}

/// The payment context over HTTP.
pub struct HttpPayments {
    http: reqwest::Client,
    settings: PaymentClientSettings,
    breaker: Breaker,
    token: Mutex<Option<(String, Instant)>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize)]
struct PaymentBody {
    id: i64,
}

impl HttpPayments {
    /// A client with its own connection pool and breaker.
    pub fn new(
        settings: PaymentClientSettings,
        metrics: BreakerMetrics,
    ) -> anyhow::Result<Arc<Self>> {
        let breaker = Config::new()
            .failure_policy(failure_policy::consecutive_failures(
                settings.breaker_failures.max(1),
                backoff::constant(Duration::from_millis(settings.breaker_open_ms)),
            ))
            .instrument(metrics)
            .build();
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_millis(settings.timeout_ms))
            .build()?;
        Ok(Arc::new(Self {
            http,
            settings,
            breaker,
            token: Mutex::new(None),
        }))
    }

    fn unavailable(&self, reason: impl Into<String>) -> PaymentError {
        PaymentError::Unavailable {
            reason: reason.into(),
            retry_after: Duration::from_secs(1),
        }
    }

    fn circuit_open(&self) -> PaymentError {
        PaymentError::Unavailable {
            reason: "payment circuit is open".into(),
            retry_after: Duration::from_millis(self.settings.breaker_open_ms.max(1000)),
        }
    }

    async fn token(&self) -> Result<String, PaymentError> {
        if let Some(t) = &self.settings.static_token {
            return Ok(t.expose_secret().to_owned());
        }
        let mut cached = self.token.lock().await;
        if let Some((t, until)) = cached.as_ref() {
            if Instant::now() < *until {
                return Ok(t.clone());
            }
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.settings.client_id.as_str()),
            ("client_secret", self.settings.client_secret.expose_secret()),
        ];
        let res = self
            .http
            .post(&self.settings.token_url)
            .form(&form)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map_err(|e| self.unavailable(format!("token endpoint: {e}")))?;
        if !res.status().is_success() {
            return Err(self.unavailable(format!("token endpoint answered {}", res.status())));
        }
        let t: TokenResponse = res
            .json()
            .await
            .map_err(|e| self.unavailable(format!("token endpoint: {e}")))?;
        let until = Instant::now() + Duration::from_secs(t.expires_in.saturating_sub(60).max(1));
        *cached = Some((t.access_token.clone(), until));
        Ok(t.access_token)
    }

    /// One call through the breaker: `send` builds the request.
    async fn call(&self, req: reqwest::RequestBuilder) -> Result<serde_json::Value, PaymentError> {
        let timeout = Duration::from_millis(self.settings.timeout_ms);
        let fut = async move {
            let res = req.timeout(timeout).send().await.map_err(|e| {
                CallError::Unavailable(if e.is_timeout() {
                    "timed out".into()
                } else {
                    format!("unreachable: {e}")
                })
            })?;
            let status = res.status();
            let body: serde_json::Value = res.json().await.unwrap_or(serde_json::Value::Null);
            if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                Err(CallError::Unavailable(format!("answered {status}")))
            } else if status.is_client_error() {
                Err(CallError::Refused(format!("answered {status}: {body}")))
            } else {
                Ok(body)
            }
        };
        let counts = |e: &CallError| matches!(e, CallError::Unavailable(_));
        match self.breaker.call_with(counts, fut).await {
            Ok(body) => Ok(body),
            Err(failsafe::Error::Rejected) => Err(self.circuit_open()),
            Err(failsafe::Error::Inner(CallError::Unavailable(r))) => Err(self.unavailable(r)),
            Err(failsafe::Error::Inner(CallError::Refused(r))) => Err(PaymentError::Refused(r)),
        }
    }
}

#[async_trait]
impl Payments for HttpPayments {
    async fn pay(&self, r: &PaymentRequest) -> Result<i64, PaymentError> {
        if !self.breaker.is_call_permitted() {
            return Err(self.circuit_open()); // fail fast, without even fetching a token
        }
        let token = self.token().await?;
        let body = json!({
            "bookId": r.book_id, "houseId": r.house_id, "customerId": r.customer_id,
            "housePrice": r.amount, "checkIn": r.stay.check_in(), "checkOut": r.stay.check_out(),
        });
        let req = self
            .http
            .post(format!("{}/payments", self.settings.url))
            .bearer_auth(token)
            .json(&body);
        let v = self.call(req).await?;
        serde_json::from_value::<PaymentBody>(v)
            .map(|p| p.id)
            .map_err(|e| PaymentError::Refused(format!("unexpected answer: {e}")))
    }

    async fn refund(&self, book_id: &str) -> Result<(), PaymentError> {
        let token = self.token().await?;
        let url = format!("{}/payments/by-book/{}/cancel", self.settings.url, book_id);
        match self.call(self.http.post(url).bearer_auth(token)).await {
            Ok(_) => Ok(()),
            // No payment for this booking: nothing to refund.
            Err(PaymentError::Refused(r)) if r.starts_with("answered 404") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

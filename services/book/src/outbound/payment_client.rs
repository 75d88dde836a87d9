//! The payment context over HTTP, behind a `failsafe` circuit breaker.
//!
//! Every call has a timeout (the seed's 610 ms by default) and carries a service token
//! from the gateway's client-credentials grant (cached until shortly before it expires).
//! Timeouts, connection failures and 5xx answers count against the breaker, which looks
//! at the last `breaker_window` calls (as Hystrix and Resilience4j do): once at least
//! `breaker_min_calls` were made and `breaker_failure_rate` of them failed, it opens and
//! calls fail at once with `Retry-After` until `breaker_open_ms` has passed; then a probe
//! call is let through, and its success closes the circuit. A slow dependency whose calls
//! mostly succeed keeps the circuit closed; a dead one opens it within a few calls.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use failsafe::futures::CircuitBreaker as _;
use failsafe::{failure_policy, Config, StateMachine};
use platform::shutdown::CancellationToken;
use platform::upstream::Pool;
use prometheus::{IntCounter, IntGauge};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use super::service_token::ServiceToken;
use crate::domain::ports::{PaymentError, PaymentRequest, Payments};

/// How `book` reaches `payment`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PaymentClientSettings {
    /// Base URL of the payment service, or a comma-separated list of its replicas
    /// (balanced by their readiness; see `platform::upstream`).
    pub url: String,
    /// How often replicas' `/readyz` is polled, in milliseconds (lists of two or more).
    pub health_interval_ms: u64,
    /// Timeout of one call, in milliseconds (the seed's Hystrix setting: 610).
    pub timeout_ms: u64,
    /// Extra attempts after a timeout or a 5xx while the circuit is closed. Safe because
    /// payment is idempotent on the booking id: a retry of a call that went through gets
    /// the same payment back.
    pub retries: u32,
    /// The rolling window the breaker looks at, in milliseconds.
    pub breaker_window_ms: u64,
    /// Calls needed in the window before the breaker may open.
    pub breaker_min_calls: usize,
    /// Share of failed calls in the window that opens the circuit.
    pub breaker_failure_rate: f64,
    /// How long the circuit stays open before a probe call, in milliseconds.
    pub breaker_open_ms: u64,
    /// The gateway's internal token endpoint (client-credentials grant; the public port
    /// refuses that grant). This and the three
    /// settings below are book's service identity, used towards house as well.
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
            health_interval_ms: 250,
            timeout_ms: 610,
            retries: 1,
            breaker_window_ms: 10_000,
            breaker_min_calls: 10,
            breaker_failure_rate: 0.5,
            breaker_open_ms: 3000,
            token_url: "http://127.0.0.1:8089/oauth/token".into(),
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

/// A rolling time window of call outcomes (Hystrix's model: a 10 s window, a minimum
/// volume, an error percentage). A short stall that fails a burst of calls does not open
/// the circuit unless the failures are a large share of the whole window.
#[derive(Debug, Clone)]
pub struct FailureRateWindow {
    outcomes: std::collections::VecDeque<(std::time::Instant, bool)>,
    window: Duration,
    min_calls: usize,
    failure_rate: f64,
    open_for: Duration,
}

/// Outcomes kept at most, whatever the rate of calls.
const MAX_OUTCOMES: usize = 100_000;

impl FailureRateWindow {
    /// Opens the circuit for `open_for` once, within the last `window`, at least
    /// `min_calls` were made and `failure_rate` of them failed.
    pub fn new(window: Duration, min_calls: usize, failure_rate: f64, open_for: Duration) -> Self {
        Self {
            outcomes: std::collections::VecDeque::new(),
            window,
            min_calls: min_calls.max(1),
            failure_rate: failure_rate.clamp(0.0, 1.0),
            open_for,
        }
    }

    fn record(&mut self, ok: bool) {
        let now = std::time::Instant::now();
        while self.outcomes.front().is_some_and(|(t, _)| {
            now.duration_since(*t) > self.window || self.outcomes.len() >= MAX_OUTCOMES
        }) {
            self.outcomes.pop_front();
        }
        self.outcomes.push_back((now, ok));
    }
}

impl failure_policy::FailurePolicy for FailureRateWindow {
    fn record_success(&mut self) {
        self.record(true);
    }

    fn mark_dead_on_failure(&mut self) -> Option<Duration> {
        self.record(false);
        let calls = self.outcomes.len();
        let failed = self.outcomes.iter().filter(|(_, ok)| !*ok).count();
        (calls >= self.min_calls && failed as f64 >= self.failure_rate * calls as f64)
            .then_some(self.open_for)
    }

    fn revived(&mut self) {
        self.outcomes.clear();
    }
}

type Breaker = StateMachine<FailureRateWindow, BreakerMetrics>;

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
    pool: Pool,
    settings: PaymentClientSettings,
    breaker: Breaker,
    token: Arc<ServiceToken>,
}

#[derive(Deserialize)]
struct PaymentBody {
    id: i64,
}

impl HttpPayments {
    /// The service token this client's settings describe (house's client shares it).
    pub fn service_token(settings: &PaymentClientSettings) -> anyhow::Result<Arc<ServiceToken>> {
        Ok(Arc::new(ServiceToken::new(
            reqwest::Client::builder()
                .pool_idle_timeout(platform::server::CLIENT_IDLE_TIMEOUT)
                .connect_timeout(Duration::from_millis(settings.timeout_ms))
                .build()?,
            settings.token_url.clone(),
            settings.client_id.clone(),
            settings.client_secret.clone(),
            settings.static_token.clone(),
        )))
    }

    /// A client with its own connection pool and breaker.
    pub fn new(
        settings: PaymentClientSettings,
        metrics: BreakerMetrics,
        token: Arc<ServiceToken>,
    ) -> anyhow::Result<Arc<Self>> {
        let breaker = Config::new()
            .failure_policy(FailureRateWindow::new(
                Duration::from_millis(settings.breaker_window_ms),
                settings.breaker_min_calls,
                settings.breaker_failure_rate,
                Duration::from_millis(settings.breaker_open_ms),
            ))
            .instrument(metrics)
            .build();
        let http = reqwest::Client::builder()
            .pool_idle_timeout(platform::server::CLIENT_IDLE_TIMEOUT)
            .connect_timeout(Duration::from_millis(settings.timeout_ms))
            .build()?;
        Ok(Arc::new(Self {
            http,
            pool: Pool::parse("payment", &settings.url)?,
            settings,
            breaker,
            token,
        }))
    }

    /// Starts polling the replicas' readiness until `stop`.
    pub fn watch(&self, stop: CancellationToken) {
        self.pool.watch(
            Duration::from_millis(self.settings.health_interval_ms.max(10)),
            stop,
        );
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
        self.token.get().await.map_err(|e| self.unavailable(e))
    }

    /// A call, tried again after a timeout or a 5xx while the circuit lets calls through.
    async fn with_retries(
        &self,
        request: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<Option<serde_json::Value>, PaymentError> {
        let mut attempt = 0;
        loop {
            match self.call(&request).await {
                Err(PaymentError::Unavailable { reason, .. })
                    if attempt < self.settings.retries && self.breaker.is_call_permitted() =>
                {
                    attempt += 1;
                    tracing::debug!(%reason, attempt, "payment call failed; trying again");
                }
                other => return other,
            }
        }
    }

    /// One call through the breaker, to a ready replica of `payment`: its body, or `None`
    /// when payment answered `404` (no such payment); a replica that
    /// refuses the connection (stopped, restarting) is skipped for the next one, since
    /// nothing reached it.
    async fn call(
        &self,
        request: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<Option<serde_json::Value>, PaymentError> {
        let timeout = Duration::from_millis(self.settings.timeout_ms);
        let pool = &self.pool;
        let fut = async move {
            let res = pool
                .send(|base| request(base).timeout(timeout))
                .await
                .map_err(|e| CallError::Unavailable(e.to_string()))?;
            let status = res.status();
            let body: serde_json::Value = match res.bytes().await {
                Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
                // The answer did not arrive whole (timed out): the call failed.
                Err(e) => return Err(CallError::Unavailable(format!("reading the answer: {e}"))),
            };
            if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                Err(CallError::Unavailable(format!("answered {status}")))
            } else if status == reqwest::StatusCode::NOT_FOUND {
                Ok(None)
            } else if status.is_client_error() {
                Err(CallError::Refused(format!("answered {status}: {body}")))
            } else {
                Ok(Some(body))
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
        let v = self
            .with_retries(|base| {
                self.http
                    .post(format!("{base}/payments"))
                    .bearer_auth(&token)
                    .json(&body)
            })
            .await?
            .ok_or_else(|| PaymentError::Refused("answered 404 Not Found".into()))?;
        serde_json::from_value::<PaymentBody>(v)
            .map(|p| p.id)
            .map_err(|e| PaymentError::Refused(format!("unexpected answer: {e}")))
    }

    async fn refund(&self, book_id: &str) -> Result<(), PaymentError> {
        let token = self.token().await?;
        // Refunded, or no payment for this booking (404): nothing to refund either way.
        self.with_retries(|base| {
            self.http
                .post(format!("{base}/payments/by-book/{book_id}/cancel"))
                .bearer_auth(&token)
        })
        .await
        .map(|_| ())
    }
}

/// Book's side of the book → payment contract (`crates/contracts/book-payment.json`):
/// against a stand-in payment that records what it is sent and answers with the
/// contract's example answers, this client must send exactly the contract's requests and
/// take the answers as the contract says. Payment's tests replay the same requests against
/// the real service (`services/payment/tests/payment.rs`).
#[cfg(test)]
mod contract {
    use std::sync::{Arc, Mutex};

    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    use serde_json::Value;

    use super::*;

    /// What the stand-in received: method, path, headers, body.
    type Seen = Arc<Mutex<Vec<(Method, String, HeaderMap, Bytes)>>>;

    /// A stand-in payment answering every request with `status` and `body`.
    async fn stand_in(status: u16, body: Value) -> (String, Seen) {
        let seen: Seen = Arc::default();
        let record = seen.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, bytes: Bytes| {
                let record = record.clone();
                let body = body.clone();
                async move {
                    record
                        .lock()
                        .unwrap()
                        .push((method, uri.to_string(), headers, bytes));
                    (StatusCode::from_u16(status).unwrap(), axum::Json(body))
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, seen)
    }

    fn client(url: &str) -> Arc<HttpPayments> {
        let settings = PaymentClientSettings {
            url: url.to_owned(),
            retries: 0,
            static_token: Some(SecretString::from("contract-token")),
            ..Default::default()
        };
        let metrics = BreakerMetrics::register(&prometheus::Registry::new()).unwrap();
        let token = HttpPayments::service_token(&settings).unwrap();
        HttpPayments::new(settings, metrics, token).unwrap()
    }

    #[tokio::test]
    async fn book_sends_what_the_contract_says_and_takes_its_answers() {
        let request = PaymentRequest {
            book_id: "b-1".into(),
            house_id: 7,
            customer_id: "alice".into(),
            amount: 400_000,
            stay: events::Stay::new(
                events::parse_date("2031-05-01").unwrap(),
                events::parse_date("2031-05-03").unwrap(),
            )
            .unwrap(),
        };
        let vars = [
            ("bookId", "b-1"),
            ("otherBookId", "b-2"),
            ("token", "contract-token"),
        ];
        let interactions = contracts::book_payment().unwrap();
        let calls: Vec<&str> = interactions
            .iter()
            .filter_map(|i| i["call"].as_str())
            .collect();
        assert_eq!(calls, ["pay", "pay", "refund", "refund", "refund unpaid"]);
        for i in &interactions {
            let name = i["name"].as_str().unwrap();
            let want = contracts::fill(&i["request"], &vars);
            let answer = &i["response"];
            let status = answer["status"][0].as_u64().unwrap() as u16;
            let (url, seen) = stand_in(status, answer["example"].clone()).await;
            let payments = client(&url);
            match i["call"].as_str().unwrap() {
                "pay" => assert_eq!(
                    payments.pay(&request).await.unwrap(),
                    answer["example"]["id"].as_i64().unwrap(),
                    "{name}: book takes the payment's id"
                ),
                "refund" => payments.refund("b-1").await.unwrap(),
                "refund unpaid" => payments
                    .refund("b-2")
                    .await
                    .unwrap_or_else(|e| panic!("{name}: 404 is nothing to refund, got {e}")),
                other => panic!("{name}: no call {other}"),
            }
            let seen = seen.lock().unwrap();
            assert_eq!(seen.len(), 1, "{name}: one request");
            let (method, path, headers, body) = &seen[0];
            assert_eq!(method.as_str(), want["method"], "{name}");
            assert_eq!(path, want["path"].as_str().unwrap(), "{name}");
            for (h, v) in want["headers"].as_object().unwrap() {
                assert_eq!(
                    headers.get(h.as_str()).and_then(|x| x.to_str().ok()),
                    v.as_str(),
                    "{name}: header {h}"
                );
            }
            match want.get("body") {
                Some(b) => assert_eq!(
                    &serde_json::from_slice::<Value>(body).unwrap(),
                    b,
                    "{name}: the body book sends"
                ),
                None => assert!(body.is_empty(), "{name}: no body"),
            }
        }
    }

    #[tokio::test]
    async fn an_answer_without_what_the_contract_requires_is_not_taken_for_a_payment() {
        // The contract requires `id`: a payment that dropped it must not pass for paid.
        let (url, _) = stand_in(201, serde_json::json!({"paymentId": 42})).await;
        let request = PaymentRequest {
            book_id: "b-3".into(),
            house_id: 7,
            customer_id: "alice".into(),
            amount: 1,
            stay: events::Stay::one_night(events::parse_date("2031-05-01").unwrap()).unwrap(),
        };
        assert!(matches!(
            client(&url).pay(&request).await,
            Err(PaymentError::Refused(_))
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use failsafe::failure_policy::FailurePolicy;

    #[test]
    fn a_mostly_successful_dependency_keeps_the_circuit_closed() {
        let mut w =
            FailureRateWindow::new(Duration::from_secs(10), 10, 0.5, Duration::from_secs(3));
        for i in 0..200 {
            if i % 10 == 0 {
                assert_eq!(w.mark_dead_on_failure(), None, "10% failures never open it");
            } else {
                w.record_success();
            }
        }
        for _ in 0..20 {
            assert_eq!(
                w.mark_dead_on_failure(),
                None,
                "nor does a burst that is a small share of the window"
            );
        }
    }

    #[test]
    fn a_dead_dependency_opens_it_once_enough_calls_failed() {
        let mut w = FailureRateWindow::new(Duration::from_secs(10), 3, 0.5, Duration::from_secs(3));
        assert_eq!(w.mark_dead_on_failure(), None);
        assert_eq!(w.mark_dead_on_failure(), None);
        assert_eq!(w.mark_dead_on_failure(), Some(Duration::from_secs(3)));
        w.revived();
        assert_eq!(
            w.mark_dead_on_failure(),
            None,
            "a closed circuit starts counting afresh"
        );
    }

    #[test]
    fn old_outcomes_leave_the_window() {
        let mut w =
            FailureRateWindow::new(Duration::from_millis(30), 2, 0.5, Duration::from_secs(1));
        for _ in 0..50 {
            w.record_success();
        }
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            w.mark_dead_on_failure(),
            None,
            "1 call in the window: below the minimum"
        );
        assert_eq!(
            w.mark_dead_on_failure(),
            Some(Duration::from_secs(1)),
            "the successes have left the window"
        );
    }
}

//! The payment context over HTTP: payment's API (pay, refund) and the settings of book's
//! calls to it. How a call is made — replicas by readiness, timeout (the seed's 610 ms by
//! default), retries, the circuit breaker (`circuit="payment"`) and the service token —
//! is `platform::calls`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use platform::calls::token::ServiceToken;
use platform::calls::{CallFailure, CallSettings, Upstream};
use platform::shutdown::CancellationToken;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use crate::domain::ports::{PaymentError, PaymentRequest, Payments};

/// How `book` reaches `payment`.
#[derive(schemars::JsonSchema, Debug, Clone, serde::Serialize, Deserialize)]
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
    #[serde(serialize_with = "platform::settings::secret")]
    #[schemars(with = "String")]
    pub client_secret: SecretString,
    /// A fixed token to use instead of the grant (tests).
    #[serde(serialize_with = "platform::settings::secret_opt")]
    #[schemars(with = "Option<String>")]
    pub static_token: Option<SecretString>,
}

impl Default for PaymentClientSettings {
    fn default() -> Self {
        Self {
            url: fleet::local_url(&fleet::PAYMENT),
            health_interval_ms: 250,
            timeout_ms: 610,
            retries: 1,
            breaker_window_ms: 10_000,
            breaker_min_calls: 10,
            breaker_failure_rate: 0.5,
            breaker_open_ms: 3000,
            token_url: fleet::local_token_url(),
            client_id: "book".into(),
            client_secret: SecretString::from("book-dev-secret"),
            static_token: None,
        }
    }
}

/// The payment context over HTTP.
pub struct HttpPayments {
    upstream: Upstream,
    token: Arc<ServiceToken>,
}

#[derive(Deserialize)]
struct PaymentBody {
    id: i64,
}

impl From<CallFailure> for PaymentError {
    fn from(f: CallFailure) -> Self {
        match f {
            CallFailure::Unavailable {
                reason,
                retry_after,
            } => PaymentError::Unavailable {
                reason,
                retry_after,
            },
            CallFailure::Refused(r) => PaymentError::Refused(r),
        }
    }
}

impl HttpPayments {
    /// The service token this client's settings describe (house's client shares it).
    pub fn service_token(settings: &PaymentClientSettings) -> anyhow::Result<Arc<ServiceToken>> {
        Ok(Arc::new(ServiceToken::new(
            platform::calls::client(Duration::from_millis(settings.timeout_ms))?,
            settings.token_url.clone(),
            settings.client_id.clone(),
            settings.client_secret.clone(),
            settings.static_token.clone(),
        )))
    }

    /// A client with its own connection pool and breaker (its metrics in `registry`).
    pub fn new(
        settings: &PaymentClientSettings,
        registry: &prometheus::Registry,
        token: Arc<ServiceToken>,
    ) -> anyhow::Result<Arc<Self>> {
        let calls = CallSettings {
            timeout: Duration::from_millis(settings.timeout_ms),
            retries: settings.retries,
            health_interval: Duration::from_millis(settings.health_interval_ms),
            breaker_window: Duration::from_millis(settings.breaker_window_ms),
            breaker_min_calls: settings.breaker_min_calls,
            breaker_failure_rate: settings.breaker_failure_rate,
            breaker_open: Duration::from_millis(settings.breaker_open_ms),
        };
        Ok(Arc::new(Self {
            upstream: Upstream::new("payment", &settings.url, calls, registry)?,
            token,
        }))
    }

    /// Starts polling the replicas' readiness until `stop`.
    pub fn watch(&self, stop: CancellationToken) {
        self.upstream.watch(stop);
    }

    async fn token(&self) -> Result<String, PaymentError> {
        self.token
            .get()
            .await
            .map_err(|reason| PaymentError::Unavailable {
                reason,
                retry_after: Duration::from_secs(1),
            })
    }
}

#[async_trait]
impl Payments for HttpPayments {
    async fn pay(&self, r: &PaymentRequest) -> Result<i64, PaymentError> {
        self.upstream.ready()?; // fail fast, without even fetching a token
        let token = self.token().await?;
        let body = json!({
            "bookId": r.book_id, "houseId": r.house_id, "customerId": r.customer_id,
            "housePrice": r.amount, "checkIn": r.stay.check_in(), "checkOut": r.stay.check_out(),
        });
        let v = self
            .upstream
            .call(|base| {
                self.upstream
                    .http()
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
        self.upstream
            .call(|base| {
                self.upstream
                    .http()
                    .post(format!("{base}/payments/by-book/{book_id}/cancel"))
                    .bearer_auth(&token)
            })
            .await?;
        Ok(())
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
        let token = HttpPayments::service_token(&settings).unwrap();
        HttpPayments::new(&settings, &prometheus::Registry::new(), token).unwrap()
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

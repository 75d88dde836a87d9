//! The integration-test harness shared by every service's `tests/`.
//!
//! Every test gets its own world on real parts: a fresh SQLite file or a fresh PostgreSQL
//! database, its own topic prefix and consumer group on the real broker, so tests run in
//! parallel and never share state. [`EventProbe`] reads what a service published;
//! [`inject`] publishes raw messages (duplicates, poison) as another service would.
//!
//! The broker is `HOUSEBOOK_TEST_BROKERS` (default `127.0.0.1:19092`, the private broker
//! that `./dev test` starts); PostgreSQL is `HOUSEBOOK_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`).
//!
//! Test support only (never linked into a service): a failed set-up step panics, which is
//! how a test reports failure, so unwrap/expect/panic are deliberate here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod fake;
pub mod sse;

use std::time::Duration;

use events::Envelope;
use platform::auth::{Role, TokenIssuer};
use platform::settings::{AuthSettings, CommonSettings, DatabaseSettings, DEV_SIGNING_KEY_PEM};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};
use sqlx::Connection;

/// Generates `NAME::sqlite` and `NAME::postgres` tests from `async fn NAME(Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::Backend::Postgres).await
            }
        }
    )+};
}

pub use platform::db::Backend;

/// The booking horizon test fleets run with: the fixtures book fixed dates up to 2099, and
/// the horizon is the one rule those dates would trip. The horizon's own tests run at the
/// default (`book`'s `bookings_open_two_years_ahead…`).
pub const FIXTURE_HORIZON_DAYS: u32 = 36_500;

/// The broker tests use.
pub fn brokers() -> String {
    std::env::var("HOUSEBOOK_TEST_BROKERS")
        .unwrap_or_else(|_| format!("127.0.0.1:{}", fleet::BROKER.test_port))
}

fn pg_base() -> String {
    std::env::var("HOUSEBOOK_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A short unique name.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A fresh, empty database of the given backend; returns its URL.
pub async fn fresh_database(backend: Backend) -> String {
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join("housebook-tests");
            std::fs::create_dir_all(&dir).unwrap();
            format!(
                "sqlite://{}",
                dir.join(format!("{}.db", unique("t"))).display()
            )
        }
        Backend::Postgres => {
            let base = pg_base();
            let name = unique("hb_test_");
            let mut conn = sqlx::PgConnection::connect(&base)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL at {base} is needed for this test: {e}"));
            sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .unwrap();
            let (prefix, _) = base.rsplit_once('/').unwrap();
            format!("{prefix}/{name}")
        }
    }
}

/// One test's isolated world: database URL, topic prefix, group id.
#[derive(Debug, Clone)]
pub struct World {
    /// The backend.
    pub backend: Backend,
    /// The topic prefix shared by every service of this test.
    pub topic_prefix: String,
}

impl World {
    /// A new world.
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            topic_prefix: unique("t") + ".",
        }
    }

    /// Settings for one service instance in this world, with a fresh database.
    pub async fn settings(&self, service: &str) -> CommonSettings {
        let mut s = CommonSettings::default();
        s.http.port = 0;
        s.database = DatabaseSettings {
            url: platform::db::url(fresh_database(self.backend).await),
            max_connections: None,
        };
        s.kafka.brokers = brokers();
        s.kafka.topic_prefix = self.topic_prefix.clone();
        s.kafka.group_id = format!("{}{service}", self.topic_prefix);
        s.kafka.retry_backoff_ms = 20;
        s.kafka.relay_poll_ms = 100;
        s.log.filter = "warn".into();
        s
    }

    /// The topic an event type travels on (its producing context's).
    pub fn topic_of(&self, event_type: &str) -> String {
        Topics::new(&self.topic_prefix).of(event_type)
    }

    /// Every events topic, one per context.
    pub fn event_topics(&self) -> Vec<String> {
        Topics::new(&self.topic_prefix).events()
    }

    /// The dead-letter topic.
    pub fn dead_letter_topic(&self) -> String {
        Topics::new(&self.topic_prefix).dead_letter()
    }

    /// Publishes an envelope on its context's topic, as its producer would (the same
    /// envelope twice delivers the same `eventId` twice).
    pub async fn publish(&self, env: &Envelope) {
        inject_event(&self.topic_of(&env.event_type), env).await;
    }

    /// A probe on every events topic of this world.
    pub fn probe(&self) -> EventProbe {
        EventProbe::new(&self.event_topics())
    }
}

/// Topic names under a prefix, by the services' own rules ([`platform::settings::KafkaSettings`]).
pub struct Topics(platform::settings::KafkaSettings);

impl Topics {
    /// The names under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self(platform::settings::KafkaSettings {
            topic_prefix: prefix.to_owned(),
            ..Default::default()
        })
    }

    /// The topic an event type travels on; panics for a type not in the catalog.
    pub fn of(&self, event_type: &str) -> String {
        self.0
            .topic_of(event_type)
            .unwrap_or_else(|| panic!("{event_type} is not an event of the catalog"))
    }

    /// Every events topic, one per context.
    pub fn events(&self) -> Vec<String> {
        self.0.event_topics()
    }

    /// The dead-letter topic.
    pub fn dead_letter(&self) -> String {
        self.0.dead_letter_topic()
    }
}

/// Signs tokens with the local development key, as the gateway does.
pub fn issuer() -> TokenIssuer {
    let a = AuthSettings::default();
    TokenIssuer::from_pem(DEV_SIGNING_KEY_PEM, &a.issuer, &a.audience).unwrap()
}

/// A bearer token for `sub` with `roles`.
pub fn token(sub: &str, roles: &[Role]) -> String {
    issuer().issue(sub, roles, 600).unwrap()
}

/// An HTTP client for tests.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .pool_idle_timeout(platform::server::CLIENT_IDLE_TIMEOUT)
        .build()
        .unwrap()
}

/// A message as read off a topic.
#[derive(Debug, Clone)]
pub struct RawMessage {
    /// The topic it was read from.
    pub topic: String,
    /// Its key, as text (the correlation id for the fleet's events).
    pub key: Option<String>,
    /// Its bytes.
    pub payload: Vec<u8>,
    /// Its headers, as text.
    pub headers: Vec<(String, String)>,
}

impl RawMessage {
    /// A header's value.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads topics from their beginnings with a group of its own, collecting envelopes.
pub struct EventProbe {
    consumer: StreamConsumer,
    seen: Vec<Envelope>,
    raw: Vec<RawMessage>,
}

impl EventProbe {
    /// A probe on `topics` of the shared test broker.
    pub fn new(topics: &[impl AsRef<str>]) -> Self {
        Self::on(&brokers(), topics)
    }

    /// A probe on `topics` of the given brokers.
    pub fn on(brokers: &str, topics: &[impl AsRef<str>]) -> Self {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", unique("probe-"))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
        let topics: Vec<&str> = topics.iter().map(AsRef::as_ref).collect();
        consumer.subscribe(&topics).unwrap();
        Self {
            consumer,
            seen: Vec::new(),
            raw: Vec::new(),
        }
    }

    /// Reads at most one message, waiting no later than `until`.
    async fn pump(&mut self, until: tokio::time::Instant) {
        let Ok(Ok(m)) = tokio::time::timeout_at(until, self.consumer.recv()).await else {
            return;
        };
        let bytes = m.payload().unwrap_or_default().to_vec();
        let headers = m
            .headers()
            .map(|h| {
                use rdkafka::message::Headers;
                h.iter()
                    .map(|x| {
                        (
                            x.key.to_owned(),
                            String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if let Ok(env) = Envelope::from_slice(&bytes) {
            self.seen.push(env);
        }
        self.raw.push(RawMessage {
            topic: m.topic().to_owned(),
            key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            payload: bytes,
            headers,
        });
    }

    /// Waits until `pred` holds for the envelopes seen so far, or panics after `secs`.
    pub async fn wait_until(
        &mut self,
        secs: u64,
        what: &str,
        pred: impl Fn(&[Envelope]) -> bool,
    ) -> Vec<Envelope> {
        let until = tokio::time::Instant::now() + Duration::from_secs(secs);
        while !pred(&self.seen) {
            if tokio::time::Instant::now() >= until {
                let types: Vec<_> = self.seen.iter().map(|e| e.event_type.clone()).collect();
                panic!("timed out waiting for {what}; saw {types:?}");
            }
            self.pump(until).await;
        }
        self.seen.clone()
    }

    /// Reads whatever arrives for `secs` seconds, then returns everything seen.
    pub async fn settle(&mut self, secs: u64) -> Vec<Envelope> {
        let until = tokio::time::Instant::now() + Duration::from_secs(secs);
        while tokio::time::Instant::now() < until {
            self.pump(until).await;
        }
        self.seen.clone()
    }

    /// Raw messages seen (payload and headers), for topics that are not all envelopes.
    pub fn raw(&self) -> &[RawMessage] {
        &self.raw
    }

    /// Waits until `n` raw messages were seen.
    pub async fn wait_raw(&mut self, secs: u64, n: usize) -> Vec<RawMessage> {
        let until = tokio::time::Instant::now() + Duration::from_secs(secs);
        while self.raw.len() < n {
            if tokio::time::Instant::now() >= until {
                panic!("timed out waiting for {n} messages; saw {}", self.raw.len());
            }
            self.pump(until).await;
        }
        self.raw.clone()
    }
}

/// Publishes raw bytes to a topic with a key, as another service (or an attacker) would.
pub async fn inject(topic: &str, key: &str, payload: &[u8]) {
    inject_to(&brokers(), topic, key, payload).await;
}

/// [`inject`] on the given brokers.
pub async fn inject_to(brokers: &str, topic: &str, key: &str, payload: &[u8]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let headers = OwnedHeaders::new().insert(Header {
        key: "source",
        value: Some("testkit"),
    });
    producer
        .send(
            FutureRecord::to(topic)
                .key(key)
                .payload(payload)
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
}

/// Publishes an envelope (the same bytes twice delivers the same `eventId` twice).
pub async fn inject_event(topic: &str, env: &Envelope) {
    inject(topic, &env.correlation_id, &env.to_vec().unwrap()).await;
}

/// Polls `f` until it returns `Some`, or panics after `secs`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() >= until {
            panic!("timed out after {secs}s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A service running in this test process on a free port, stopped gracefully by [`stop`].
///
/// [`stop`]: TestApp::stop
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    stop: platform::shutdown::CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestApp {
    /// Builds and starts a service.
    pub async fn spawn<S: platform::service::Service>(settings: S::Settings) -> Self {
        let stop = platform::shutdown::CancellationToken::new();
        let app = S::build(settings, stop.clone()).await.unwrap();
        let base = format!("http://127.0.0.1:{}", app.port());
        let task = tokio::spawn(app.run());
        Self { base, stop, task }
    }

    /// SIGTERM, in effect: drains and waits until the service has stopped.
    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
    }

    /// A URL on this service.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request with a token and a JSON body; returns status and JSON (or null).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        tok: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut req = http().request(method, self.url(path)).bearer_auth(tok);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let s = r.status();
        (s, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// `POST` with a token and a JSON body.
    pub async fn post(
        &self,
        path: &str,
        tok: &str,
        body: serde_json::Value,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        self.send(reqwest::Method::POST, path, tok, Some(body))
            .await
    }

    /// `GET` with a token.
    pub async fn get(&self, path: &str, tok: &str) -> (reqwest::StatusCode, serde_json::Value) {
        self.send(reqwest::Method::GET, path, tok, None).await
    }

    /// The service's `/metrics` text.
    pub async fn metrics(&self) -> String {
        http()
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// Checks a service's OpenAPI document against the running service: it is served at
/// `/openapi.json`, and every documented path and method is routed (answers neither 405
/// nor "no route"), so the document cannot promise what the code does not have.
pub async fn assert_documented_routes_exist(app: &TestApp, doc: &str, tok: &str) {
    let served = http()
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(served, doc, "/openapi.json serves the checked-in document");
    let doc: serde_json::Value = serde_json::from_str(doc).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(
        paths.len() > 4,
        "documents more than the operational endpoints"
    );
    for (path, ops) in paths {
        let concrete: String = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "1" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for (method, op) in ops.as_object().unwrap() {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, answer) =
                if op["responses"]["200"]["content"]["text/event-stream"].is_null() {
                    let body = matches!(method.as_str(), "post" | "put" | "patch")
                        .then(|| serde_json::json!({}));
                    app.send(m, &concrete, tok, body).await
                } else {
                    // A stream is not read to its end: if it opens, it is an event stream.
                    let res = sse::client()
                        .request(m, app.url(&concrete))
                        .bearer_auth(tok)
                        .send()
                        .await
                        .unwrap();
                    let status = res.status();
                    if status == reqwest::StatusCode::OK {
                        sse::SseStream::new(res);
                        (status, serde_json::Value::Null)
                    } else {
                        (status, res.json().await.unwrap_or_default())
                    }
                };
            let unrouted = status == reqwest::StatusCode::METHOD_NOT_ALLOWED
                || (status == reqwest::StatusCode::NOT_FOUND
                    && answer["message"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("no route")));
            assert!(
                !unrouted,
                "{} {path} is documented but not routed: {status} {answer}",
                method.to_uppercase()
            );
        }
    }
}

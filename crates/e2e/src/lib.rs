//! A fleet of real processes for end-to-end tests: the five service binaries from
//! `target/debug` (or `HOUSEBOOK_BIN_DIR`), each on its own free port with its own
//! database, on the shared test broker with a private topic prefix and consumer groups.
//! Every part can be stopped (SIGTERM) and started again on the same port and database.
//!
//! Test support only (never linked into a service): a failed set-up step panics, which is
//! how a test reports failure, so unwrap/expect/panic are deliberate here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use testkit::Backend;

/// The services, in start order.
pub const SERVICES: [&str; 5] = ["payment", "house", "mypage", "book", "gateway"];

/// A running fleet; dropped, it kills what still runs.
pub struct Fleet {
    ports: HashMap<&'static str, u16>,
    env: HashMap<&'static str, Vec<(String, String)>>,
    children: HashMap<&'static str, Child>,
    logs: PathBuf,
    http: reqwest::Client,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn bin_dir() -> PathBuf {
    std::env::var_os("HOUSEBOOK_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug"))
}

impl Fleet {
    /// Starts every service and waits until each is ready.
    pub async fn start(backend: Backend) -> Self {
        let prefix = testkit::unique("e2e") + ".";
        let logs = std::env::temp_dir().join("housebook-e2e").join(&prefix);
        std::fs::create_dir_all(&logs).unwrap();
        let ports: HashMap<&'static str, u16> =
            SERVICES.iter().map(|s| (*s, free_port())).collect();
        let url = |s: &str| format!("http://127.0.0.1:{}", ports[s]);
        let mut env = HashMap::new();
        for s in SERVICES {
            let mut e = vec![
                ("HOUSEBOOK_HTTP__PORT".to_owned(), ports[s].to_string()),
                ("HOUSEBOOK_KAFKA__BROKERS".to_owned(), testkit::brokers()),
                ("HOUSEBOOK_KAFKA__TOPIC_PREFIX".to_owned(), prefix.clone()),
                (
                    "HOUSEBOOK_KAFKA__GROUP_ID".to_owned(),
                    format!("{prefix}{s}"),
                ),
                (
                    "HOUSEBOOK_KAFKA__RELAY_POLL_MS".to_owned(),
                    "200".to_owned(),
                ),
                (
                    "HOUSEBOOK_LOG__FILTER".to_owned(),
                    "info,sqlx=warn,rdkafka=warn".to_owned(),
                ),
            ];
            if s != "gateway" {
                e.push((
                    "HOUSEBOOK_DATABASE__URL".to_owned(),
                    testkit::fresh_database(backend).await,
                ));
            }
            match s {
                "book" => e.extend([
                    ("HOUSEBOOK_PAYMENT__URL".to_owned(), url("payment")),
                    (
                        "HOUSEBOOK_PAYMENT__TOKEN_URL".to_owned(),
                        format!("{}/oauth/token", url("gateway")),
                    ),
                    (
                        "HOUSEBOOK_PAYMENT__BREAKER_MIN_CALLS".to_owned(),
                        "3".to_owned(),
                    ),
                    (
                        "HOUSEBOOK_PAYMENT__BREAKER_OPEN_MS".to_owned(),
                        "1000".to_owned(),
                    ),
                    (
                        "HOUSEBOOK_RECONCILE__INTERVAL_MS".to_owned(),
                        "300".to_owned(),
                    ),
                    (
                        "HOUSEBOOK_RECONCILE__GRACE_MS".to_owned(),
                        "2000".to_owned(),
                    ),
                ]),
                "gateway" => e.extend([
                    ("HOUSEBOOK_UPSTREAMS__BOOK".to_owned(), url("book")),
                    ("HOUSEBOOK_UPSTREAMS__PAYMENT".to_owned(), url("payment")),
                    ("HOUSEBOOK_UPSTREAMS__HOUSE".to_owned(), url("house")),
                    ("HOUSEBOOK_UPSTREAMS__MYPAGE".to_owned(), url("mypage")),
                ]),
                _ => {}
            }
            env.insert(s, e);
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let mut fleet = Self {
            ports,
            env,
            children: HashMap::new(),
            logs,
            http,
        };
        for s in SERVICES {
            fleet.spawn(s);
        }
        for s in SERVICES {
            fleet.wait_ready(s).await;
        }
        fleet
    }

    fn spawn(&mut self, name: &'static str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{name}.log")))
            .unwrap();
        let child = Command::new(bin_dir().join(name))
            .envs(self.env[name].iter().cloned())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {name} from {}: {e} (run cargo build --bins)",
                    bin_dir().display()
                )
            });
        self.children.insert(name, child);
    }

    async fn wait_ready(&self, name: &str) {
        let url = format!("{}/readyz", self.url(name));
        testkit::eventually(
            30,
            &format!("{name} ready (log: {})", self.logs.display()),
            || async {
                let r = self.http.get(&url).send().await.ok()?;
                (r.status() == reqwest::StatusCode::OK).then_some(())
            },
        )
        .await;
    }

    /// A service's base URL.
    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}", self.ports[name])
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub async fn stop(&mut self, name: &'static str) {
        let Some(mut child) = self.children.remove(name) else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(
            status.success(),
            "{name} did not exit cleanly on SIGTERM: {status:?}"
        );
    }

    /// Starts a stopped part again (same port, same database) and waits until it is ready.
    pub async fn restart(&mut self, name: &'static str) {
        self.spawn(name);
        self.wait_ready(name).await;
    }

    /// A token from the gateway (password grant; the local users' passwords are their names).
    pub async fn token(&self, user: &str) -> String {
        let form = [
            ("grant_type", "password"),
            ("username", user),
            ("password", user),
        ];
        let r = self
            .http
            .post(format!("{}/oauth/token", self.url("gateway")))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::OK);
        r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A request through the gateway.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value, reqwest::header::HeaderMap) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url("gateway")));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let (s, h) = (r.status(), r.headers().clone());
        (s, r.json().await.unwrap_or(Value::Null), h)
    }

    /// `GET` through the gateway.
    pub async fn get(&self, path: &str, token: &str) -> (reqwest::StatusCode, Value) {
        let (s, v, _) = self
            .call(reqwest::Method::GET, path, Some(token), None)
            .await;
        (s, v)
    }

    /// `POST` through the gateway.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> (reqwest::StatusCode, Value) {
        let (s, v, _) = self
            .call(reqwest::Method::POST, path, Some(token), Some(body))
            .await;
        (s, v)
    }

    /// A metric of one service, read from its `/metrics` (0 when absent).
    pub async fn metric(&self, name: &str, prefix: &str) -> f64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.url(name)))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    /// Stops everything gracefully.
    pub async fn shutdown(mut self) {
        for s in SERVICES.iter().rev() {
            self.stop(s).await;
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

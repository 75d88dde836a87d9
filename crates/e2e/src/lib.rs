//! A fleet of real processes for end-to-end and fault tests: the five service binaries
//! from `target/debug` (or `HOUSEBOOK_BIN_DIR`), each on its own free port with its own
//! database, on the shared test broker with a private topic prefix and consumer groups —
//! or on a private nisshi broker that a test may pause or restart. A service may run as
//! several replicas (one consumer group, one database, listed behind the gateway).
//! Every part can be stopped (SIGTERM), killed (SIGKILL) and started again on the same
//! port and database.
//!
//! Test support only (never linked into a service): a failed set-up step panics, which is
//! how a test reports failure, so unwrap/expect/panic are deliberate here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod invariants;
pub mod load;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use testkit::Backend;

/// How to start a fleet.
#[derive(Debug, Clone)]
pub struct Options {
    /// SQLite files or PostgreSQL databases.
    pub backend: Backend,
    /// Replicas per service (default one each); more than one needs PostgreSQL.
    pub replicas: Vec<(&'static str, usize)>,
    /// A broker of its own, which the test may pause and restart.
    pub private_broker: bool,
    /// Extra settings for every process of a service.
    pub env: Vec<(&'static str, String, String)>,
    /// Services not started with the fleet, but later by [`Fleet::start_deferred`] (a
    /// service deployed after the others, onto their history).
    pub deferred: Vec<&'static str>,
}

impl Options {
    /// One replica of each service on the shared broker.
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            replicas: Vec::new(),
            private_broker: false,
            env: Vec::new(),
            deferred: Vec::new(),
        }
    }

    fn replicas_of(&self, service: &str) -> usize {
        self.replicas
            .iter()
            .find(|(s, _)| *s == service)
            .map_or(1, |(_, n)| (*n).max(1))
    }
}

/// A running fleet; dropped, it kills what still runs.
pub struct Fleet {
    /// Every process, in start order, with its ports and settings (`fleet::Plan`).
    instances: Vec<fleet::Instance>,
    children: HashMap<String, Child>,
    broker: Option<Broker>,
    brokers: String,
    prefix: String,
    logs: PathBuf,
    http: reqwest::Client,
}

/// A private nisshi broker with durable storage: an SQLite file of its own, or (with
/// `HOUSEBOOK_BROKER_STORAGE=postgres`) a fresh PostgreSQL database.
struct Broker {
    port: u16,
    dir: PathBuf,
    storage: String,
    child: Option<Child>,
}

impl Broker {
    async fn start(logs: &std::path::Path) -> Self {
        let dir = logs.join("broker");
        std::fs::create_dir_all(&dir).unwrap();
        let storage = match std::env::var("HOUSEBOOK_BROKER_STORAGE").as_deref() {
            // Plain TCP to the local server: nisshi's client would otherwise try TLS and
            // refuse the local server's self-signed certificate.
            Ok("postgres") => testkit::fresh_database(Backend::Postgres).await + "?sslmode=disable",
            Ok("sqlite") | Err(_) => "sqlite://nisshi.db".to_owned(),
            // Test set-up (the module's rule): a misspelt setting stops the run, loudly.
            Ok(other) => panic!("HOUSEBOOK_BROKER_STORAGE={other}: sqlite or postgres"),
        };
        let mut b = Self {
            port: free_port(),
            dir,
            storage,
            child: None,
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let log = log_file(&self.dir.join("broker.log"));
        // As ./dev starts it: from its own folder (fleet::Broker::args says why).
        let program = std::env::var("HOUSEBOOK_BROKER_BIN");
        let child = Command::new(program.as_deref().unwrap_or(fleet::BROKER.program))
            .current_dir(&self.dir)
            .args(fleet::BROKER.args(self.port, &self.storage))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            // Test set-up: no broker, no test; the message says how to get one.
            .expect("cannot start nisshi (./dev test installs it)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(fleet::BROKER.start_secs);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "nisshi did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            signal(c.id(), sig);
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status();
}

fn log_file(path: &std::path::Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// A client whose connections come from `address`, a loopback address of its own (an
/// attacker's flood from one, a witness from another).
pub fn client_from(address: &str) -> reqwest::Client {
    let local: std::net::IpAddr = address.parse().expect("a loopback address");
    reqwest::Client::builder()
        .local_address(local)
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("a client")
}

/// A port for a process this fleet starts. Not one the kernel hands out itself (`bind` to
/// port 0): that is the ephemeral range, which every outgoing connection on the machine
/// also draws from, so between our check and the child's `bind` a client socket could take
/// it ("Address already in use", seen once in five full runs). Instead a port below the
/// ephemeral range, reserved across the test processes running at once by a marker file
/// (a marker older than ten minutes is from a run that is over), and free right now.
pub fn free_port() -> u16 {
    let below = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768)
        .max(16384);
    let (low, span) = (10000u16, below - 10000);
    let marks = std::env::temp_dir().join("housebook-ports");
    // Test set-up (the module's rule): no temp folder, no fleet.
    std::fs::create_dir_all(&marks).unwrap();
    let mut seed = u64::from(std::process::id())
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
    loop {
        // xorshift: enough spread for picking ports.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let port = low + (seed % u64::from(span)) as u16;
        let mark = marks.join(port.to_string());
        let stale = std::fs::metadata(&mark)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(600));
        if stale {
            let _ = std::fs::remove_file(&mark);
        }
        let reserved = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&mark)
            .is_ok();
        if reserved && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The repository's top directory.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A tool `./dev test` installs: where the variable `var` says, or where `./dev` puts it
/// (`installed`, under the repository); a test without it fails saying so.
pub fn tool(var: &str, installed: &str) -> PathBuf {
    let path = std::env::var_os(var).map_or_else(|| repo().join(installed), PathBuf::from);
    assert!(
        path.exists(),
        "{} is missing: ./dev test installs it (or set {var})",
        path.display()
    );
    path
}

/// Where the fleet's binaries are: `HOUSEBOOK_BIN_DIR`, else the debug build.
pub fn bin_dir() -> PathBuf {
    std::env::var_os("HOUSEBOOK_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug"))
}

fn kv(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_owned(), v.into())
}

pub use fleet::service_of;

impl Fleet {
    /// Starts every service (one replica each, shared broker) and waits until each is ready.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(Options::new(backend)).await
    }

    /// Starts a fleet as `options` say and waits until every part is ready.
    pub async fn start_with(options: Options) -> Self {
        let prefix = testkit::unique("e2e") + ".";
        let logs = std::env::temp_dir().join("housebook-e2e").join(&prefix);
        std::fs::create_dir_all(&logs).unwrap();
        let broker = if options.private_broker {
            Some(Broker::start(&logs).await)
        } else {
            None
        };
        let brokers = broker
            .as_ref()
            .map_or_else(testkit::brokers, |b| format!("127.0.0.1:{}", b.port));
        let mut plan = fleet::Plan::new(brokers.clone());
        for s in fleet::SERVICES {
            plan = plan.replicas(s.name, options.replicas_of(s.name));
            if s.database {
                plan = plan.database(s.name, testkit::fresh_database(options.backend).await);
            }
        }
        let mut instances = plan.instances(|_, _, _| Some(free_port()));
        for i in &mut instances {
            let s = i.service.name;
            let e = &mut i.env;
            if i.service.kafka {
                e.extend([
                    kv("HOUSEBOOK_KAFKA__TOPIC_PREFIX", prefix.clone()),
                    kv("HOUSEBOOK_KAFKA__GROUP_ID", format!("{prefix}{s}")),
                    kv("HOUSEBOOK_KAFKA__RELAY_POLL_MS", "200"),
                ]);
            }
            e.push(kv("HOUSEBOOK_LOG__FILTER", "info,sqlx=warn,rdkafka=warn"));
            // Quicker than a cluster's, for tests that wait on them.
            match s {
                "book" => e.extend([
                    kv("HOUSEBOOK_HOUSE__HEALTH_INTERVAL_MS", "100"),
                    kv("HOUSEBOOK_PAYMENT__HEALTH_INTERVAL_MS", "100"),
                    kv("HOUSEBOOK_PAYMENT__BREAKER_MIN_CALLS", "3"),
                    kv("HOUSEBOOK_PAYMENT__BREAKER_OPEN_MS", "1000"),
                    kv("HOUSEBOOK_RECONCILE__INTERVAL_MS", "300"),
                    kv("HOUSEBOOK_RECONCILE__GRACE_MS", "2000"),
                    kv(
                        "HOUSEBOOK_BOOKING__HORIZON_DAYS",
                        testkit::FIXTURE_HORIZON_DAYS.to_string(),
                    ),
                    // The suite's customers (and the benchmark's) book thousands of stays
                    // at machine pace: no bound on holdings or pace, raised here on
                    // purpose. The rules' own tests (book's) run with the defaults; a
                    // test may set them again in its options.
                    kv("HOUSEBOOK_BOOKING__MAX_NIGHTS_AHEAD", "0"),
                    kv("HOUSEBOOK_BOOKING__PACE__PER_SECOND", "0"),
                    kv("HOUSEBOOK_BOOKING__PACE__BURST", "0"),
                ]),
                "gateway" => e.push(kv("HOUSEBOOK_UPSTREAMS__HEALTH_INTERVAL_MS", "100")),
                _ => {}
            }
            e.extend(
                options
                    .env
                    .iter()
                    .filter(|(svc, _, _)| *svc == s)
                    .map(|(_, k, v)| (k.clone(), v.clone())),
            );
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .pool_idle_timeout(platform::server::CLIENT_IDLE_TIMEOUT)
            .build()
            .unwrap();
        let mut fleet = Self {
            instances,
            children: HashMap::new(),
            broker,
            brokers,
            prefix,
            logs,
            http,
        };
        let now: Vec<String> = fleet
            .instances
            .iter()
            .filter(|i| !options.deferred.contains(&i.service.name))
            .map(|i| i.name.clone())
            .collect();
        for i in &now {
            fleet.spawn(i);
        }
        for i in &now {
            fleet.wait_ready(i).await;
        }
        fleet
    }

    /// An instance of this fleet (test set-up: an unknown name is a mistake in the test).
    fn instance(&self, name: &str) -> &fleet::Instance {
        self.instances
            .iter()
            .find(|i| i.name == name)
            .unwrap_or_else(|| panic!("no instance {name} in this fleet"))
    }

    fn port(&self, instance: &str, kind: fleet::Port) -> u16 {
        self.instance(instance)
            .port(kind)
            .unwrap_or_else(|| panic!("{instance} has no {kind:?} port"))
    }

    fn spawn(&mut self, instance: &str) {
        let log = log_file(&self.logs.join(format!("{instance}.log")));
        let child = Command::new(bin_dir().join(service_of(instance)))
            .envs(self.instance(instance).env.iter().cloned())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {instance} from {}: {e} (run cargo build --bins)",
                    bin_dir().display()
                )
            });
        self.children.insert(instance.to_owned(), child);
    }

    /// Starts an instance left out by [`Options::deferred`] for the first time, and waits
    /// until it is ready.
    pub async fn start_deferred(&mut self, instance: &str) {
        assert!(
            !self.children.contains_key(instance),
            "{instance} already started"
        );
        self.spawn(instance);
        self.wait_ready(instance).await;
    }

    /// Waits until an instance answers its readiness probe (`fleet::READY_PATH`) with `200`.
    pub async fn wait_ready(&self, instance: &str) {
        let url = format!("{}{}", self.url(instance), fleet::READY_PATH);
        testkit::eventually(
            30,
            &format!("{instance} ready (log: {})", self.logs.display()),
            || async {
                let r = self.http.get(&url).send().await.ok()?;
                (r.status() == reqwest::StatusCode::OK).then_some(())
            },
        )
        .await;
    }

    /// An instance's base URL (`book` is a service's first replica, `book-2` its second).
    pub fn url(&self, instance: &str) -> String {
        self.instance(instance).url()
    }

    /// Where a `book` instance serves gRPC.
    pub fn grpc_url(&self, instance: &str) -> String {
        format!(
            "http://127.0.0.1:{}",
            self.port(instance, fleet::Port::Grpc)
        )
    }

    /// The gateway's base URL.
    pub fn gateway(&self) -> String {
        self.url("gateway")
    }

    /// Where an instance serves `/metrics`: the gateway's admin port, or a service's own.
    pub fn metrics_url(&self, instance: &str) -> String {
        match self.instance(instance).port(fleet::Port::Admin) {
            Some(admin) => format!("http://127.0.0.1:{admin}/metrics"),
            None => format!("{}/metrics", self.url(instance)),
        }
    }

    /// The instance names of a service's replicas.
    pub fn replicas(&self, service: &str) -> Vec<String> {
        self.instances
            .iter()
            .filter(|i| i.service.name == service)
            .map(|i| i.name.clone())
            .collect()
    }

    /// Where the fleet's logs are.
    pub fn logs(&self) -> &std::path::Path {
        &self.logs
    }

    /// An instance's process id, while it runs.
    pub fn pid(&self, instance: &str) -> Option<u32> {
        self.children.get(instance).map(Child::id)
    }

    /// The private broker's process id, while it runs.
    pub fn broker_pid(&self) -> Option<u32> {
        self.broker.as_ref()?.child.as_ref().map(Child::id)
    }

    /// The broker address the fleet uses.
    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    /// A service's consumer group.
    pub fn consumer_group(&self, service: &str) -> String {
        format!("{}{service}", self.prefix)
    }

    /// The fleet's topic names (its services' prefix).
    pub fn topic_names(&self) -> testkit::Topics {
        testkit::Topics::new(&self.prefix)
    }

    /// Every topic the fleet's services publish their events on, one per context.
    pub fn topics(&self) -> Vec<String> {
        self.topic_names().events()
    }

    /// Sends SIGTERM and waits for the process to exit; asserts it exited cleanly.
    pub async fn stop(&mut self, instance: &str) {
        let Some(mut child) = self.children.remove(instance) else {
            return;
        };
        signal(child.id(), "TERM");
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(
            status.success(),
            "{instance} did not exit cleanly on SIGTERM: {status:?}"
        );
    }

    /// Sends SIGKILL: no drain, no goodbye.
    pub async fn kill(&mut self, instance: &str) {
        if let Some(mut child) = self.children.remove(instance) {
            let _ = child.kill();
            tokio::task::spawn_blocking(move || child.wait())
                .await
                .unwrap()
                .unwrap();
        }
    }

    /// Starts a stopped part again (same port, same database) and waits until it is ready.
    pub async fn restart(&mut self, instance: &str) {
        self.spawn(instance);
        self.wait_ready(instance).await;
    }

    /// Freezes the private broker (SIGSTOP): connections stay open, nothing answers.
    pub fn pause_broker(&self) {
        self.broker
            .as_ref()
            .expect("a private broker")
            .signal("STOP");
    }

    /// Thaws the private broker (SIGCONT).
    pub fn resume_broker(&self) {
        self.broker
            .as_ref()
            .expect("a private broker")
            .signal("CONT");
    }

    /// Stops the private broker (SIGTERM, then SIGKILL) and starts it again on the same
    /// port and storage.
    pub async fn restart_broker(&mut self) {
        let broker = self.broker.as_mut().expect("a private broker");
        if let Some(mut child) = broker.child.take() {
            signal(child.id(), "TERM");
            tokio::task::spawn_blocking(move || {
                for _ in 0..50 {
                    if child.try_wait().ok().flatten().is_some() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = child.kill();
                let _ = child.wait();
            })
            .await
            .unwrap();
        }
        broker.spawn();
    }

    /// A token from the gateway (password grant; the local users' passwords are their names).
    pub async fn token(&self, user: &str) -> String {
        load::token(&self.http, &self.gateway(), user).await
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
            .request(method, format!("{}{path}", self.gateway()));
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

    /// The OpenAPI document an instance serves.
    pub async fn openapi(&self, instance: &str) -> Value {
        self.http
            .get(format!("{}/openapi.json", self.url(instance)))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// An instance's `/metrics` text (the gateway's from its admin port).
    pub async fn metrics_text(&self, instance: &str) -> String {
        self.http
            .get(self.metrics_url(instance))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A metric of one instance, read from its `/metrics` (0 when absent).
    pub async fn metric(&self, instance: &str, prefix: &str) -> f64 {
        self.metrics_text(instance)
            .await
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    /// The sum of a counter over all its label sets whose line contains every `part`.
    pub async fn metric_sum(&self, instance: &str, name: &str, parts: &[&str]) -> f64 {
        self.metrics_text(instance)
            .await
            .lines()
            .filter(|l| l.starts_with(name) && parts.iter().all(|p| l.contains(p)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Registers a house as `admin` and books `check_in`..`check_out` in it as `customer`,
    /// trying again until `book` knows the listing (it learns it from `HouseRegistered`).
    /// Returns the house id and the booking answered `201`.
    pub async fn house_with_booking(
        &self,
        admin: &str,
        customer: &str,
        house: Value,
        check_in: &str,
        check_out: &str,
    ) -> (i64, Value) {
        let (s, h) = self.post("/houses", admin, house).await;
        assert_eq!(s, reqwest::StatusCode::CREATED, "{h}");
        let id = h["id"].as_i64().unwrap();
        let stay = serde_json::json!({"houseId": id, "checkIn": check_in, "checkOut": check_out});
        let booking = testkit::eventually(30, "book to know the house", || async {
            let (s, b) = self.post("/books", customer, stay.clone()).await;
            (s == reqwest::StatusCode::CREATED).then_some(b)
        })
        .await;
        (id, booking)
    }

    /// Stops everything gracefully.
    pub async fn shutdown(mut self) {
        let last_first: Vec<String> = self
            .instances
            .iter()
            .rev()
            .map(|i| i.name.clone())
            .collect();
        for i in last_first {
            self.stop(&i).await;
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

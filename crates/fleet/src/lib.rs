//! The fleet, defined once: every service housebook runs (its ports, whether it keeps a
//! database or speaks Kafka, whom it calls and through which setting), the local broker
//! (which nisshi, how it is started, how to tell it is up), and the [`Plan`] that turns
//! "these replicas, on this broker and these databases" into every process's settings.
//!
//! Who reads it: the services, for their defaults (ports, where the others are); `./dev`,
//! through the `fleet` program (`fleet --help`); the end-to-end fleets and the benchmark
//! (`crates/e2e`); the manifest and buildspec checks (`fleet json`). Adding a service is
//! one entry in [`SERVICES`] plus its own crate (and, if the public reaches it, its routes
//! in the gateway).
//!
//! No dependencies: `./dev` compiles this first, in seconds, on a bare machine.

pub mod log;

/// One service of the fleet.
#[derive(Debug)]
pub struct Service {
    /// Its name: its crate, its binary, its image, its Kubernetes Deployment.
    pub name: &'static str,
    /// Its HTTP port on a developer's machine (and its own default).
    pub port: u16,
    /// Its gRPC port beside REST, if it serves gRPC.
    pub grpc_port: Option<u16>,
    /// Its admin port (`/metrics` and probes), if its public port must not serve them.
    pub admin_port: Option<u16>,
    /// Its internal port (what only the fleet may call), if it has one.
    pub internal_port: Option<u16>,
    /// Keeps a database: an SQLite file by default, a PostgreSQL database
    /// [`Service::database_name`] in a cluster.
    pub database: bool,
    /// Publishes or consumes Kafka events.
    pub kafka: bool,
    /// `./dev`'s `HOUSEBOOK_REPLICAS` applies to it: it runs as several replicas behind
    /// the gateway (one database, one consumer group), as in a cluster.
    pub scales: bool,
    /// The settings that tell it where the parts it calls are.
    pub calls: &'static [(&'static str, Callee)],
    /// Settings a local fleet (`./dev`'s, the tests') turns on and a cluster never does.
    pub local: &'static [(&'static str, &'static str)],
    /// Conveniences for a person at a developer's machine ([`Plan::for_a_developer`]);
    /// the test fleets run without them, as a cluster does.
    pub developer: &'static [(&'static str, &'static str)],
}

/// What a service calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callee {
    /// Every replica of a service, as a comma-separated list of base URLs (balanced by
    /// their readiness: `platform::upstream`).
    Service(&'static str),
    /// The gateway's token endpoint on its internal port (client-credentials grants).
    TokenEndpoint,
}

impl Service {
    /// Its PostgreSQL database's name.
    pub fn database_name(&self) -> String {
        format!("housebook_{}", self.name)
    }

    /// The port of a kind, if it has one.
    pub fn port_of(&self, kind: Port) -> Option<u16> {
        match kind {
            Port::Http => Some(self.port),
            Port::Grpc => self.grpc_port,
            Port::Admin => self.admin_port,
            Port::Internal => self.internal_port,
        }
    }
}

/// What most services are: one database, Kafka, one replica, an HTTP port only, calling
/// nobody, nothing turned on locally. Each entry below says only how it differs.
const USUAL: Service = Service {
    name: "",
    port: 0,
    grpc_port: None,
    admin_port: None,
    internal_port: None,
    database: true,
    kafka: true,
    scales: false,
    calls: &[],
    local: &[],
    developer: &[],
};

/// The payment context: pays and refunds, once per booking.
pub const PAYMENT: Service = Service {
    name: "payment",
    port: 8082,
    scales: true,
    // The circuit-breaker demo's knobs (PUT /faults).
    local: &[("HOUSEBOOK_FAULTS__ENABLED", "true")],
    ..USUAL
};

/// The house context: houses, and which nights are held.
pub const HOUSE: Service = Service {
    name: "house",
    port: 8083,
    scales: true,
    ..USUAL
};

/// The read model: one row per booking, from every context's events.
pub const MYPAGE: Service = Service {
    name: "mypage",
    port: 8084,
    ..USUAL
};

/// The booking context: the saga's start, over REST and gRPC.
pub const BOOK: Service = Service {
    name: "book",
    port: 8081,
    grpc_port: Some(50051),
    scales: true,
    calls: &[
        ("HOUSEBOOK_PAYMENT__URL", Callee::Service("payment")),
        ("HOUSEBOOK_HOUSE__URL", Callee::Service("house")),
        ("HOUSEBOOK_PAYMENT__TOKEN_URL", Callee::TokenEndpoint),
    ],
    // grpcurl and friends can list the API (reflection answers anyone who can connect).
    developer: &[("HOUSEBOOK_GRPC__REFLECTION", "true")],
    ..USUAL
};

/// Messages to customers, from the saga's events.
pub const NOTIFICATION: Service = Service {
    name: "notification",
    port: 8085,
    ..USUAL
};

/// The gateway's internal port on a developer's machine (and its default): the fleet's
/// client-credentials tokens, never served on the public port.
pub const GATEWAY_INTERNAL_PORT: u16 = 8089;

/// The public edge: tokens, routing, limits. Its metrics on an admin port and the
/// fleet's tokens on an internal port, never on the public one.
pub const GATEWAY: Service = Service {
    name: "gateway",
    port: 8088,
    admin_port: Some(9088),
    internal_port: Some(GATEWAY_INTERNAL_PORT),
    database: false,
    kafka: false,
    calls: &[
        ("HOUSEBOOK_UPSTREAMS__BOOK", Callee::Service("book")),
        ("HOUSEBOOK_UPSTREAMS__PAYMENT", Callee::Service("payment")),
        ("HOUSEBOOK_UPSTREAMS__HOUSE", Callee::Service("house")),
        ("HOUSEBOOK_UPSTREAMS__MYPAGE", Callee::Service("mypage")),
        (
            "HOUSEBOOK_UPSTREAMS__NOTIFICATION",
            Callee::Service("notification"),
        ),
    ],
    ..USUAL
};

/// Every service, in start order: each after those it calls, the gateway last.
pub const SERVICES: [&Service; 6] = [&PAYMENT, &HOUSE, &MYPAGE, &BOOK, &NOTIFICATION, &GATEWAY];

/// A service by name.
pub fn service(name: &str) -> Option<&'static Service> {
    SERVICES.iter().copied().find(|s| s.name == name)
}

/// The services' names, in start order.
pub fn names() -> impl Iterator<Item = &'static str> {
    SERVICES.iter().map(|s| s.name)
}

/// The service an instance (`book`, `book-2`) belongs to.
pub fn service_of(instance: &str) -> &str {
    instance.split('-').next().unwrap_or(instance)
}

/// Where a service answers on a developer's machine (its first replica).
pub fn local_url(service: &Service) -> String {
    format!("http://127.0.0.1:{}", service.port)
}

/// The gateway's token endpoint for the fleet, on a developer's machine.
pub fn local_token_url() -> String {
    token_url(GATEWAY_INTERNAL_PORT)
}

fn token_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/oauth/token")
}

/// Where a service tells it is ready: `200` when it can serve.
pub const READY_PATH: &str = "/readyz";

/// The local Kafka-protocol broker: nisshi (née Tansu), compiled from crates.io.
#[derive(Debug)]
pub struct Broker {
    /// Its program and crate.
    pub program: &'static str,
    /// The release every script installs (`cargo install --locked`).
    pub version: &'static str,
    /// The oldest rustc that compiles it (its rama 0.4 dependency).
    pub rustc: &'static str,
    /// The SHA-256 of its crate on crates.io (`./dev` patches its source: `broker/`).
    pub checksum: &'static str,
    /// Its storage engine by default: SQLite (libsql) only. Each engine instantiates the
    /// broker's generic serving code once more, at full optimisation: PostgreSQL's is added
    /// only where the broker's storage is asked to be PostgreSQL.
    pub features: &'static str,
    /// The feature of its PostgreSQL storage engine.
    pub postgres_feature: &'static str,
    /// Its port on a developer's machine.
    pub port: u16,
    /// The port of the private broker `./dev test` starts for the tests (with fresh storage,
    /// beside a running `./dev up`).
    pub test_port: u16,
    /// How long it may take to listen once started, in seconds.
    pub start_secs: u64,
}

/// The broker `./dev` and the tests run.
pub const BROKER: Broker = Broker {
    program: "nisshi",
    version: "0.8.1",
    rustc: "1.96.0",
    checksum: "a357efb09b95f96964366d41b030341aa9c729544ae4dd9cdd012d7ef8e19a52",
    features: "libsql",
    postgres_feature: "postgres",
    port: 9092,
    test_port: 19092,
    start_secs: 20,
};

impl Broker {
    /// Its arguments to listen on 127.0.0.1:`port` with `storage` (an engine URL such as
    /// `sqlite://nisshi.db`, relative to its working directory, which should be a folder
    /// of its own: it reads a `.env` from there). A new group's first rebalance does not
    /// wait for more members (Kafka's default waits 3 s): on one machine every member
    /// starts one at a time. It is up when its port takes connections.
    pub fn args(&self, port: u16, storage: &str) -> Vec<String> {
        let listener = format!("tcp://127.0.0.1:{port}");
        [
            "broker",
            "--listener-url",
            &listener,
            "--advertised-listener-url",
            &listener,
            "--storage-engine",
            storage,
            "--group-initial-rebalance-delay",
            "0s",
        ]
        .map(str::to_owned)
        .to_vec()
    }
}

/// A port kind of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    Http,
    Grpc,
    Admin,
    Internal,
}

impl Port {
    /// Every kind, in the order `fleet instances` prints them.
    pub const ALL: [Port; 4] = [Port::Http, Port::Grpc, Port::Admin, Port::Internal];

    /// The setting that tells a service this port.
    pub fn setting(self) -> &'static str {
        match self {
            Port::Http => "HOUSEBOOK_HTTP__PORT",
            Port::Grpc => "HOUSEBOOK_GRPC__PORT",
            Port::Admin => "HOUSEBOOK_HTTP__ADMIN_PORT",
            Port::Internal => "HOUSEBOOK_INTERNAL__PORT",
        }
    }
}

/// Replica `replica` (from 1) of `service`'s port of `kind` on a developer's machine:
/// its own port, plus 10 for each replica before it (book-2 on 8091, its gRPC on 50061).
pub fn local_port(service: &Service, replica: usize, kind: Port) -> Option<u16> {
    let offset = u16::try_from(10 * replica.saturating_sub(1)).ok()?;
    service.port_of(kind)?.checked_add(offset)
}

/// One process of the fleet.
#[derive(Debug, Clone)]
pub struct Instance {
    /// `book` for a service's first replica, `book-2` for its second.
    pub name: String,
    pub service: &'static Service,
    /// Its ports, by kind.
    pub ports: Vec<(Port, u16)>,
    /// Its settings, as environment variables.
    pub env: Vec<(String, String)>,
}

impl Instance {
    /// Its port of a kind.
    pub fn port(&self, kind: Port) -> Option<u16> {
        self.ports.iter().find(|(k, _)| *k == kind).map(|(_, p)| *p)
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!(
            "http://127.0.0.1:{}",
            self.port(Port::Http).unwrap_or_default()
        )
    }
}

/// How to run a fleet on one machine: how many replicas of each service, on which broker
/// and which databases. [`Plan::instances`] gives every process and its settings.
#[derive(Debug, Clone)]
pub struct Plan {
    replicas: Vec<(&'static str, usize)>,
    brokers: String,
    databases: Vec<(&'static str, String)>,
    developer: bool,
}

impl Plan {
    /// One replica of every service on `brokers`, each on its own default database.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            replicas: Vec::new(),
            brokers: brokers.into(),
            databases: Vec::new(),
            developer: false,
        }
    }

    /// With each service's [`Service::developer`] conveniences (`./dev`'s fleet).
    pub fn for_a_developer(mut self) -> Self {
        self.developer = true;
        self
    }

    /// `n` replicas of `service` (at least one).
    pub fn replicas(mut self, service: &'static str, n: usize) -> Self {
        self.replicas.retain(|(s, _)| *s != service);
        self.replicas.push((service, n.max(1)));
        self
    }

    /// `n` replicas of every service that [`Service::scales`].
    pub fn scaled(self, n: usize) -> Self {
        SERVICES
            .iter()
            .filter(|s| s.scales)
            .fold(self, |plan, s| plan.replicas(s.name, n))
    }

    /// `service`'s database URL (shared by its replicas).
    pub fn database(mut self, service: &'static str, url: impl Into<String>) -> Self {
        self.databases.retain(|(s, _)| *s != service);
        self.databases.push((service, url.into()));
        self
    }

    /// Every service's database on the PostgreSQL server at `server` (a URL without a
    /// database), each named [`Service::database_name`].
    pub fn postgres(self, server: &str) -> Self {
        let server = server.trim_end_matches('/').to_owned();
        SERVICES
            .iter()
            .filter(|s| s.database)
            .fold(self, |plan, s| {
                let url = format!("{server}/{}", s.database_name());
                plan.database(s.name, url)
            })
    }

    /// How many replicas of `service`.
    pub fn replicas_of(&self, service: &str) -> usize {
        self.replicas
            .iter()
            .find(|(s, _)| *s == service)
            .map_or(1, |(_, n)| *n)
    }

    /// Every process, in start order, with the ports `port` gives it (by service, replica
    /// from 1, and kind; [`local_port`] for a developer's machine) and its settings:
    /// its ports, the broker and the local broker's settings (if it speaks Kafka), its
    /// database (if the plan names one), where every replica of each part it calls is,
    /// a drain second when it runs as several replicas, [`Service::local`] and, for a
    /// developer, [`Service::developer`].
    pub fn instances(
        &self,
        mut port: impl FnMut(&'static Service, usize, Port) -> Option<u16>,
    ) -> Vec<Instance> {
        let mut all: Vec<Instance> = SERVICES
            .iter()
            .flat_map(|s| (1..=self.replicas_of(s.name)).map(move |r| (*s, r)))
            .map(|(service, replica)| Instance {
                name: if replica == 1 {
                    service.name.to_owned()
                } else {
                    format!("{}-{replica}", service.name)
                },
                service,
                ports: Port::ALL
                    .into_iter()
                    .filter(|k| service.port_of(*k).is_some())
                    .filter_map(|k| Some((k, port(service, replica, k)?)))
                    .collect(),
                env: Vec::new(),
            })
            .collect();
        let urls = |all: &[Instance], service: &str| {
            all.iter()
                .filter(|i| i.service.name == service)
                .map(Instance::url)
                .collect::<Vec<_>>()
                .join(",")
        };
        let token = all
            .iter()
            .find(|i| i.service.name == GATEWAY.name)
            .and_then(|g| g.port(Port::Internal))
            .map(token_url);
        let env: Vec<Vec<(String, String)>> = all
            .iter()
            .map(|i| {
                let s = i.service;
                let mut env: Vec<(String, String)> = i
                    .ports
                    .iter()
                    .map(|(k, p)| (k.setting().to_owned(), p.to_string()))
                    .collect();
                if s.kafka {
                    env.push(("HOUSEBOOK_KAFKA__BROKERS".into(), self.brokers.clone()));
                }
                if let Some((_, url)) = self.databases.iter().find(|(n, _)| *n == s.name) {
                    env.push(("HOUSEBOOK_DATABASE__URL".into(), url.clone()));
                }
                if self.replicas_of(s.name) > 1 {
                    // Readiness turns false a second before the listener closes: longer
                    // than the gateway's readiness poll, so no new call reaches a leaver.
                    env.push(("HOUSEBOOK_HTTP__DRAIN_SECS".into(), "1".into()));
                }
                for (setting, callee) in s.calls {
                    let value = match callee {
                        Callee::Service(name) => Some(urls(&all, name)),
                        Callee::TokenEndpoint => token.clone(),
                    };
                    if let Some(value) = value.filter(|v| !v.is_empty()) {
                        env.push(((*setting).to_owned(), value));
                    }
                }
                let developer = if self.developer { s.developer } else { &[] };
                env.extend(
                    s.local
                        .iter()
                        .chain(developer)
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
                );
                env
            })
            .collect();
        for (i, env) in all.iter_mut().zip(env) {
            i.env = env;
        }
        all
    }

    /// The processes of a developer's machine: [`Plan::instances`] on [`local_port`].
    pub fn local_instances(&self) -> Vec<Instance> {
        self.instances(local_port)
    }
}

/// The whole definition as JSON (`fleet json`: the manifest and buildspec checks read it).
pub fn json() -> String {
    fn text(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
                c => out.push(c),
            }
        }
        out + "\""
    }
    fn port(p: Option<u16>) -> String {
        p.map_or_else(|| "null".to_owned(), |p| p.to_string())
    }
    let services: Vec<String> = SERVICES
        .iter()
        .map(|s| {
            let calls: Vec<String> = s
                .calls
                .iter()
                .map(|(setting, callee)| {
                    let to = match callee {
                        Callee::Service(name) => text(name),
                        Callee::TokenEndpoint => text("token-endpoint"),
                    };
                    format!("{{\"setting\":{},\"calls\":{to}}}", text(setting))
                })
                .collect();
            let settings = |list: &[(&str, &str)]| {
                list.iter()
                    .map(|(k, v)| format!("{}:{}", text(k), text(v)))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            format!(
                "{{\"name\":{},\"port\":{},\"grpcPort\":{},\"adminPort\":{},\"internalPort\":{},\
                 \"database\":{},\"kafka\":{},\"scales\":{},\"calls\":[{}],\"local\":{{{}}},\
                 \"developer\":{{{}}}}}",
                text(s.name),
                s.port,
                port(s.grpc_port),
                port(s.admin_port),
                port(s.internal_port),
                s.database,
                s.kafka,
                s.scales,
                calls.join(","),
                settings(s.local),
                settings(s.developer)
            )
        })
        .collect();
    format!(
        "{{\"version\":{},\"services\":[{}],\"broker\":{{\"program\":{},\"version\":{},\"rustc\":{},\
         \"features\":{},\"port\":{}}}}}",
        text(env!("CARGO_PKG_VERSION")),
        services.join(","),
        text(BROKER.program),
        text(BROKER.version),
        text(BROKER.rustc),
        text(BROKER.features),
        BROKER.port,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn each_service_starts_after_what_it_calls_and_names_are_unique() {
        for (at, s) in SERVICES.iter().enumerate() {
            assert_eq!(service(s.name).map(|x| x.port), Some(s.port));
            assert!(!s.name.contains('-'), "{}: '-' marks a replica", s.name);
            for (_, callee) in s.calls {
                let callee = match callee {
                    Callee::Service(name) => *name,
                    Callee::TokenEndpoint => GATEWAY.name,
                };
                let before = SERVICES[..at].iter().any(|c| c.name == callee);
                assert!(
                    before || callee == GATEWAY.name,
                    "{} calls {callee}, which starts later",
                    s.name
                );
            }
        }
    }

    #[test]
    fn no_two_parts_share_a_port_on_a_developers_machine_even_with_replicas() {
        let plan = Plan::new("b").scaled(3);
        let mut ports: Vec<u16> = plan
            .local_instances()
            .iter()
            .flat_map(|i| i.ports.iter().map(|(_, p)| *p))
            .chain([BROKER.port, BROKER.test_port])
            .collect();
        let n = ports.len();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), n, "a port is used twice: {ports:?}");
    }

    fn env_of<'a>(instances: &'a [Instance], name: &str) -> &'a [(String, String)] {
        &instances.iter().find(|i| i.name == name).unwrap().env
    }

    fn get<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
        env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_plan_tells_each_process_its_ports_broker_database_and_every_replica_it_calls() {
        let all = Plan::new("127.0.0.1:9092")
            .scaled(2)
            .postgres("postgres://pg:5432/")
            .local_instances();
        let names: Vec<&str> = all.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "payment",
                "payment-2",
                "house",
                "house-2",
                "mypage",
                "book",
                "book-2",
                "notification",
                "gateway"
            ]
        );
        let book2 = env_of(&all, "book-2");
        assert_eq!(get(book2, "HOUSEBOOK_HTTP__PORT"), Some("8091"));
        assert_eq!(get(book2, "HOUSEBOOK_GRPC__PORT"), Some("50061"));
        assert_eq!(
            get(book2, "HOUSEBOOK_PAYMENT__URL"),
            Some("http://127.0.0.1:8082,http://127.0.0.1:8092")
        );
        assert_eq!(
            get(book2, "HOUSEBOOK_PAYMENT__TOKEN_URL"),
            Some("http://127.0.0.1:8089/oauth/token")
        );
        assert_eq!(
            get(book2, "HOUSEBOOK_DATABASE__URL"),
            Some("postgres://pg:5432/housebook_book")
        );
        assert_eq!(get(book2, "HOUSEBOOK_HTTP__DRAIN_SECS"), Some("1"));
        assert_eq!(
            get(book2, "HOUSEBOOK_KAFKA__BROKERS"),
            Some("127.0.0.1:9092")
        );
        // The local broker answers a waiting fetch as a record arrives (broker/): the
        // services fetch as they do from Apache Kafka, with librdkafka's wait.
        assert_eq!(get(book2, "HOUSEBOOK_KAFKA__FETCH_WAIT_MS"), None);
        let mypage = env_of(&all, "mypage");
        assert_eq!(get(mypage, "HOUSEBOOK_HTTP__DRAIN_SECS"), None);
        let gateway = env_of(&all, "gateway");
        assert_eq!(get(gateway, "HOUSEBOOK_HTTP__ADMIN_PORT"), Some("9088"));
        assert_eq!(get(gateway, "HOUSEBOOK_INTERNAL__PORT"), Some("8089"));
        assert_eq!(
            get(gateway, "HOUSEBOOK_UPSTREAMS__HOUSE"),
            Some("http://127.0.0.1:8083,http://127.0.0.1:8093")
        );
        assert_eq!(get(gateway, "HOUSEBOOK_DATABASE__URL"), None);
        assert_eq!(get(gateway, "HOUSEBOOK_KAFKA__BROKERS"), None);
        assert_eq!(
            get(env_of(&all, "payment-2"), "HOUSEBOOK_FAULTS__ENABLED"),
            Some("true")
        );
        assert_eq!(get(book2, "HOUSEBOOK_GRPC__REFLECTION"), None);
        let developer = Plan::new("b").for_a_developer().local_instances();
        assert_eq!(
            get(env_of(&developer, "book"), "HOUSEBOOK_GRPC__REFLECTION"),
            Some("true")
        );
    }

    #[test]
    fn the_local_defaults_are_the_first_replicas_addresses() {
        let all = Plan::new("b").local_instances();
        for i in &all {
            assert_eq!(i.url(), local_url(i.service));
        }
        assert_eq!(
            get(env_of(&all, "book"), "HOUSEBOOK_PAYMENT__TOKEN_URL"),
            Some(local_token_url().as_str())
        );
    }

    #[test]
    fn the_broker_listens_and_advertises_where_it_is_asked() {
        let args = BROKER.args(19092, "sqlite://nisshi.db");
        let at = |flag: &str| {
            let i = args.iter().position(|a| a == flag).unwrap();
            args[i + 1].as_str()
        };
        assert_eq!(at("--listener-url"), "tcp://127.0.0.1:19092");
        assert_eq!(at("--advertised-listener-url"), "tcp://127.0.0.1:19092");
        assert_eq!(at("--storage-engine"), "sqlite://nisshi.db");
    }

    #[test]
    fn the_json_is_json_and_says_what_the_table_says() {
        let json: serde_json::Value = serde_json::from_str(&json()).unwrap();
        let services = json["services"].as_array().unwrap();
        assert_eq!(services.len(), SERVICES.len());
        for (j, s) in services.iter().zip(SERVICES) {
            assert_eq!(j["name"], s.name);
            assert_eq!(j["port"], s.port);
            assert_eq!(j["database"], s.database);
            assert_eq!(j["kafka"], s.kafka);
            assert_eq!(j["calls"].as_array().unwrap().len(), s.calls.len());
        }
        assert_eq!(json["services"][3]["grpcPort"], 50051);
        assert_eq!(json["services"][5]["calls"][0]["calls"], "book");
        assert_eq!(
            json["services"][3]["developer"]["HOUSEBOOK_GRPC__REFLECTION"],
            "true"
        );
        assert_eq!(json["broker"]["version"], BROKER.version);
    }
}

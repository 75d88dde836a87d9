//! Typed, layered settings: defaults → optional TOML file → `HOUSEBOOK_…` environment.
//!
//! Every value has a local default, so the fleet starts with no configuration at all.
//! Nested keys use a double underscore: `HOUSEBOOK_DATABASE__URL`,
//! `HOUSEBOOK_KAFKA__BROKERS`, `HOUSEBOOK_HTTP__PORT`. `HOUSEBOOK_CONFIG` names an optional
//! TOML file. `HOUSEBOOK_DATA_DIR` (default `./data`) is where the default SQLite file lives.
//! Secrets are [`SecretString`]s: their `Debug` prints `[REDACTED]`.

pub use config::ConfigError;
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// The settings every service shares. A service embeds it with `#[serde(flatten)]`.
#[derive(schemars::JsonSchema, Debug, Clone, serde::Serialize, Deserialize, Default)]
#[serde(default)]
pub struct CommonSettings {
    /// The HTTP server.
    pub http: HttpSettings,
    /// The service's own database.
    pub database: DatabaseSettings,
    /// The Kafka-protocol broker.
    pub kafka: KafkaSettings,
    /// Token verification.
    pub auth: AuthSettings,
    /// Logging.
    pub log: LogSettings,
}

/// The HTTP server, and the bounds that keep a flood of requests from exhausting it
/// (SPEC §7; see `crate::server`).
#[derive(schemars::JsonSchema, Debug, Clone, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct HttpSettings {
    /// Address to bind.
    pub host: String,
    /// Port to bind; `0` picks a free one (tests).
    pub port: u16,
    /// A second port for `/healthz`, `/readyz` and `/metrics`, which `port` then no longer
    /// serves (the gateway's public port carries only the API). None: all on `port`.
    pub admin_port: Option<u16>,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Seconds to keep serving after readiness turns false on SIGTERM, so that load
    /// balancers stop sending before the listener closes.
    pub drain_secs: u64,
    /// Open connections at most; beyond, new ones wait in the listen backlog.
    pub max_connections: usize,
    /// Open connections one client address (the TCP peer; an IPv6 /64) may hold; beyond,
    /// its new ones are answered `429` at once and closed, so that one source cannot take
    /// every connection.
    /// `0`: no cap of its own. Behind a proxy of the deployment's own every client is the
    /// proxy's address: there, the proxy bounds connections per client (the Ingress).
    pub max_connections_per_address: usize,
    /// API requests in progress at most; beyond, `503` + `Retry-After` at once (load
    /// shedding; health and metrics are exempt). A request takes its place only once its
    /// body has arrived.
    pub max_in_flight: usize,
    /// API requests one client address may have in progress, reading their bodies
    /// included; beyond, `429` + `Retry-After` at once. `0`: no cap of its own.
    pub max_in_flight_per_address: usize,
    /// A request's body must arrive within this, before it takes a place among those in
    /// progress (`408`): a slow body holds only its sender's share.
    pub body_read_timeout_ms: u64,
    /// A request's head (line and headers) must arrive within this, and an idle
    /// keep-alive connection is closed after it (slow clients, slowloris).
    pub header_read_timeout_ms: u64,
    /// Headers per request at most (`431` beyond).
    pub max_headers: usize,
    /// Bytes of request line and headers at most (`431` beyond).
    pub max_header_bytes: usize,
    /// A request must be answered within this once its body has arrived (`408`).
    pub request_timeout_ms: u64,
    /// An answer the client does not read within this closes the connection (a client
    /// that pipelines requests and never reads would otherwise hold it, and the answers
    /// queued for it, for ever).
    pub write_timeout_ms: u64,
    /// Whether a request's `traceparent` is continued (the default: behind the fleet's
    /// edge, and locally) or a new trace is started, linked to it, with `tracestate` and
    /// `baggage` dropped (the gateway in a cluster, where requests come from the internet).
    pub trust_trace_context: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 0,
            admin_port: None,
            body_limit_bytes: 64 * 1024,
            drain_secs: 0,
            max_connections: 1024,
            // A quarter each: one source can never take more than that, and three quarters
            // stay for everyone else (a load test or siege from one machine runs far below).
            max_connections_per_address: 256,
            max_in_flight: 512,
            max_in_flight_per_address: 128,
            body_read_timeout_ms: 5_000,
            header_read_timeout_ms: 10_000,
            max_headers: 64,
            max_header_bytes: 16 * 1024,
            request_timeout_ms: 30_000,
            write_timeout_ms: 10_000,
            trust_trace_context: true,
        }
    }
}

/// The service's own database: `sqlite://FILE` or `postgres://…`.
#[derive(schemars::JsonSchema, Debug, Clone, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// The database URL; secret because a PostgreSQL URL can carry a password.
    #[serde(serialize_with = "secret")]
    #[schemars(with = "String")]
    pub url: SecretString,
    /// Pool size; SQLite serializes writers anyway, so it defaults to one connection there.
    pub max_connections: Option<u32>,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from("sqlite::memory:"),
            max_connections: None,
        }
    }
}

/// The Kafka-protocol broker and this service's consumer group.
#[derive(schemars::JsonSchema, Debug, Clone, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct KafkaSettings {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Prepended to every topic name (tests give each run its own).
    pub topic_prefix: String,
    /// The consumer group id; one group per service.
    pub group_id: String,
    /// Leave and join the group again when no partition came this long after joining;
    /// `0` (the default) never does. For a broker that can strand a newcomer (Tansu 0.6.0
    /// did; see `ConsumerLoop::run`); Apache Kafka needs none.
    pub rejoin_unassigned_ms: u64,
    /// Partitions of topics created at start-up.
    pub partitions: i32,
    /// Replication factor of topics created at start-up.
    pub replication: i32,
    /// Attempts at a failing event before it is parked on the dead-letter topic.
    pub max_attempts: u32,
    /// First retry delay, doubled at each attempt.
    pub retry_backoff_ms: u64,
    /// How often the relay looks for unpublished outbox rows when nothing woke it.
    pub relay_poll_ms: u64,
    /// The longest a fetch waits for data (`fetch.wait.max.ms`); unset, librdkafka's
    /// default (500 ms). Apache Kafka, and the local broker with this repository's patch
    /// (docs/broker.md), answer a waiting fetch as soon as data arrives, so the wait only
    /// bounds idle polling: a shorter one costs the broker a look at its storage more often
    /// and delivers nothing sooner.
    pub fetch_wait_ms: Option<u64>,
    /// How the clients reach the brokers: plaintext (locally), or TLS with the service's
    /// own client certificate (a cluster: Strimzi's `tls` users, whose ACLs say what each
    /// service may write and read).
    pub security: KafkaSecurity,
    /// Create the topics at start-up when missing (the local broker creates none on
    /// demand). A cluster declares them (Strimzi `KafkaTopic`) and gives no service the
    /// right to create any: `false` there.
    pub create_topics: bool,
}

/// `security.protocol` and its TLS files (`HOUSEBOOK_KAFKA__SECURITY__*`).
#[derive(schemars::JsonSchema, Debug, Clone, Default, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct KafkaSecurity {
    /// `plaintext` (the default) or `ssl`.
    pub protocol: KafkaProtocol,
    /// The CA certificate(s) the brokers' certificates must chain to (PEM file); none:
    /// the system's roots.
    pub ca_location: Option<String>,
    /// The client's certificate (PEM file), for brokers that authenticate clients by TLS.
    pub certificate_location: Option<String>,
    /// The client certificate's private key (PEM file).
    pub key_location: Option<String>,
}

/// How the Kafka clients talk to the brokers.
#[derive(
    schemars::JsonSchema, Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum KafkaProtocol {
    /// No TLS (the local broker).
    #[default]
    Plaintext,
    /// TLS, verifying the brokers' certificates and names.
    Ssl,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self {
            brokers: format!("127.0.0.1:{}", fleet::BROKER.port),
            topic_prefix: String::new(),
            group_id: String::new(),
            rejoin_unassigned_ms: 0,
            partitions: 3,
            replication: 1,
            max_attempts: 5,
            retry_backoff_ms: 100,
            relay_poll_ms: 500,
            fetch_wait_ms: None,
            security: KafkaSecurity::default(),
            create_topics: true,
        }
    }
}

impl KafkaSettings {
    /// The topic a context's events travel on.
    pub fn topic(&self, context: events::Context) -> String {
        format!("{}{}", self.topic_prefix, context.topic())
    }

    /// The topic an event type travels on; `None` for a type not in the catalog.
    pub fn topic_of(&self, event_type: &str) -> Option<String> {
        events::Context::of(event_type).map(|c| self.topic(c))
    }

    /// The topics that carry `event_types`: what a consumer of them subscribes to.
    pub fn topics_for(&self, event_types: &[&str]) -> Vec<String> {
        events::Context::publishing(event_types)
            .into_iter()
            .map(|c| self.topic(c))
            .collect()
    }

    /// Every events topic, one per context.
    pub fn event_topics(&self) -> Vec<String> {
        self.topics_for(events::EVENT_TYPES)
    }

    /// Where events that could not be handled are parked, with the reason.
    pub fn dead_letter_topic(&self) -> String {
        format!("{}housebook.events.dlq", self.topic_prefix)
    }
}

/// Token verification (SPEC §7).
#[derive(schemars::JsonSchema, Debug, Clone, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    /// The issuer's Ed25519 public key (PEM). Defaults to the local development key.
    pub public_key_pem: String,
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`.
    pub audience: String,
    /// The key's id: the gateway puts it in every token's `kid` header and publishes it in
    /// its JWKS; a token naming another key is refused (a rotation adds keys by id).
    pub key_id: String,
    /// Refuse to start with the local development key, users or client secrets (set in
    /// every cluster overlay but the local one: the development private key is public).
    pub forbid_dev_credentials: bool,
    /// The other key of a rotation (PEM), accepted beside `public_key_pem` under
    /// `other_key_id` and published in the gateway's JWKS: the next key before the
    /// gateway switches to signing with it, the previous one after, until the last token
    /// it signed has expired (docs/deploy.md: rotating the token key).
    pub other_public_key_pem: Option<String>,
    /// The `kid` of `other_public_key_pem`.
    pub other_key_id: Option<String>,
    /// The longest lifetime (`exp − iat`) a token may claim, in seconds: the issuer's
    /// maximum. A token that claims more was not issued by our gateway's rules (a key
    /// misused, a forged lifetime) and is refused, as is one issued in the future.
    pub max_token_lifetime_secs: i64,
}

/// The local development verifying key: NOT a secret, see `dev-keys/README.md`.
pub const DEV_VERIFYING_KEY_PEM: &str = include_str!("../dev-keys/dev-verifying-key.pem");
/// The local development signing key: NOT a secret, see `dev-keys/README.md`.
pub const DEV_SIGNING_KEY_PEM: &str = include_str!("../dev-keys/dev-signing-key.pem");

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            public_key_pem: DEV_VERIFYING_KEY_PEM.into(),
            issuer: "housebook-gateway".into(),
            audience: "housebook".into(),
            key_id: "housebook-dev".into(),
            forbid_dev_credentials: false,
            other_public_key_pem: None,
            other_key_id: None,
            max_token_lifetime_secs: 24 * 3600,
        }
    }
}

/// Logging.
#[derive(schemars::JsonSchema, Debug, Clone, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    /// `json` (default) or `pretty`.
    pub format: String,
    /// An `EnvFilter` directive, e.g. `info,sqlx=warn`.
    pub filter: String,
    /// Where to send traces (OTLP over HTTP, e.g. `http://collector:4318/v1/traces`);
    /// none: traces are kept to the logs' trace ids and the propagated context.
    pub otlp_endpoint: Option<String>,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: "json".into(),
            filter: "info,sqlx=warn,rdkafka=warn".into(),
            otlp_endpoint: None,
        }
    }
}

/// The per-service defaults laid under the file and the environment.
#[derive(Debug, Clone, Copy)]
pub struct ServiceDefaults {
    /// The service's name: its consumer group and database file name.
    pub name: &'static str,
    /// Its local port (SPEC §1).
    pub port: u16,
}

/// Where the default SQLite files live: `HOUSEBOOK_DATA_DIR`, else `./data`.
pub fn data_dir() -> String {
    std::env::var("HOUSEBOOK_DATA_DIR").unwrap_or_else(|_| "./data".into())
}

/// Loads a service's settings: defaults, then `HOUSEBOOK_CONFIG` (TOML), then environment.
pub fn load<T: DeserializeOwned>(defaults: ServiceDefaults) -> Result<T, config::ConfigError> {
    load_from(defaults, std::env::var("HOUSEBOOK_CONFIG").ok(), None)
}

/// A service's settings as they are with nothing configured: what `--help` shows.
pub fn defaults<T: DeserializeOwned>(defaults: ServiceDefaults) -> Result<T, config::ConfigError> {
    load_from(defaults, None, Some(config::Map::new()))
}

/// [`load`] from a config file and an environment (`None`: the process's).
pub fn load_from<T: DeserializeOwned>(
    defaults: ServiceDefaults,
    file: Option<String>,
    env: Option<config::Map<String, String>>,
) -> Result<T, config::ConfigError> {
    let mut builder = config::Config::builder()
        .set_default("http.port", i64::from(defaults.port))?
        .set_default("kafka.group_id", defaults.name)?
        .set_default(
            "database.url",
            format!("sqlite://{}/{}.db", data_dir(), defaults.name),
        )?;
    if let Some(path) = file {
        builder = builder.add_source(config::File::with_name(&path).required(true));
    }
    builder
        .add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("_")
                .separator(ENV_SEPARATOR)
                .try_parsing(true)
                .source(env),
        )
        .build()?
        .try_deserialize()
}

/// Environment variables by name, as [`load_from`] takes them.
pub type EnvMap = config::Map<String, String>;

/// The settings tree `env` alone makes, as the loader reads it (keys in lower case,
/// nested by [`ENV_SEPARATOR`]): what a typo'd variable turns into.
pub fn env_tree(env: EnvMap) -> Result<serde_json::Value, config::ConfigError> {
    config::Config::builder()
        .add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("_")
                .separator(ENV_SEPARATOR)
                .try_parsing(true)
                .source(Some(env)),
        )
        .build()?
        .try_deserialize()
}

/// Every setting's prefix in the environment.
pub const ENV_PREFIX: &str = "HOUSEBOOK";
/// What separates nested keys in the environment.
pub const ENV_SEPARATOR: &str = "__";

/// Serializes a secret setting as `(secret)`: `--help` never shows one.
pub fn secret<S: serde::Serializer>(_: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("(secret)")
}

/// [`secret`] for an optional one.
pub fn secret_opt<S: serde::Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str("(secret)"),
        None => s.serialize_none(),
    }
}

/// Each setting's environment variable with its value, in key order: nested keys joined
/// by [`ENV_SEPARATOR`]; a list is shown as JSON (lists are set in the
/// `HOUSEBOOK_CONFIG` file).
pub fn env_lines(settings: &serde_json::Value) -> Vec<(String, String)> {
    fn walk(path: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let key = k.to_ascii_uppercase();
                    let next = if path.is_empty() {
                        format!("{ENV_PREFIX}_{key}")
                    } else {
                        format!("{path}{ENV_SEPARATOR}{key}")
                    };
                    walk(&next, v, out);
                }
            }
            // A value with a line break (a PEM key) is shown quoted, on one line.
            serde_json::Value::String(s) if s.contains('\n') => {
                out.push((
                    path.to_owned(),
                    serde_json::Value::from(s.as_str()).to_string(),
                ));
            }
            serde_json::Value::String(s) => out.push((path.to_owned(), s.clone())),
            serde_json::Value::Null => out.push((path.to_owned(), "(unset)".into())),
            other => out.push((path.to_owned(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    walk("", settings, &mut out);
    out.sort();
    out
}

/// What each setting of `T` means, by its environment variable: the first sentence of the
/// field's doc comment, on one line. A section's variable (a setting that is unset as a
/// whole, shown `(unset)`) has its section's sentence.
pub fn meanings<T: schemars::JsonSchema>() -> std::collections::BTreeMap<String, String> {
    use schemars::schema::{Schema, SchemaObject};
    let root = schemars::gen::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<T>();
    let defs = &root.definitions;
    // The schema a field's schema stands for: its reference, the one of an `allOf` (a
    // documented field of a struct type) or the one not null of an `anyOf` (an Option).
    fn resolve<'a>(
        defs: &'a schemars::Map<String, Schema>,
        s: &'a SchemaObject,
    ) -> &'a SchemaObject {
        if let Some(name) = s.reference.as_deref().and_then(|r| r.rsplit('/').next()) {
            if let Some(Schema::Object(o)) = defs.get(name) {
                return resolve(defs, o);
            }
        }
        if let Some(sub) = &s.subschemas {
            let options = sub.all_of.iter().chain(sub.any_of.iter()).flatten();
            for o in options {
                if let Schema::Object(o) = o {
                    let is_null =
                        o.instance_type == Some(schemars::schema::InstanceType::Null.into());
                    if !is_null {
                        return resolve(defs, o);
                    }
                }
            }
        }
        s
    }
    fn walk(
        defs: &schemars::Map<String, Schema>,
        s: &SchemaObject,
        path: &str,
        out: &mut std::collections::BTreeMap<String, String>,
    ) {
        let Some(object) = &resolve(defs, s).object else {
            return;
        };
        for (key, field) in &object.properties {
            let Schema::Object(field) = field else {
                continue;
            };
            let var = if path.is_empty() {
                format!("{ENV_PREFIX}_{}", key.to_ascii_uppercase())
            } else {
                format!("{path}{ENV_SEPARATOR}{}", key.to_ascii_uppercase())
            };
            let doc = field
                .metadata
                .as_ref()
                .and_then(|m| m.description.as_deref())
                .or_else(|| {
                    let r = resolve(defs, field);
                    r.metadata.as_ref().and_then(|m| m.description.as_deref())
                });
            if let Some(doc) = doc {
                out.insert(var.clone(), first_sentence(doc));
            }
            walk(defs, field, &var, out);
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(defs, &root.schema, "", &mut out);
    out
}

/// A doc comment's first sentence, on one line.
fn first_sentence(doc: &str) -> String {
    let one_line = doc.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut end = one_line.len();
    let bytes = one_line.as_bytes();
    for (i, c) in one_line.char_indices() {
        // A full stop that ends a sentence: followed by a space and a capital, or the end.
        if c == '.'
            && (i + 1 == bytes.len()
                || (bytes[i + 1] == b' ' && bytes.get(i + 2).is_some_and(u8::is_ascii_uppercase)))
        {
            end = i + 1;
            break;
        }
    }
    one_line[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[derive(Debug, Deserialize)]
    struct S {
        #[serde(flatten)]
        common: CommonSettings,
    }

    #[test]
    fn defaults_need_no_configuration_and_secrets_never_print() {
        let s: S = load(ServiceDefaults {
            name: "payment",
            port: 8082,
        })
        .unwrap();
        assert_eq!(s.common.http.port, 8082);
        assert_eq!(s.common.kafka.group_id, "payment");
        assert!(s
            .common
            .database
            .url
            .expose_secret()
            .ends_with("/payment.db"));
        let shown = format!("{:?}", s.common.database);
        assert!(
            !shown.contains("payment.db"),
            "database url leaked: {shown}"
        );
        assert_eq!(
            s.common.kafka.event_topics(),
            [
                "housebook.booking.events",
                "housebook.payment.events",
                "housebook.house.events"
            ]
        );
    }
}

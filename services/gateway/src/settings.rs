//! The gateway's settings. Users and clients come from configuration; the defaults are the
//! LOCAL DEVELOPMENT users of SPEC §9 (admin/admin, alice/alice, bob/bob and the `book`
//! client), which a cluster replaces from a Secret (a TOML file named by `HOUSEBOOK_CONFIG`).

use platform::auth::Role;

use crate::limit::Rate;
use platform::settings::{AuthSettings, HttpSettings, LogSettings, DEV_SIGNING_KEY_PEM};
use secrecy::SecretString;
use serde::Deserialize;

/// All of the gateway's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The HTTP server.
    pub http: HttpSettings,
    /// The public key, issuer and audience (shared with every service).
    pub auth: AuthSettings,
    /// Logging.
    pub log: LogSettings,
    /// Token issuance.
    pub tokens: TokenSettings,
    /// Who may get a password-grant token.
    pub users: Vec<Principal>,
    /// Which services may get a client-credentials token.
    pub clients: Vec<Principal>,
    /// Where the routes go.
    pub upstreams: Upstreams,
    /// Rate limits.
    pub rate_limit: RateLimits,
}

/// Rate limits at the edge. The defaults suit one laptop, where a load test sends
/// everything with one token; a cluster sets its own (see `k8s/base/config`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RateLimits {
    /// API calls per token subject.
    pub api: Rate,
    /// Token requests per user or client name.
    pub token: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            api: Rate {
                per_second: 1000.0,
                burst: 2000.0,
            },
            token: Rate {
                per_second: 10.0,
                burst: 20.0,
            },
        }
    }
}

/// Token issuance.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TokenSettings {
    /// The Ed25519 private key (PKCS#8 PEM). The default is the LOCAL DEVELOPMENT key.
    pub signing_key_pem: SecretString,
    /// The key id published in the JWKS and put in token headers.
    pub key_id: String,
    /// Lifetime of a token, in seconds.
    pub ttl_secs: i64,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            signing_key_pem: SecretString::from(DEV_SIGNING_KEY_PEM),
            key_id: "housebook-dev".into(),
            ttl_secs: 3600,
        }
    }
}

/// A user or client: a name, an argon2 hash of its password or secret, its roles.
#[derive(Debug, Clone, Deserialize)]
pub struct Principal {
    /// User name or client id.
    pub name: String,
    /// Argon2 PHC string of the password or client secret.
    pub secret_hash: SecretString,
    /// Roles put in its tokens.
    pub roles: Vec<Role>,
}

/// The upstream base URLs: one per service (a Kubernetes Service), or a comma-separated
/// list of replicas, which the gateway balances by their readiness.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Upstreams {
    /// The booking service.
    pub book: String,
    /// The payment service.
    pub payment: String,
    /// The house service.
    pub house: String,
    /// The view.
    pub mypage: String,
    /// Timeout of one proxied call, in milliseconds.
    pub timeout_ms: u64,
    /// How often replicas' `/readyz` is polled, in milliseconds (lists of two or more).
    pub health_interval_ms: u64,
}

impl Default for Upstreams {
    fn default() -> Self {
        Self {
            book: "http://127.0.0.1:8081".into(),
            payment: "http://127.0.0.1:8082".into(),
            house: "http://127.0.0.1:8083".into(),
            mypage: "http://127.0.0.1:8084".into(),
            timeout_ms: 10_000,
            health_interval_ms: 250,
        }
    }
}

fn principal(name: &str, hash: &str, roles: &[Role]) -> Principal {
    Principal {
        name: name.into(),
        secret_hash: SecretString::from(hash),
        roles: roles.to_vec(),
    }
}

impl Default for Settings {
    fn default() -> Self {
        // LOCAL DEVELOPMENT credentials (SPEC §9): each user's password is its name.
        Self {
            http: HttpSettings::default(),
            auth: AuthSettings::default(),
            log: LogSettings::default(),
            tokens: TokenSettings::default(),
            users: vec![
                principal("admin", "$argon2id$v=19$m=19456,t=2,p=1$hofg+Z+vO8jK7q62nH0zjQ$e7+Sv0evThSlQZJkMjtRMAV/QXt7NuVjZELRBJwWlBo", &[Role::Admin]),
                principal("alice", "$argon2id$v=19$m=19456,t=2,p=1$T4B2lOHnVgwTOJrieGIg3Q$XBefHvcoINGJ2lM1FDy/9pCN1NPeNntR3jnfRoTg9Lk", &[Role::Customer]),
                principal("bob", "$argon2id$v=19$m=19456,t=2,p=1$Sep8OPzAAaadOrOH2OI2Og$uC0HeMF70DBlgTtLis4Eg5hRTxWPEMpcb4AHT9j1v1g", &[Role::Customer]),
            ],
            // The book service's client secret is `book-dev-secret`.
            clients: vec![principal(
                "book",
                "$argon2id$v=19$m=19456,t=2,p=1$iX25fUvpPOblMh3iCUTHfg$aDxTcO+xH2LDBwGD9Pb8ZwboyAFiJadi11/Xy/tuL44",
                &[Role::Service],
            )],
            upstreams: Upstreams::default(),
            rate_limit: RateLimits::default(),
        }
    }
}

//! The gateway's settings. Users and clients come from configuration; the defaults are the
//! LOCAL DEVELOPMENT users of SPEC §9 (admin/admin, alice/alice, bob/bob and the `book`
//! client), which a cluster replaces from a Secret (a TOML file named by `HOUSEBOOK_CONFIG`).

use platform::auth::Role;

use crate::client::ForwardedSettings;
use crate::limit::Rate;
use crate::passwords::PasswordSettings;
use platform::settings::{AuthSettings, HttpSettings, LogSettings, DEV_SIGNING_KEY_PEM};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// All of the gateway's settings.
#[derive(schemars::JsonSchema, Debug, Clone, serde::Serialize, Deserialize)]
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
    /// Password and client-secret checks.
    pub passwords: PasswordSettings,
    /// Proxies of the deployment's own in front of the gateway.
    pub forwarded: ForwardedSettings,
    /// The internal listener: client-credentials tokens for the fleet's services.
    pub internal: InternalSettings,
    /// Streams (`GET /notifications/stream`): open ones per token subject (`429` beyond)
    /// and in all (`503` beyond; keep it well below `http.max_connections`).
    pub streams: platform::stream::StreamBounds,
    /// `Strict-Transport-Security: max-age=…; includeSubDomains` on every public answer;
    /// `0` (the default) sends none. Set where the load balancer in front terminates TLS
    /// and redirects HTTP (the EKS overlay): browsers then never try plain HTTP again.
    pub hsts_max_age_secs: u64,
}

/// The internal listener, where the fleet's services get their tokens. Never routed by
/// the Ingress; in a cluster a NetworkPolicy lets only the fleet's pods reach it.
#[derive(schemars::JsonSchema, Debug, Clone, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct InternalSettings {
    /// Interface to bind.
    pub host: String,
    /// Port; `0` picks a free one.
    pub port: u16,
}

impl Default for InternalSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: fleet::GATEWAY_INTERNAL_PORT,
        }
    }
}

/// Rate limits at the edge. The defaults suit one laptop, where a load test sends
/// everything with one token; a cluster sets its own (see `k8s/base/config`).
#[derive(schemars::JsonSchema, Debug, Clone, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimits {
    /// API calls per token subject.
    pub api: Rate,
    /// Failed token requests per user or client name from one client address (password
    /// guessing from one place; the name's owner elsewhere is not affected).
    pub token: Rate,
    /// Failed token requests per name, from all the addresses that have failed on it
    /// lately (guessing spread over many places; an address with no failure on the name
    /// is never refused by it).
    pub token_name: Rate,
    /// Token requests per client address (a flood of made-up names from one place),
    /// checked before the request's body is read.
    pub token_address: Rate,
    /// Refused (unauthenticated) API calls per client address.
    pub unauthenticated: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            api: Rate::PER_SUBJECT,
            // Ten wrong passwords in a row from one place, then one a second.
            token: Rate {
                per_second: 1.0,
                burst: 10.0,
            },
            token_name: Rate {
                per_second: 10.0,
                burst: 30.0,
            },
            token_address: Rate {
                per_second: 5.0,
                burst: 20.0,
            },
            unauthenticated: Rate::REFUSED_PER_ADDRESS,
        }
    }
}

/// Token issuance.
#[derive(schemars::JsonSchema, Debug, Clone, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct TokenSettings {
    /// The Ed25519 private key (PKCS#8 PEM). The default is the LOCAL DEVELOPMENT key.
    #[serde(serialize_with = "platform::settings::secret")]
    #[schemars(with = "String")]
    pub signing_key_pem: SecretString,
    /// Lifetime of a token, in seconds.
    pub ttl_secs: i64,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            signing_key_pem: SecretString::from(DEV_SIGNING_KEY_PEM),
            ttl_secs: 3600,
        }
    }
}

/// A user or client: a name, an argon2 hash of its password or secret, its roles.
#[derive(schemars::JsonSchema, Debug, Clone, serde::Serialize, Deserialize)]
pub struct Principal {
    /// User name or client id.
    pub name: String,
    /// Argon2 PHC string of the password or client secret.
    #[serde(serialize_with = "platform::settings::secret")]
    #[schemars(with = "String")]
    pub secret_hash: SecretString,
    /// Roles put in its tokens.
    pub roles: Vec<Role>,
}

/// The upstream base URLs: one per service (a Kubernetes Service), or a comma-separated
/// list of replicas, which the gateway balances by their readiness.
#[derive(schemars::JsonSchema, Debug, Clone, serde::Serialize, Deserialize)]
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
    /// The notifications.
    pub notification: String,
    /// Timeout of one proxied call, in milliseconds.
    pub timeout_ms: u64,
    /// How often replicas' `/readyz` is polled, in milliseconds (lists of two or more).
    pub health_interval_ms: u64,
}

impl Default for Upstreams {
    fn default() -> Self {
        Self {
            book: fleet::local_url(&fleet::BOOK),
            payment: fleet::local_url(&fleet::PAYMENT),
            house: fleet::local_url(&fleet::HOUSE),
            mypage: fleet::local_url(&fleet::MYPAGE),
            notification: fleet::local_url(&fleet::NOTIFICATION),
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
            passwords: PasswordSettings::default(),
            forwarded: ForwardedSettings::default(),
            internal: InternalSettings::default(),
            streams: platform::stream::StreamBounds::default(),
            hsts_max_age_secs: 0,
        }
    }
}

impl Settings {
    /// Refuses the LOCAL DEVELOPMENT key, users and client secrets where
    /// `auth.forbid_dev_credentials` is set (their secrets are in this repository).
    pub fn refuse_dev_credentials(&self) -> anyhow::Result<()> {
        if !self.auth.forbid_dev_credentials {
            return Ok(());
        }
        anyhow::ensure!(
            !platform::auth::same_pem(self.tokens.signing_key_pem.expose_secret(), DEV_SIGNING_KEY_PEM),
            "tokens.signing_key_pem is the local development key (auth.forbid_dev_credentials is on)"
        );
        let dev = Self::default();
        let dev_hashes: Vec<&str> = dev
            .users
            .iter()
            .chain(&dev.clients)
            .map(|p| p.secret_hash.expose_secret())
            .collect();
        for p in self.users.iter().chain(&self.clients) {
            anyhow::ensure!(
                !dev_hashes.contains(&p.secret_hash.expose_secret()),
                "{} has a local development password or secret (auth.forbid_dev_credentials is on)",
                p.name
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_credentials_are_refused_where_forbidden() {
        let mut s = Settings::default();
        assert!(
            s.refuse_dev_credentials().is_ok(),
            "allowed by default (./dev)"
        );
        s.auth.forbid_dev_credentials = true;
        let e = s.refuse_dev_credentials().unwrap_err().to_string();
        assert!(e.contains("signing_key_pem"), "{e}");
        // Another key, but the development users: still refused.
        let rng = ring::rand::SystemRandom::new();
        let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        use base64::Engine as _;
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(doc.as_ref())
        );
        s.tokens.signing_key_pem = SecretString::from(pem);
        let e = s.refuse_dev_credentials().unwrap_err().to_string();
        assert!(e.contains("admin has a local development password"), "{e}");
        s.users.clear();
        s.clients.clear();
        assert!(s.refuse_dev_credentials().is_ok());
    }
}

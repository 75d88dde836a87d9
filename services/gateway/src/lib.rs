//! The edge (SPEC §1, §7): the single entry point. It issues tokens (`POST /oauth/token`,
//! `/.well-known/jwks.json`), checks them, and routes `/houses`, `/books`, `/payments`,
//! `/mypages`, `/availability` and `/notifications` to their services over pooled keep-alive connections.

pub use platform::origin as client;
pub mod contract;
pub use platform::limit;
pub mod oauth;
pub mod pages;
pub mod passwords;
pub mod proxy;
pub mod settings;

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use axum::routing::{any, get, post};
use axum::Router;
use platform::auth::{TokenIssuer, TokenVerifier};
use platform::health::Health;
use platform::metrics::Metrics;
use platform::serve::Port;
use platform::server::Intake;
use platform::service::Service;
use platform::settings::{LogSettings, ServiceDefaults};
use platform::shutdown::CancellationToken;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

pub use settings::Settings;

/// The service's name.
pub const NAME: &str = "gateway";

/// A built, not yet running, gateway.
pub struct Application {
    settings: Settings,
    router: Router,
    listener: TcpListener,
    /// Client-credentials tokens for the fleet, apart from the public port.
    internal: Port,
    /// The public port's intake: callers told apart by the deployment's proxies, the
    /// token endpoint's address rate checked before a body is read.
    intake: Intake,
    metrics: Metrics,
    shutdown: CancellationToken,
}

/// The internal port's routes: the fleet's tokens and the key set.
pub fn internal_router(issuance: oauth::Issuance) -> Router {
    Router::new()
        .route(oauth::TOKEN_PATH, post(oauth::token))
        .route("/.well-known/jwks.json", get(oauth::jwks))
        .with_state(issuance)
}

/// The gateway's public routes.
pub fn router(issuance: oauth::Issuance, proxy: proxy::Proxy, document: &'static str) -> Router {
    let api = Router::new()
        .route("/houses", any(proxy::forward))
        .route("/houses/{*rest}", any(proxy::forward))
        .route("/books", any(proxy::forward))
        .route("/books/{*rest}", any(proxy::forward))
        .route("/payments", any(proxy::forward))
        .route("/payments/{*rest}", any(proxy::forward))
        .route("/faults", any(proxy::forward))
        .route("/mypages", any(proxy::forward))
        .route("/mypages/{*rest}", any(proxy::forward))
        .route("/availability", any(proxy::forward))
        .route("/notifications", any(proxy::forward))
        .route("/notifications/stream", get(proxy::stream))
        .with_state(proxy);
    Router::new()
        .route(oauth::TOKEN_PATH, post(oauth::token))
        .route("/.well-known/jwks.json", get(oauth::jwks))
        .with_state(issuance)
        .merge(api)
        .merge(platform::http::openapi_route(document))
        .merge(pages::router())
}

/// The public API's document ([`contract::public_document`]), built once per process;
/// an error stops the gateway at start-up.
fn public_document() -> anyhow::Result<&'static str> {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(doc) = DOC.get() {
        return Ok(doc);
    }
    let doc = contract::public_document()?.to_string();
    Ok(DOC.get_or_init(|| doc))
}

#[async_trait::async_trait]
impl Service for Application {
    type Settings = Settings;
    const DEFAULTS: ServiceDefaults = ServiceDefaults {
        name: NAME,
        port: fleet::GATEWAY.port,
    };

    fn log(settings: &Settings) -> &LogSettings {
        &settings.log
    }

    async fn build(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let metrics = Metrics::new(NAME)?;
        settings.refuse_dev_credentials()?;
        let issuer = TokenIssuer::from_pem(
            settings.tokens.signing_key_pem.expose_secret(),
            &settings.auth.issuer,
            &settings.auth.audience,
        )?
        .with_key_id(&settings.auth.key_id);
        anyhow::ensure!(
            (1..=settings.auth.max_token_lifetime_secs).contains(&settings.tokens.ttl_secs),
            "tokens.ttl_secs must be 1 to auth.max_token_lifetime_secs ({}): every service refuses longer tokens",
            settings.auth.max_token_lifetime_secs
        );
        let verifier = TokenVerifier::new(&settings.auth)?;
        // The signing key and the published public key must be a pair.
        verifier
            .verify(&issuer.issue("startup-check", &[platform::auth::Role::Service], 60)?)
            .map_err(|_| anyhow::anyhow!("the signing key does not match auth.public_key_pem"))?;
        // Each port checks secrets with slots and limits of its own: a flood of sign-ins
        // on the public port cannot starve the fleet's token refreshes.
        let issuance = |grant, forwarded| -> anyhow::Result<oauth::Issuance> {
            let slots = passwords::Slots::new(settings.passwords);
            Ok(oauth::Issuance {
                grant,
                issuer: issuer.clone(),
                ttl_secs: settings.tokens.ttl_secs,
                users: passwords::Checker::new(settings.users.clone(), slots.clone())?,
                clients: passwords::Checker::new(settings.clients.clone(), slots)?,
                jwks: Arc::new(oauth::jwks_of(&settings.auth)?),
                failures: oauth::Failures::new(
                    settings.rate_limit.token,
                    settings.rate_limit.token_name,
                ),
                address_limiter: limit::Limiter::new(settings.rate_limit.token_address),
                forwarded,
            })
        };
        let public = issuance(oauth::Grant::Password, settings.forwarded)?;
        // Nothing in front of the internal port: the peer address is the client's.
        let fleet = issuance(
            oauth::Grant::ClientCredentials,
            client::ForwardedSettings::default(),
        )?;
        let intake = Intake {
            forwarded: settings.forwarded,
            admission: Some(oauth::admission(&public)),
        };
        let internal_intake = Intake {
            forwarded: client::ForwardedSettings::default(),
            admission: Some(oauth::admission(&fleet)),
        };
        let proxy = proxy::Proxy::new(
            &settings.upstreams,
            verifier,
            settings.http.body_limit_bytes,
            (
                limit::Limiter::new(settings.rate_limit.api),
                limit::Limiter::new(settings.rate_limit.unauthenticated),
            ),
            settings.forwarded,
            platform::stream::Streams::new(&settings.streams),
            shutdown.clone(),
        )?;
        proxy.upstreams.watch(
            Duration::from_millis(settings.upstreams.health_interval_ms.max(10)),
            &shutdown,
        );
        let listener = TcpListener::bind((settings.http.host.as_str(), settings.http.port)).await?;
        let internal =
            TcpListener::bind((settings.internal.host.as_str(), settings.internal.port)).await?;
        let mut public_router = router(public, proxy, public_document()?);
        if settings.hsts_max_age_secs > 0 {
            let hsts = HeaderValue::try_from(format!(
                "max-age={}; includeSubDomains",
                settings.hsts_max_age_secs
            ))?;
            public_router = public_router.layer(axum::middleware::map_response(
                move |mut res: axum::response::Response| {
                    let hsts = hsts.clone();
                    async move {
                        res.headers_mut()
                            .insert(axum::http::header::STRICT_TRANSPORT_SECURITY, hsts);
                        res
                    }
                },
            ));
        }
        Ok(Self {
            router: public_router,
            internal: Port {
                listener: internal,
                router: internal_router(fleet),
                intake: internal_intake,
            },
            intake,
            listener,
            metrics,
            shutdown,
            settings,
        })
    }

    fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    async fn run(self) -> anyhow::Result<()> {
        let health = Health::new(None);
        let public = Port {
            listener: self.listener,
            router: self.router,
            intake: self.intake,
        };
        // A gateway whose every place is taken says so on /readyz: the load balancer
        // sends to the others until a place frees.
        platform::serve::serve_edge(
            public,
            Some(self.internal),
            true,
            &self.settings.http,
            self.metrics,
            health,
            self.shutdown,
        )
        .await?;
        tracing::info!("stopped");
        Ok(())
    }
}

#[cfg(test)]
mod help {
    /// `gateway --help` lists every setting, each a variable that works.
    #[test]
    fn every_setting_help_lists_is_a_variable_that_works() {
        platform::service::check_help::<super::Application>().unwrap();
    }
}

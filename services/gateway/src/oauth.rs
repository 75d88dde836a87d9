//! `POST /oauth/token` (OAuth2 password grant for users, client-credentials for services)
//! and `GET /.well-known/jwks.json`.
//!
//! Users get tokens on the public port; the fleet's own clients only on the internal port,
//! which no Ingress routes and only the fleet's pods reach (`k8s/base/network-policies.yaml`).
//! Each port has its own rate limits and password-check slots, so a flood on the public
//! port cannot starve the fleet's token refreshes.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use platform::auth::TokenIssuer;
use platform::server::Admission;
use platform::ApiError;
use serde::Deserialize;
use serde_json::json;

use crate::client::{self, ForwardedSettings};
use crate::limit::Limiter;
use crate::passwords::Checker;

/// Which grant a token endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// The public port: users, with the password grant.
    Password,
    /// The internal port: the fleet's services, with client credentials.
    ClientCredentials,
}

impl Grant {
    fn refused(self) -> ApiError {
        match self {
            Grant::Password => oauth_error(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                "client credentials are issued only on the gateway's internal port, to the fleet",
            ),
            Grant::ClientCredentials => oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "this port issues client-credentials tokens only",
            ),
        }
    }
}

/// What the token endpoint needs.
#[derive(Clone)]
pub struct Issuance {
    /// The grant it serves; the other is refused.
    pub grant: Grant,
    /// Signs tokens.
    pub issuer: TokenIssuer,
    /// Token lifetime.
    pub ttl_secs: i64,
    /// Users (password grant).
    pub users: Checker,
    /// Clients (client-credentials grant).
    pub clients: Checker,
    /// The JWKS document.
    pub jwks: Arc<serde_json::Value>,
    /// Failed token requests per name and address, and per name (password guessing).
    pub failures: Failures,
    /// Token requests per client address (made-up names, argon2 CPU), checked before the
    /// body is read ([`admission`]).
    pub address_limiter: Limiter,
    /// Where the client address comes from.
    pub forwarded: ForwardedSettings,
}

/// Longest user name or client id accepted (a name is a rate-limit key: it is held).
const MAX_NAME_BYTES: usize = 128;
/// Longest password or secret accepted (argon2 takes any length; nothing needs more).
const MAX_SECRET_BYTES: usize = 1024;

#[derive(Debug, Default, Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    username: Option<String>,
    password: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

fn oauth_error(status: StatusCode, code: &'static str, message: &str) -> ApiError {
    ApiError::new(status, code, message)
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// `POST /oauth/token`, form-encoded (as OAuth2 says) or JSON.
pub async fn token(
    State(state): State<Issuance>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // The address's rate was checked on the head, before the body was read (`admission`).
    let from = client::address(Some(peer), &headers, state.forwarded);
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let mut req: TokenRequest = if is_json {
        serde_json::from_slice(&body)
            .map_err(|e| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string()))?
    } else {
        serde_urlencoded::from_bytes(&body)
            .map_err(|e| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string()))?
    };
    if let Some((id, secret)) = basic_credentials(&headers) {
        req.client_id.get_or_insert(id);
        req.client_secret.get_or_insert(secret);
    }
    let (sub, roles) = match req.grant_type.as_deref() {
        Some("password") if state.grant != Grant::Password => return Err(state.grant.refused()),
        Some("client_credentials") if state.grant != Grant::ClientCredentials => {
            return Err(state.grant.refused())
        }
        Some("password") => {
            let (Some(user), Some(password)) = (req.username, req.password) else {
                return Err(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "username and password are required",
                ));
            };
            let wrong = oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "wrong user name or password",
            );
            let roles = vouch(
                &state,
                from,
                ("user", &state.users),
                &user,
                &password,
                wrong,
            )
            .await?;
            (user, roles)
        }
        Some("client_credentials") => {
            let (Some(id), Some(secret)) = (req.client_id, req.client_secret) else {
                return Err(oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "client_id and client_secret are required",
                ));
            };
            let wrong = oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "unknown client or wrong secret",
            );
            let roles = vouch(
                &state,
                from,
                ("client", &state.clients),
                &id,
                &secret,
                wrong,
            )
            .await?;
            (id, roles)
        }
        Some(_) => {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be password or client_credentials",
            ))
        }
        None => {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required",
            ))
        }
    };
    let token = state.issuer.issue(&sub, &roles, state.ttl_secs)?;
    let scope: Vec<String> = roles
        .iter()
        .map(|r| {
            serde_json::to_value(r)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        })
        .collect();
    let body = json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": state.ttl_secs,
        "scope": scope.join(" "),
    });
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// Failed sign-ins, counted so that nobody's guesses lock anyone else out: per (name,
/// source address) — one source guessing one name is slowed, and an owner signing in
/// from elsewhere never pays for it — and, for a source that has failed on a name lately,
/// per name as well, so that a guesser spreading over many addresses is slowed after each
/// address's first failures. Only a wrong password counts: a success, or a refusal for
/// load (`429`/`503`), gives its try back.
#[derive(Clone)]
pub struct Failures {
    per_pair: Limiter,
    per_name: Limiter,
}

impl Failures {
    /// Failures per (name, address) at `pair`'s rate; per name, for sources that have
    /// failed on it, at `name`'s.
    pub fn new(pair: crate::limit::Rate, name: crate::limit::Rate) -> Self {
        Self {
            per_pair: Limiter::new(pair),
            per_name: Limiter::new(name),
        }
    }

    /// Runs `check` for `name` from `from` if neither count refuses it (`429`), and
    /// counts it when it finds a wrong secret (`Ok(None)`).
    pub async fn attempt<T>(
        &self,
        name: &str,
        from: IpAddr,
        check: impl std::future::Future<Output = Result<Option<T>, ApiError>>,
    ) -> Result<Option<T>, ApiError> {
        let pair = format!("{name}@{}", platform::fair::source_of(from));
        let failed_here_lately = !self.per_pair.is_full(&pair);
        self.per_pair.admit(&pair)?;
        if failed_here_lately {
            if let Err(limited) = self.per_name.admit(name) {
                self.per_pair.refund(&pair);
                return Err(limited);
            }
        }
        let outcome = check.await;
        if !matches!(outcome, Ok(None)) {
            self.per_pair.refund(&pair);
            if failed_here_lately {
                self.per_name.refund(name);
            }
        }
        outcome
    }
}

/// The token endpoint's rate per client address, as the server's first check of a request
/// (its head alone): an address over its rate is refused before its body is read or a
/// place is taken for it.
pub fn admission(issuance: &Issuance) -> Admission {
    let limiter = issuance.address_limiter.clone();
    Arc::new(move |parts: &Parts, from: IpAddr| {
        if parts.uri.path() == TOKEN_PATH {
            limiter.admit(&platform::fair::source_of(from).to_string())
        } else {
            Ok(())
        }
    })
}

/// Where tokens are issued.
pub const TOKEN_PATH: &str = "/oauth/token";

/// The roles of `name` (a user or a client: `list`, with the kind it counts failures
/// under) when `secret` is its own, within the failure counts; `wrong` when it is not.
async fn vouch(
    state: &Issuance,
    from: IpAddr,
    (kind, list): (&str, &Checker),
    name: &str,
    secret: &str,
    wrong: ApiError,
) -> Result<Vec<platform::auth::Role>, ApiError> {
    bounded(name, secret)?;
    let key = format!("{kind}:{name}");
    let roles = state
        .failures
        .attempt(&key, from, list.check(from, name, secret))
        .await?;
    roles.ok_or(wrong)
}

/// `400` for a name or secret longer than any real one.
fn bounded(name: &str, secret: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES || secret.len() > MAX_SECRET_BYTES {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!(
                "a name is 1 to {MAX_NAME_BYTES} bytes, a password or secret at most {MAX_SECRET_BYTES}"
            ),
        ));
    }
    Ok(())
}

/// `GET /.well-known/jwks.json`.
pub async fn jwks(State(state): State<Issuance>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json((*state.jwks).clone()),
    )
}

/// The JWKS of the fleet's Ed25519 public keys (SPKI PEM): the current one and, during a
/// rotation, the other (`auth.other_public_key_pem`), one OKP key each.
pub fn jwks_of(auth: &platform::settings::AuthSettings) -> anyhow::Result<serde_json::Value> {
    let mut keys = vec![okp(&auth.public_key_pem, &auth.key_id)?];
    if let (Some(pem), Some(kid)) = (&auth.other_public_key_pem, &auth.other_key_id) {
        keys.push(okp(pem, kid)?);
    }
    Ok(json!({ "keys": keys }))
}

fn okp(public_pem: &str, kid: &str) -> anyhow::Result<serde_json::Value> {
    let b64: String = public_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64.trim())?;
    // SPKI for Ed25519 is a fixed 12-byte prefix and the 32-byte key.
    anyhow::ensure!(der.len() == 44, "not an Ed25519 public key");
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der[12..]);
    Ok(json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid, "x": x}))
}

#[cfg(test)]
mod jwks_tests {
    use super::*;

    /// During a rotation the key set publishes both keys, each under its own id.
    #[test]
    fn the_key_set_publishes_the_other_key_of_a_rotation() {
        let mut auth = platform::settings::AuthSettings::default();
        let one = jwks_of(&auth).unwrap();
        assert_eq!(one["keys"].as_array().unwrap().len(), 1);
        auth.other_public_key_pem = Some(auth.public_key_pem.clone());
        auth.other_key_id = Some("k2".into());
        let two = jwks_of(&auth).unwrap();
        let kids: Vec<&str> = two["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids, ["housebook-dev", "k2"]);
    }
}

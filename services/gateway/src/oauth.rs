//! `POST /oauth/token` (OAuth2 password grant for users, client-credentials for services)
//! and `GET /.well-known/jwks.json`.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use platform::auth::{Role, TokenIssuer};
use platform::ApiError;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;

use crate::settings::Principal;

/// What the token endpoint needs.
#[derive(Clone)]
pub struct Issuance {
    /// Signs tokens.
    pub issuer: TokenIssuer,
    /// Token lifetime.
    pub ttl_secs: i64,
    /// Users (password grant).
    pub users: Arc<Vec<Principal>>,
    /// Clients (client-credentials grant).
    pub clients: Arc<Vec<Principal>>,
    /// The JWKS document.
    pub jwks: Arc<serde_json::Value>,
    /// Token requests per user or client name (password guessing, argon2 CPU).
    pub limiter: crate::limit::Limiter,
}

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

/// A hash no password matches, verified for unknown names so that their answer takes as
/// long as a wrong password's (no user enumeration by timing).
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3xJmHo0e2wH5P0xk7zZmYVZ2mJ+3Gf2h3uQG4tGmM0A";

/// Checks a name and secret against a list, off the async threads (argon2 is slow on purpose).
async fn authenticate(
    list: Arc<Vec<Principal>>,
    name: String,
    secret: String,
) -> Option<Vec<Role>> {
    tokio::task::spawn_blocking(move || {
        let found = list.iter().find(|p| p.name == name);
        let hash = found
            .map(|p| p.secret_hash.expose_secret().to_owned())
            .unwrap_or_else(|| DUMMY_HASH.to_owned());
        let ok = PasswordHash::new(&hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(secret.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        found.filter(|_| ok).map(|p| p.roles.clone())
    })
    .await
    .ok()
    .flatten()
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
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
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
        Some("password") => {
            let (Some(user), Some(password)) = (req.username, req.password) else {
                return Err(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "username and password are required",
                ));
            };
            state.limiter.admit(&format!("user:{user}"))?;
            let roles = authenticate(state.users.clone(), user.clone(), password)
                .await
                .ok_or_else(|| {
                    oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "wrong user name or password",
                    )
                })?;
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
            state.limiter.admit(&format!("client:{id}"))?;
            let roles = authenticate(state.clients.clone(), id.clone(), secret)
                .await
                .ok_or_else(|| {
                    oauth_error(
                        StatusCode::UNAUTHORIZED,
                        "invalid_client",
                        "unknown client or wrong secret",
                    )
                })?;
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

/// `GET /.well-known/jwks.json`.
pub async fn jwks(State(state): State<Issuance>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json((*state.jwks).clone()),
    )
}

/// The JWKS of an Ed25519 public key in SPKI PEM: one OKP key.
pub fn jwks_of(public_pem: &str, kid: &str) -> anyhow::Result<serde_json::Value> {
    let b64: String = public_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64.trim())?;
    // SPKI for Ed25519 is a fixed 12-byte prefix and the 32-byte key.
    anyhow::ensure!(der.len() == 44, "not an Ed25519 public key");
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der[12..]);
    Ok(
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid, "x": x}]}),
    )
}

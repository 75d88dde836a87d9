//! Token checking (SPEC §7): every service verifies the gateway's signed JWTs itself.
//!
//! Tokens are EdDSA (Ed25519) JWTs. Verification pins the algorithm (so `alg=none` and
//! HMAC-with-the-public-key confusion are refused), and requires `exp`, the issuer and the
//! audience. [`Caller`] is the one extractor handlers use; [`TokenIssuer`] signs tokens
//! (the gateway, and tests with a test key).

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::settings::AuthSettings;

/// A role a token can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// Registers houses; sees everything.
    Admin,
    /// Books, cancels and sees their own bookings.
    Customer,
    /// Another service of the fleet (client-credentials grant).
    Service,
}

/// The claims of a housebook token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The caller's id (user name or client id).
    pub sub: String,
    /// Its roles.
    pub roles: Vec<Role>,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
}

/// The verified caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's subject.
    pub id: String,
    /// The token's roles.
    pub roles: Vec<Role>,
}

impl Caller {
    /// Whether the caller holds a role.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// `403` unless the caller holds one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.iter().any(|r| self.has(*r)) {
            Ok(())
        } else {
            Err(ApiError::forbidden("this needs another role"))
        }
    }

    /// Whether the caller sees every resource (an admin or another service).
    pub fn sees_all(&self) -> bool {
        self.has(Role::Admin) || self.has(Role::Service)
    }
}

/// Checks tokens against the issuer's public key.
#[derive(Clone)]
pub struct TokenVerifier {
    key: Arc<DecodingKey>,
    validation: Arc<Validation>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier").finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// A verifier for the configured key, issuer and audience.
    pub fn new(settings: &AuthSettings) -> anyhow::Result<Self> {
        let key = DecodingKey::from_ed_pem(settings.public_key_pem.as_bytes())?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        validation.required_spec_claims = ["exp", "iss", "aud", "sub", "nbf"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<HashSet<_>>();
        Ok(Self {
            key: Arc::new(key),
            validation: Arc::new(validation),
        })
    }

    /// Verifies a bearer token.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| ApiError::unauthorized(format!("invalid token: {}", describe(&e))))
    }
}

fn describe(e: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => "expired",
        K::ImmatureSignature => "not yet valid",
        K::InvalidSignature => "bad signature",
        K::InvalidAlgorithm | K::InvalidAlgorithmName => "algorithm not accepted",
        K::InvalidIssuer => "wrong issuer",
        K::InvalidAudience => "wrong audience",
        K::MissingRequiredClaim(_) => "missing claim",
        _ => "malformed",
    }
}

impl<S> FromRequestParts<S> for Caller
where
    TokenVerifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = TokenVerifier::from_ref(state);
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthorized("expected Authorization: Bearer <token>"))?;
        let claims = verifier.verify(token)?;
        if claims.sub.is_empty() || claims.roles.is_empty() {
            return Err(ApiError::unauthorized("invalid token: no subject or roles"));
        }
        Ok(Caller {
            id: claims.sub,
            roles: claims.roles,
        })
    }
}

/// Signs tokens with an Ed25519 private key.
#[derive(Clone)]
pub struct TokenIssuer {
    key: Arc<EncodingKey>,
    key_id: Option<String>,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// An issuer over a PKCS#8 PEM private key.
    pub fn from_pem(pem: &str, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        Ok(Self {
            key: Arc::new(EncodingKey::from_ed_pem(pem.as_bytes())?),
            key_id: None,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
    }

    /// Names the key in every token's `kid` header (as published in the JWKS).
    pub fn with_key_id(mut self, kid: &str) -> Self {
        self.key_id = Some(kid.to_owned());
        self
    }

    /// Claims for `sub` with `roles`, valid from now for `ttl_secs`.
    pub fn claims(&self, sub: &str, roles: &[Role], ttl_secs: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: sub.to_owned(),
            roles: roles.to_vec(),
            exp: now + ttl_secs,
            iat: now,
            nbf: now,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        }
    }

    /// Signs any claims (tests use this to forge bad ones).
    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            claims,
            &self.key,
        )?)
    }

    /// A token for `sub` with `roles`, valid for `ttl_secs`.
    pub fn issue(&self, sub: &str, roles: &[Role], ttl_secs: i64) -> anyhow::Result<String> {
        self.sign(&self.claims(sub, roles, ttl_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::DEV_SIGNING_KEY_PEM;

    fn pair() -> (TokenIssuer, TokenVerifier) {
        let s = AuthSettings::default();
        (
            TokenIssuer::from_pem(DEV_SIGNING_KEY_PEM, &s.issuer, &s.audience).unwrap(),
            TokenVerifier::new(&s).unwrap(),
        )
    }

    #[test]
    fn a_good_token_verifies() {
        let (i, v) = pair();
        let claims = v
            .verify(&i.issue("alice", &[Role::Customer], 60).unwrap())
            .unwrap();
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.roles, vec![Role::Customer]);
    }

    #[test]
    fn expired_future_wrong_issuer_and_audience_are_refused() {
        let (i, v) = pair();
        let mut c = i.claims("alice", &[Role::Customer], 60);
        c.exp -= 3600;
        assert!(v.verify(&i.sign(&c).unwrap()).is_err());
        let mut c = i.claims("alice", &[Role::Customer], 3600);
        c.nbf += 600;
        assert!(v.verify(&i.sign(&c).unwrap()).is_err());
        let mut c = i.claims("alice", &[Role::Customer], 60);
        c.iss = "someone-else".into();
        assert!(v.verify(&i.sign(&c).unwrap()).is_err());
        let mut c = i.claims("alice", &[Role::Customer], 60);
        c.aud = "other".into();
        assert!(v.verify(&i.sign(&c).unwrap()).is_err());
    }

    #[test]
    fn another_key_tampering_and_alg_none_are_refused() {
        let (i, v) = pair();
        // Another Ed25519 key.
        let rng = ring::rand::SystemRandom::new();
        let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let other = TokenIssuer {
            key: Arc::new(EncodingKey::from_ed_der(doc.as_ref())),
            key_id: None,
            issuer: "housebook-gateway".into(),
            audience: "housebook".into(),
        };
        assert!(v
            .verify(&other.issue("alice", &[Role::Admin], 60).unwrap())
            .is_err());

        // Tampered roles: swap the payload, keep the signature.
        let good = i.issue("alice", &[Role::Customer], 60).unwrap();
        let parts: Vec<&str> = good.split('.').collect();
        let forged_claims = i.claims("alice", &[Role::Admin], 60);
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let forged_payload = b64.encode(serde_json::to_vec(&forged_claims).unwrap());
        assert!(v
            .verify(&format!("{}.{}.{}", parts[0], forged_payload, parts[2]))
            .is_err());

        // alg=none and HS256 signed with the public key (algorithm confusion).
        let none_header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(v
            .verify(&format!("{none_header}.{forged_payload}."))
            .is_err());
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &forged_claims,
            &EncodingKey::from_secret(crate::settings::DEV_VERIFYING_KEY_PEM.as_bytes()),
        )
        .unwrap();
        assert!(v.verify(&hs).is_err());
    }
}

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
use crate::settings::{AuthSettings, DEV_VERIFYING_KEY_PEM};

/// A role a token can carry.
#[derive(schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// When the token expires (Unix seconds): what it allows ends then.
    pub expires_at: i64,
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

    /// Whether the caller sees every resource: an admin. A service identity does not: it
    /// is given only the operations it needs (e.g. book's calls to payment), never
    /// everyone's bookings.
    pub fn sees_all(&self) -> bool {
        self.has(Role::Admin)
    }

    /// The caller as the domains see who asks.
    pub fn actor(&self) -> Actor {
        Actor {
            id: self.id.clone(),
            sees_all: self.sees_all(),
        }
    }
}

/// Who asks, as a domain sees it (no roles, no token): an id, and whether everyone's
/// resources are theirs to see (an admin). Each context's service decides with it what a
/// reader may see; the adapters only make it from the [`Caller`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The caller's id.
    pub id: String,
    /// Whether the caller may see and act on everyone's (an admin).
    pub sees_all: bool,
}

impl Actor {
    /// Whether a resource of `owner` is the actor's to see.
    pub fn may_see(&self, owner: &str) -> bool {
        self.sees_all || self.id == owner
    }

    /// The owner a listing is limited to: the actor's own id, or none for an admin.
    pub fn only_own(&self) -> Option<&str> {
        (!self.sees_all).then_some(self.id.as_str())
    }
}

/// Checks tokens against the issuer's public key (and, during a rotation, the other one).
#[derive(Clone)]
pub struct TokenVerifier {
    key: Arc<DecodingKey>,
    key_id: Arc<str>,
    /// The other key of a rotation, by its id.
    other: Option<(Arc<str>, Arc<DecodingKey>)>,
    validation: Arc<Validation>,
    max_lifetime_secs: i64,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier").finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// A verifier for the configured key, issuer and audience.
    pub fn new(settings: &AuthSettings) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !(settings.forbid_dev_credentials
                && same_pem(&settings.public_key_pem, DEV_VERIFYING_KEY_PEM)),
            "auth.public_key_pem is the local development key, whose private half is \
             published; set the deployment's own key (auth.forbid_dev_credentials is on)"
        );
        let key = DecodingKey::from_ed_pem(settings.public_key_pem.as_bytes())?;
        let other = match (&settings.other_public_key_pem, &settings.other_key_id) {
            (None, None) => None,
            (Some(pem), Some(kid)) => {
                anyhow::ensure!(
                    kid != &settings.key_id,
                    "auth.other_key_id must differ from auth.key_id"
                );
                anyhow::ensure!(
                    !(settings.forbid_dev_credentials && same_pem(pem, DEV_VERIFYING_KEY_PEM)),
                    "auth.other_public_key_pem is the local development key (auth.forbid_dev_credentials is on)"
                );
                Some((
                    Arc::from(kid.as_str()),
                    Arc::new(DecodingKey::from_ed_pem(pem.as_bytes())?),
                ))
            }
            _ => anyhow::bail!("auth.other_public_key_pem and auth.other_key_id go together"),
        };
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
            key_id: Arc::from(settings.key_id.as_str()),
            other,
            validation: Arc::new(validation),
            max_lifetime_secs: settings.max_token_lifetime_secs,
        })
    }

    /// Verifies a bearer token. A `kid` header, when present, must name one of the configured
    /// keys (compared with the configured ids, never used to fetch anything); without one,
    /// the current key decides.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(ApiError::unauthorized("invalid token: too long"));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| ApiError::unauthorized(format!("invalid token: {}", describe(&e))))?;
        let key = match header.kid.as_deref() {
            None => &self.key,
            Some(kid) if kid == &*self.key_id => &self.key,
            Some(kid) => match &self.other {
                Some((id, key)) if kid == &**id => key,
                _ => return Err(ApiError::unauthorized("invalid token: unknown key")),
            },
        };
        let claims = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| ApiError::unauthorized(format!("invalid token: {}", describe(&e))))?;
        let now = chrono::Utc::now().timestamp();
        if claims.iat > now + CLOCK_LEEWAY_SECS {
            return Err(ApiError::unauthorized(
                "invalid token: issued in the future",
            ));
        }
        if claims.exp.saturating_sub(claims.iat) > self.max_lifetime_secs {
            return Err(ApiError::unauthorized(
                "invalid token: lifetime over the issuer's maximum",
            ));
        }
        Ok(claims)
    }
}

/// Whether two PEM texts hold the same bytes, however their lines are wrapped.
pub fn same_pem(a: &str, b: &str) -> bool {
    let bare = |s: &str| s.split_whitespace().collect::<String>();
    bare(a) == bare(b)
}

/// How far a token's `iat` may be ahead of this clock (clocks of two pods differ a little).
const CLOCK_LEEWAY_SECS: i64 = 60;

/// Longer tokens are refused before any decoding (ours are about 400 bytes).
const MAX_TOKEN_BYTES: usize = 4096;

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
        let value = parts.headers.get(AUTHORIZATION).map(|h| h.to_str());
        TokenVerifier::from_ref(state).caller(value.map(|v| v.unwrap_or("")))
    }
}

impl TokenVerifier {
    /// The caller an `Authorization` value (an HTTP header, gRPC metadata) names: `None`
    /// when there was none; anything but `Bearer <valid token>` is `401`.
    pub fn caller(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        let value = authorization.ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthorized("expected Authorization: Bearer <token>"))?;
        let claims = self.verify(token)?;
        if claims.sub.is_empty() || claims.roles.is_empty() {
            return Err(ApiError::unauthorized("invalid token: no subject or roles"));
        }
        Ok(Caller {
            id: claims.sub,
            roles: claims.roles,
            expires_at: claims.exp,
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
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid.clone_from(&self.key_id);
        Ok(jsonwebtoken::encode(&header, claims, &self.key)?)
    }

    /// A token for `sub` with `roles`, valid for `ttl_secs`.
    pub fn issue(&self, sub: &str, roles: &[Role], ttl_secs: i64) -> anyhow::Result<String> {
        self.sign(&self.claims(sub, roles, ttl_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_actor_sees_their_own_and_an_admin_everyones() {
        let alice = Actor {
            id: "alice".into(),
            sees_all: false,
        };
        let admin = Actor {
            id: "admin".into(),
            sees_all: true,
        };
        assert!(alice.may_see("alice") && !alice.may_see("bob"));
        assert!(admin.may_see("bob"));
        assert_eq!((alice.only_own(), admin.only_own()), (Some("alice"), None));
    }
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

    /// A fresh Ed25519 key pair as (PKCS#8 private PEM, SPKI public PEM).
    fn fresh_pair() -> (String, String) {
        use base64::Engine as _;
        use ring::signature::KeyPair as _;
        let rng = ring::rand::SystemRandom::new();
        let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let mut spki = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        spki.extend_from_slice(pair.public_key().as_ref());
        (
            format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                b64(doc.as_ref())
            ),
            format!(
                "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
                b64(&spki)
            ),
        )
    }

    /// Issue 18: one verifying key only, so a rotation had no overlap. The documented
    /// rotation (docs/deploy.md): add the next key as the other one, switch the gateway to it (the
    /// old one becomes the other), drop the old one once its last token has expired.
    #[test]
    fn a_key_rotation_keeps_every_valid_token_valid() {
        let s = AuthSettings::default();
        let old = TokenIssuer::from_pem(DEV_SIGNING_KEY_PEM, &s.issuer, &s.audience)
            .unwrap()
            .with_key_id("housebook-dev");
        let (next_private, next_public) = fresh_pair();
        let next = TokenIssuer::from_pem(&next_private, &s.issuer, &s.audience)
            .unwrap()
            .with_key_id("k2");
        let by_old = old.issue("alice", &[Role::Customer], 60).unwrap();
        let by_next = next.issue("alice", &[Role::Customer], 60).unwrap();
        let verify =
            |settings: &AuthSettings, t: &str| TokenVerifier::new(settings).unwrap().verify(t);

        // 1. The next key is added beside the current one: both verify.
        let added = AuthSettings {
            other_public_key_pem: Some(next_public.clone()),
            other_key_id: Some("k2".into()),
            ..s.clone()
        };
        assert!(verify(&added, &by_old).is_ok());
        assert!(verify(&added, &by_next).is_ok());
        // 2. The gateway signs with the next key; the old one is the other: both verify.
        let switched = AuthSettings {
            public_key_pem: next_public.clone(),
            key_id: "k2".into(),
            other_public_key_pem: Some(s.public_key_pem.clone()),
            other_key_id: Some("housebook-dev".into()),
            ..s.clone()
        };
        assert!(verify(&switched, &by_old).is_ok());
        assert!(verify(&switched, &by_next).is_ok());
        // 3. The old key dropped: its tokens are refused, the new ones verify.
        let done = AuthSettings {
            public_key_pem: next_public,
            key_id: "k2".into(),
            ..s.clone()
        };
        assert_eq!(
            verify(&done, &by_old).unwrap_err().message,
            "invalid token: unknown key"
        );
        assert!(verify(&done, &by_next).is_ok());
        // A kid names a key, it does not vouch for one: the old key's id on a token the
        // next key signed is a bad signature.
        let lying = TokenIssuer::from_pem(&next_private, &s.issuer, &s.audience)
            .unwrap()
            .with_key_id("housebook-dev")
            .issue("alice", &[Role::Customer], 60)
            .unwrap();
        assert_eq!(
            verify(&switched, &lying).unwrap_err().message,
            "invalid token: bad signature"
        );
        // Half a rotation, or the same id twice, is refused at start.
        let half = AuthSettings {
            other_key_id: Some("k2".into()),
            ..s.clone()
        };
        assert!(TokenVerifier::new(&half).is_err());
        let same_id = AuthSettings {
            other_key_id: Some("housebook-dev".into()),
            ..added
        };
        assert!(TokenVerifier::new(&same_id).is_err());
    }

    /// Issue 18: a ten-year token and one issued 31 years ahead were accepted.
    #[test]
    fn lifetimes_over_the_maximum_and_future_issue_times_are_refused() {
        let (i, v) = pair();
        let max = AuthSettings::default().max_token_lifetime_secs;
        assert!(v
            .verify(&i.issue("alice", &[Role::Customer], max).unwrap())
            .is_ok());
        let e = v
            .verify(&i.issue("alice", &[Role::Customer], max + 1).unwrap())
            .unwrap_err();
        assert_eq!(
            e.message,
            "invalid token: lifetime over the issuer's maximum"
        );
        let ten_years = i
            .issue("alice", &[Role::Customer], 10 * 365 * 86_400)
            .unwrap();
        assert!(v.verify(&ten_years).is_err());
        let mut c = i.claims("alice", &[Role::Customer], 60);
        let ahead = 31 * 365 * 86_400;
        (c.iat, c.exp) = (c.iat + ahead, c.exp + ahead);
        let e = v.verify(&i.sign(&c).unwrap()).unwrap_err();
        assert_eq!(e.message, "invalid token: issued in the future");
        // A pod's clock a little behind the issuer's is not a future issue time.
        let mut c = i.claims("alice", &[Role::Customer], 60);
        c.iat += 30;
        assert!(v.verify(&i.sign(&c).unwrap()).is_ok());
    }

    #[test]
    fn the_key_id_is_signed_in_and_another_is_refused() {
        let (i, v) = pair();
        let i = i.with_key_id("housebook-dev");
        let token = i.issue("alice", &[Role::Customer], 60).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some("housebook-dev"));
        assert!(v.verify(&token).is_ok());
        // The same key under another id, and an id made to look like a path or a query:
        // compared, never looked up, so refused.
        for kid in ["rotated-2027", "../../etc/passwd", "' OR 1=1 --", ""] {
            let t = i
                .clone()
                .with_key_id(kid)
                .issue("alice", &[Role::Customer], 60)
                .unwrap();
            let e = v.verify(&t).unwrap_err();
            assert_eq!(e.message, "invalid token: unknown key", "kid {kid:?}");
        }
        // No kid at all: the signature decides (tokens issued before ids were added).
        let plain =
            TokenIssuer::from_pem(DEV_SIGNING_KEY_PEM, "housebook-gateway", "housebook").unwrap();
        assert!(v
            .verify(&plain.issue("alice", &[Role::Customer], 60).unwrap())
            .is_ok());
        // A huge token is refused before decoding.
        assert_eq!(
            v.verify(&"a".repeat(MAX_TOKEN_BYTES + 1))
                .unwrap_err()
                .message,
            "invalid token: too long"
        );
    }

    #[test]
    fn the_development_key_is_refused_where_forbidden() {
        let mut s = AuthSettings::default();
        assert!(TokenVerifier::new(&s).is_ok());
        s.forbid_dev_credentials = true;
        let e = TokenVerifier::new(&s).err().unwrap().to_string();
        assert!(e.contains("development key"), "{e}");
        // Re-wrapped, it is still the same key.
        s.public_key_pem = DEV_VERIFYING_KEY_PEM.replace('\n', "\n\n  ");
        assert!(TokenVerifier::new(&s).is_err());
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

//! The token a service presents to the services it calls: the gateway's
//! client-credentials grant, cached until shortly before it expires (or a fixed token, in
//! tests).

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;

/// Fetches and caches a service's token.
pub struct ServiceToken {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    client_secret: SecretString,
    fixed: Option<SecretString>,
    cached: Mutex<Option<(String, Instant)>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

impl ServiceToken {
    /// A token source for `client_id` at the gateway's `token_url`; `fixed` short-cuts it.
    pub fn new(
        http: reqwest::Client,
        token_url: String,
        client_id: String,
        client_secret: SecretString,
        fixed: Option<SecretString>,
    ) -> Self {
        Self {
            http,
            token_url,
            client_id,
            client_secret,
            fixed,
            cached: Mutex::new(None),
        }
    }

    /// A valid token; the error says why none could be had (the gateway is unreachable or
    /// refused).
    pub async fn get(&self) -> Result<String, String> {
        if let Some(t) = &self.fixed {
            return Ok(t.expose_secret().to_owned());
        }
        let mut cached = self.cached.lock().await;
        if let Some((t, until)) = cached.as_ref() {
            if Instant::now() < *until {
                return Ok(t.clone());
            }
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose_secret()),
        ];
        let res = self
            .http
            .post(&self.token_url)
            .form(&form)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map_err(|e| format!("token endpoint: {e}"))?;
        if !res.status().is_success() {
            return Err(format!("token endpoint answered {}", res.status()));
        }
        let t: TokenResponse = res
            .json()
            .await
            .map_err(|e| format!("token endpoint: {e}"))?;
        let until = Instant::now() + Duration::from_secs(t.expires_in.saturating_sub(60).max(1));
        *cached = Some((t.access_token.clone(), until));
        Ok(t.access_token)
    }
}

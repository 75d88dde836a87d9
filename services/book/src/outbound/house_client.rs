//! The house context over HTTP, asked only when book's copy of the listings (built from
//! `HouseRegistered`) does not know a house yet — a booking made right after the house was
//! registered. One call with a timeout to a ready replica; no retry and no breaker: the
//! caller answers `503` + `Retry-After` at once if house cannot answer.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use platform::shutdown::CancellationToken;
use platform::upstream::Pool;
use serde::Deserialize;

use crate::domain::models::Listing;
use crate::domain::ports::{HouseLookupError, Houses};
use platform::calls::token::ServiceToken;

/// How `book` reaches `house`.
#[derive(schemars::JsonSchema, Debug, Clone, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct HouseClientSettings {
    /// Base URL of the house service, or a comma-separated list of its replicas.
    pub url: String,
    /// How often replicas' `/readyz` is polled, in milliseconds (lists of two or more).
    pub health_interval_ms: u64,
    /// Timeout of one call, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for HouseClientSettings {
    fn default() -> Self {
        Self {
            url: fleet::local_url(&fleet::HOUSE),
            health_interval_ms: 250,
            timeout_ms: 1000,
        }
    }
}

/// The house context over HTTP.
pub struct HttpHouses {
    http: reqwest::Client,
    pool: Pool,
    settings: HouseClientSettings,
    token: Arc<ServiceToken>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HouseBody {
    id: i64,
    house_name: String,
    house_price: i64,
}

impl HttpHouses {
    /// A client with its own connection pool, presenting `token`.
    pub fn new(settings: HouseClientSettings, token: Arc<ServiceToken>) -> anyhow::Result<Self> {
        Ok(Self {
            http: platform::calls::client(Duration::from_millis(settings.timeout_ms))?,
            pool: Pool::parse("house", &settings.url)?,
            settings,
            token,
        })
    }

    /// Starts polling the replicas' readiness until `stop`.
    pub fn watch(&self, stop: CancellationToken) {
        self.pool.watch(
            Duration::from_millis(self.settings.health_interval_ms.max(10)),
            stop,
        );
    }
}

fn unavailable(reason: impl Into<String>) -> HouseLookupError {
    HouseLookupError::Unavailable {
        reason: reason.into(),
        retry_after: Duration::from_secs(1),
    }
}

#[async_trait]
impl Houses for HttpHouses {
    async fn listing(&self, house_id: i64) -> Result<Option<Listing>, HouseLookupError> {
        let token = self.token.get().await.map_err(unavailable)?;
        let timeout = Duration::from_millis(self.settings.timeout_ms);
        let res = self
            .pool
            .send(|base| {
                self.http
                    .get(format!("{base}/houses/{house_id}"))
                    .bearer_auth(&token)
                    .timeout(timeout)
            })
            .await
            .map_err(|e| unavailable(format!("house: {e}")))?;
        match res.status() {
            reqwest::StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                let h: HouseBody = res
                    .json()
                    .await
                    .map_err(|e| unavailable(format!("house answered: {e}")))?;
                Ok(Some(Listing {
                    house_id: h.id,
                    name: h.house_name,
                    price: h.house_price,
                }))
            }
            s => Err(unavailable(format!("house answered {s}"))),
        }
    }
}

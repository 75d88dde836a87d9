//! Fault knobs (SPEC §8): an artificial delay range and a failure rate on taking and
//! refunding payments, for the seed's circuit-breaker demo and for fault tests. Switched
//! off unless a deployment enables them (`HOUSEBOOK_FAULTS__ENABLED=true`: `./dev`, the
//! test fleets and the local cluster overlay; never a real cluster): then `/faults` does
//! not exist. Enabled, they are set at start-up (`HOUSEBOOK_FAULTS__DELAY_MIN_MS=400`,
//! `…__DELAY_MAX_MS=620`, `…__FAILURE_RATE=0.2`) or at run time by an admin with
//! `PUT /faults`.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use platform::ApiError;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The knobs.
#[derive(schemars::JsonSchema, Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct FaultSettings {
    /// Whether the knobs and `/faults` exist at all (start-up only; never shown).
    #[serde(skip_serializing)]
    pub enabled: bool,
    /// Shortest artificial delay, in milliseconds.
    pub delay_min_ms: u64,
    /// Longest artificial delay, in milliseconds (0 = no delay).
    pub delay_max_ms: u64,
    /// Share of payment and refund requests answered `503`, from 0 to 1.
    pub failure_rate: f64,
}

impl FaultSettings {
    fn validate(self) -> Result<Self, String> {
        if self.delay_min_ms > self.delay_max_ms && self.delay_max_ms != 0 {
            return Err("delayMinMs must not exceed delayMaxMs".into());
        }
        if self.delay_min_ms > 60_000 || self.delay_max_ms > 60_000 {
            return Err("delayMinMs and delayMaxMs are at most 60000".into());
        }
        if !(0.0..=1.0).contains(&self.failure_rate) {
            return Err("failureRate must be between 0 and 1".into());
        }
        Ok(self)
    }
}

/// The knobs as start-up settings (`HOUSEBOOK_FAULTS__ENABLED`, `…__DELAY_MIN_MS`,
/// `…__DELAY_MAX_MS`, `…__FAILURE_RATE`): whether `/faults` exists, and the knobs' first
/// values. Apart from [`FaultSettings`], whose camelCase names are the API's: a settings
/// key is read in snake case.
#[derive(schemars::JsonSchema, Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultStartup {
    /// Whether the knobs and `/faults` exist at all.
    pub enabled: bool,
    /// Shortest artificial delay, in milliseconds.
    pub delay_min_ms: u64,
    /// Longest artificial delay, in milliseconds (0 = no delay).
    pub delay_max_ms: u64,
    /// Share of payment and refund requests answered `503`, from 0 to 1.
    pub failure_rate: f64,
}

impl From<FaultStartup> for FaultSettings {
    fn from(s: FaultStartup) -> Self {
        Self {
            enabled: s.enabled,
            delay_min_ms: s.delay_min_ms,
            delay_max_ms: s.delay_max_ms,
            failure_rate: s.failure_rate,
        }
    }
}

/// The live knobs, shared by the handlers.
#[derive(Debug, Clone)]
pub struct Faults(Arc<RwLock<FaultSettings>>);

impl Faults {
    /// Knobs set from settings; knobs set while switched off are a configuration error.
    pub fn new(settings: &FaultSettings) -> anyhow::Result<Self> {
        let s = settings.validate().map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            s.enabled || s == FaultSettings::default(),
            "faults.* are set but faults.enabled is false"
        );
        Ok(Self(Arc::new(RwLock::new(s))))
    }

    /// Whether the deployment enabled fault injection.
    pub fn enabled(&self) -> bool {
        self.get().enabled
    }

    /// The current knobs.
    pub fn get(&self) -> FaultSettings {
        self.0.read().map(|g| *g).unwrap_or_default()
    }

    /// Replaces the knobs (`enabled` stays as the deployment set it).
    pub fn set(&self, new: FaultSettings) -> Result<FaultSettings, ApiError> {
        let mut new = new.validate().map_err(ApiError::unprocessable)?;
        if let Ok(mut g) = self.0.write() {
            new.enabled = g.enabled;
            *g = new;
        }
        Ok(new)
    }

    /// Sleeps the configured delay, then fails the configured share of calls.
    pub async fn apply(&self) -> Result<(), ApiError> {
        let s = self.get();
        let (delay, fail) = {
            let mut rng = rand::thread_rng();
            let delay = if s.delay_max_ms > 0 {
                rng.gen_range(s.delay_min_ms..=s.delay_max_ms)
            } else {
                0
            };
            (delay, s.failure_rate > 0.0 && rng.gen_bool(s.failure_rate))
        };
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if fail {
            return Err(ApiError::unavailable(
                "payment failed (injected fault)",
                Duration::from_secs(1),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knobs_are_validated() {
        let f = Faults::new(&FaultSettings::default()).unwrap();
        assert!(f
            .set(FaultSettings {
                failure_rate: 1.5,
                ..Default::default()
            })
            .is_err());
        assert!(f
            .set(FaultSettings {
                delay_min_ms: 700,
                delay_max_ms: 600,
                ..Default::default()
            })
            .is_err());
        assert!(f
            .set(FaultSettings {
                delay_max_ms: 600_000,
                ..Default::default()
            })
            .is_err());
        let ok = FaultSettings {
            enabled: false,
            delay_min_ms: 400,
            delay_max_ms: 620,
            failure_rate: 0.0,
        };
        assert_eq!(f.set(ok).unwrap(), ok);
        assert_eq!(f.get(), ok);
    }

    #[tokio::test]
    async fn always_failing_fails_and_off_passes() {
        let f = Faults::new(&FaultSettings {
            enabled: true,
            failure_rate: 1.0,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(f.apply().await.unwrap_err().status.as_u16(), 503);
        assert!(
            Faults::new(&FaultSettings {
                failure_rate: 1.0,
                ..Default::default()
            })
            .is_err(),
            "knobs set while switched off are refused at start"
        );
        let f = Faults::new(&FaultSettings::default()).unwrap();
        assert!(f.apply().await.is_ok());
    }
}

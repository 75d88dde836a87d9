//! The time, as a port: domain services are given a [`Clock`] instead of reading the
//! system's, so that their tests set it.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, SubsecRound as _, Utc};

/// A time as the RFC 3339 text the fleet stores and shows (to the microsecond, `Z`).
pub fn text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Where a service reads the time.
pub trait Clock: Send + Sync + 'static {
    /// Now, to the microsecond the tables store (so what a write returns equals what a
    /// read returns later).
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// A clock that shows what it is set to, for tests.
#[derive(Debug, Clone)]
pub struct FixedClock(Arc<Mutex<DateTime<Utc>>>);

impl FixedClock {
    /// A clock at `at`.
    pub fn at(at: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(at.trunc_subsecs(6))))
    }

    /// Moves it on by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        let mut at = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *at += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

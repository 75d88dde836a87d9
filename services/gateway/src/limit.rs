//! Rate limits at the edge (SPEC §7): a token bucket per key — the token's subject for API
//! calls, the user or client name for token requests — refilled continuously. A caller
//! over its limit gets `429` with `Retry-After` and nothing is forwarded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use platform::ApiError;
use serde::Deserialize;

/// One limit: a sustained rate and a burst.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Rate {
    /// Requests per second, sustained. `0` turns the limit off.
    pub per_second: f64,
    /// How many may come at once after a quiet spell.
    pub burst: f64,
}

/// Buckets are dropped once this many keys are held and they are full again, so a flood
/// of one-off subjects cannot grow the map without end.
const PRUNE_ABOVE: usize = 10_000;

/// The buckets of one limit.
#[derive(Clone)]
pub struct Limiter {
    rate: Rate,
    buckets: Arc<Mutex<HashMap<String, Bucket>>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Limiter {
    /// A limiter with empty state.
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            buckets: Arc::default(),
        }
    }

    /// Takes one request's worth for `key`, or says how long until one is there.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let Rate { per_second, burst } = self.rate;
        if per_second <= 0.0 {
            return Ok(());
        }
        let burst = burst.max(1.0);
        // A poisoned lock only means another request panicked mid-update; the counts
        // are still numbers, so go on with them.
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second < burst
            });
        }
        let b = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refill = now.saturating_duration_since(b.at).as_secs_f64() * per_second;
        b.tokens = (b.tokens + refill).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / per_second))
        }
    }

    /// [`Limiter::check`] as the `429` a handler returns.
    pub fn admit(&self, key: &str) -> Result<(), ApiError> {
        self.check(key).map_err(|wait| {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests; slow down",
            );
            // Whole seconds, rounded up: `Retry-After: 0` would invite a busy loop.
            e.retry_after = Some(Duration::from_secs(
                wait.as_secs_f64().ceil().max(1.0) as u64
            ));
            e
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds_per_key() {
        let l = Limiter::new(Rate {
            per_second: 10.0,
            burst: 3.0,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check_at("alice", t0).is_ok());
        }
        let wait = l.check_at("alice", t0).unwrap_err();
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100));
        assert!(l.check_at("bob", t0).is_ok(), "bob has his own bucket");
        assert!(l.check_at("alice", t0 + Duration::from_millis(100)).is_ok());
        assert!(l
            .check_at("alice", t0 + Duration::from_millis(100))
            .is_err());
    }

    #[test]
    fn zero_turns_it_off_and_429_says_when_to_come_back() {
        let off = Limiter::new(Rate {
            per_second: 0.0,
            burst: 0.0,
        });
        assert!((0..1000).all(|_| off.check("x").is_ok()));
        let slow = Limiter::new(Rate {
            per_second: 0.5,
            burst: 1.0,
        });
        assert!(slow.admit("x").is_ok());
        let e = slow.admit("x").unwrap_err();
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.retry_after, Some(Duration::from_secs(2)));
    }

    #[test]
    fn idle_buckets_are_pruned() {
        let l = Limiter::new(Rate {
            per_second: 1000.0,
            burst: 1.0,
        });
        let t0 = Instant::now();
        for i in 0..=PRUNE_ABOVE {
            let _ = l.check_at(&i.to_string(), t0);
        }
        let _ = l.check_at("late", t0 + Duration::from_secs(1));
        assert_eq!(l.buckets.lock().unwrap().len(), 1);
    }
}

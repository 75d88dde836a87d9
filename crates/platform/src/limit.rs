//! Rate limits at the edges (SPEC §7) — the gateway and book's gRPC port: a token bucket
//! per key — the token's subject for API calls, the user or client name for token
//! requests, the client's address for refused calls — refilled continuously. A caller over
//! its limit gets `429` (gRPC: `RESOURCE_EXHAUSTED`) with `Retry-After` and nothing is
//! done.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::ApiError;
use axum::http::StatusCode;
use serde::Deserialize;

/// One limit: a sustained rate and a burst.
#[derive(schemars::JsonSchema, Debug, Clone, Copy, serde::Serialize, Deserialize)]
pub struct Rate {
    /// Requests per second, sustained. `0` turns the limit off.
    pub per_second: f64,
    /// How many may come at once after a quiet spell.
    pub burst: f64,
}

impl Rate {
    /// Calls per token subject at an edge (the gateway's API, book's gRPC port).
    pub const PER_SUBJECT: Self = Self {
        per_second: 1000.0,
        burst: 2000.0,
    };
    /// Refused (unauthenticated) calls per client address at an edge.
    pub const REFUSED_PER_ADDRESS: Self = Self {
        per_second: 50.0,
        burst: 100.0,
    };
}

/// Once this many keys are held, buckets that are full again are dropped (a full bucket
/// and no bucket are the same thing), and again each time the map doubles, so a flood of
/// one-off keys costs an amortised constant per request.
const PRUNE_ABOVE: usize = 10_000;

/// Keys held at most, whatever arrives: about 100 bytes each, so a few MiB per limiter.
/// Beyond, the buckets nearest to full are forgotten first (forgetting one hands its key
/// a fresh burst, which costs least for those that had most of it anyway).
const MAX_KEYS: usize = 50_000;

/// The buckets of one limit.
#[derive(Clone)]
pub struct Limiter {
    rate: Rate,
    buckets: Arc<Mutex<Buckets>>,
}

struct Buckets {
    map: HashMap<String, Bucket>,
    prune_at: usize,
}

impl Default for Buckets {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            prune_at: PRUNE_ABOVE,
        }
    }
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
        let level = |b: &Bucket| {
            (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second).min(burst)
        };
        // A poisoned lock only means another request panicked mid-update; the counts
        // are still numbers, so go on with them.
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let Buckets { map, prune_at } = &mut *buckets;
        if map.len() >= *prune_at && !map.contains_key(key) {
            map.retain(|_, b| level(b) < burst);
            if map.len() >= MAX_KEYS {
                let mut levels: Vec<(f64, String)> =
                    map.iter().map(|(k, b)| (level(b), k.clone())).collect();
                let keep = MAX_KEYS / 2;
                levels.select_nth_unstable_by(keep, |a, b| a.0.total_cmp(&b.0));
                for (_, k) in levels.drain(keep..) {
                    map.remove(&k);
                }
            }
            *prune_at = (map.len() * 2).clamp(PRUNE_ABOVE, MAX_KEYS);
        }
        let b = map.entry(key.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        b.tokens = level(b);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / per_second))
        }
    }

    /// Gives back the request's worth [`Limiter::check`] took (a request that should not
    /// have counted, such as a successful sign-in).
    pub fn refund(&self, key: &str) {
        let burst = self.rate.burst.max(1.0);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = buckets.map.get_mut(key) {
            b.tokens = (b.tokens + 1.0).min(burst);
        }
    }

    /// Whether `key` has its whole burst (nothing taken lately, or all of it refilled).
    pub fn is_full(&self, key: &str) -> bool {
        let Rate { per_second, burst } = self.rate;
        if per_second <= 0.0 {
            return true;
        }
        let burst = burst.max(1.0);
        let now = Instant::now();
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets.map.get(key).is_none_or(|b| {
            b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second >= burst
        })
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.buckets.lock().map_or(0, |b| b.map.len())
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
    fn a_refund_gives_back_what_was_taken_and_no_more() {
        let l = Limiter::new(Rate {
            per_second: 0.001,
            burst: 2.0,
        });
        for _ in 0..10 {
            assert!(l.check("alice").is_ok());
            l.refund("alice");
        }
        assert!(l.check("alice").is_ok());
        assert!(l.check("alice").is_ok());
        assert!(l.check("alice").is_err());
        l.refund("alice");
        l.refund("alice");
        l.refund("alice");
        assert!(l.check("alice").is_ok());
        assert!(l.check("alice").is_ok());
        assert!(l.check("alice").is_err(), "never above the burst");
    }

    #[test]
    fn a_key_is_full_until_something_is_taken_and_again_once_refilled() {
        let l = Limiter::new(Rate {
            per_second: 20.0,
            burst: 2.0,
        });
        assert!(l.is_full("alice"), "never seen");
        l.check("alice").unwrap();
        assert!(!l.is_full("alice"));
        l.refund("alice");
        assert!(l.is_full("alice"), "given back");
        l.check("alice").unwrap();
        std::thread::sleep(Duration::from_millis(60));
        assert!(l.is_full("alice"), "refilled");
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
        for i in 0..PRUNE_ABOVE {
            let _ = l.check_at(&format!("early-{i}"), t0);
        }
        assert_eq!(l.len(), PRUNE_ABOVE);
        // A second later every early bucket is full again: the next prune drops them all
        // and keeps the new, still-busy ones.
        let t1 = t0 + Duration::from_secs(1);
        for i in 0..PRUNE_ABOVE {
            let _ = l.check_at(&format!("late-{i}"), t1);
        }
        assert!(l.len() <= PRUNE_ABOVE, "{} keys", l.len());
        assert!(l
            .buckets
            .lock()
            .unwrap()
            .map
            .keys()
            .all(|k| k.starts_with("late-")));
    }

    #[test]
    fn a_flood_of_keys_that_stay_busy_is_held_to_the_bound() {
        // A slow refill: no bucket is ever full again during the flood.
        let l = Limiter::new(Rate {
            per_second: 0.001,
            burst: 5.0,
        });
        let t0 = Instant::now();
        for i in 0..(3 * MAX_KEYS) {
            let _ = l.check_at(&format!("subject-{i}"), t0);
            assert!(l.len() <= MAX_KEYS, "{} keys after {i}", l.len());
        }
        // A key drained to empty is remembered over fresher ones, so its limit holds.
        let busy = Limiter::new(Rate {
            per_second: 0.001,
            burst: 2.0,
        });
        for _ in 0..2 {
            assert!(busy.check_at("attacker", t0).is_ok());
        }
        for i in 0..(2 * MAX_KEYS) {
            let _ = busy.check_at(&format!("other-{i}"), t0);
        }
        assert!(
            busy.check_at("attacker", t0).is_err(),
            "the emptiest bucket survived"
        );
    }
}

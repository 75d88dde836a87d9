//! Long-lived answers (server-sent events) and their bounds. A stream holds a connection
//! for minutes, not a request's milliseconds, so it is not counted by the server's
//! in-flight bound (its permit goes when the head is answered, see [`crate::server`]) but
//! by bounds of its own, held by the answer's body until it ends:
//!
//! - **per subject**: at most `per_subject` open streams per token subject (a person with
//!   a few tabs open); beyond, `429` + `Retry-After`, so one customer cannot hold them all;
//! - **in all**: at most `total` open streams; beyond, `503` + `Retry-After` (keep it well
//!   below the server's `max_connections`, so streams never starve the API of connections);
//! - **time**: a stream ends when its token expires ([`until_expiry`]), so it never
//!   outlives its reader's right to read; the service that streams ends one with nothing
//!   to say after a while too (the client reconnects, resuming where it was).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// The bounds of streamed answers.
#[derive(schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamBounds {
    /// Open streams per token subject; beyond, `429`.
    pub per_subject: usize,
    /// Open streams in all; beyond, `503`.
    pub total: usize,
}

impl Default for StreamBounds {
    fn default() -> Self {
        Self {
            per_subject: 3,
            total: 256,
        }
    }
}

/// The open streams of one process.
#[derive(Clone, Debug)]
pub struct Streams {
    per_subject: usize,
    total: Arc<Semaphore>,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open stream's place: given back when dropped (with the answer's body).
#[derive(Debug)]
pub struct StreamPermit {
    subject: String,
    open: Arc<Mutex<HashMap<String, usize>>>,
    _total: OwnedSemaphorePermit,
}

impl Streams {
    /// Streams within `bounds`.
    pub fn new(settings: &StreamBounds) -> Self {
        Self {
            per_subject: settings.per_subject.max(1),
            total: Arc::new(Semaphore::new(settings.total.max(1))),
            open: Arc::default(),
        }
    }

    /// A place for one more stream of `subject`, or the answer that refuses it.
    pub fn admit(&self, subject: &str) -> Result<StreamPermit, ApiError> {
        let total = self.total.clone().try_acquire_owned().map_err(|_| {
            ApiError::unavailable(
                "too many streams are open; retry shortly",
                Duration::from_secs(5),
            )
        })?;
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let mine = open.entry(subject.to_owned()).or_default();
        if *mine >= self.per_subject {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!(
                    "at most {} streams may be open per caller; close one first",
                    self.per_subject
                ),
            );
            e.retry_after = Some(Duration::from_secs(5));
            return Err(e);
        }
        *mine += 1;
        Ok(StreamPermit {
            subject: subject.to_owned(),
            open: self.open.clone(),
            _total: total,
        })
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.open
            .lock()
            .map_or(0, |o| o.values().copied().sum::<usize>())
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.subject) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.subject);
            }
        }
    }
}

/// How long a stream for a token expiring at `expires_at` (Unix seconds) may last from
/// now: until then, and nothing once it has passed.
pub fn until_expiry(expires_at: i64) -> Duration {
    let left = expires_at.saturating_sub(chrono::Utc::now().timestamp());
    Duration::from_secs(u64::try_from(left).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams(per_subject: usize, total: usize) -> Streams {
        Streams::new(&StreamBounds { per_subject, total })
    }

    #[test]
    fn a_subject_holds_at_most_its_share_and_gets_it_back_on_close() {
        let s = streams(2, 10);
        let a = s.admit("alice").unwrap();
        let _b = s.admit("alice").unwrap();
        let refused = s.admit("alice").unwrap_err();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.retry_after.is_some());
        // Another subject is not affected.
        let _c = s.admit("bob").unwrap();
        assert_eq!(s.open(), 3);
        drop(a);
        assert_eq!(s.open(), 2);
        let _d = s.admit("alice").unwrap();
    }

    #[test]
    fn the_total_bound_refuses_with_503_and_frees_on_close() {
        let s = streams(5, 2);
        let a = s.admit("a").unwrap();
        let _b = s.admit("b").unwrap();
        let refused = s.admit("c").unwrap_err();
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(refused.retry_after.is_some());
        drop(a);
        let _c = s.admit("c").unwrap();
        // A refused subject's count is not left behind.
        assert_eq!(s.open(), 2);
    }

    #[test]
    fn a_stream_lasts_until_its_token_expires() {
        let now = chrono::Utc::now().timestamp();
        assert_eq!(until_expiry(now - 5), Duration::ZERO);
        let left = until_expiry(now + 100);
        assert!(left <= Duration::from_secs(100) && left >= Duration::from_secs(98));
    }
}

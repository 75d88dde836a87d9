//! Replicas of one upstream service and the choice between them: round robin over the
//! members whose `/readyz` last answered `200`, so a replica that starts draining (its
//! readiness turns false on SIGTERM, SPEC I10) stops getting new calls within one poll,
//! and one that refuses a connection is skipped at once. In a cluster the upstream is one
//! Kubernetes Service URL and the Service does this; locally (`./dev`, the fault suite) a
//! list of replica URLs stands in for it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The replicas of one upstream.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    members: Vec<Member>,
    next: AtomicUsize,
}

struct Member {
    base: Arc<str>,
    ready: AtomicBool,
}

/// Why [`Pool::send`] got no answer.
#[derive(Debug)]
pub enum SendError {
    /// Every replica refused the connection.
    NoReplica,
    /// The request failed after reaching a replica, or may have (e.g. it timed out).
    Failed(reqwest::Error),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoReplica => f.write_str("no replica answers"),
            Self::Failed(e) if e.is_timeout() => f.write_str("timed out"),
            Self::Failed(e) => write!(f, "unreachable: {e}"),
        }
    }
}

impl std::error::Error for SendError {}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.inner.name)
            .field("members", &self.members())
            .finish()
    }
}

impl Pool {
    /// A pool from a comma-separated list of base URLs (`http://host:port`).
    pub fn parse(name: &str, urls: &str) -> anyhow::Result<Self> {
        let members: Vec<Member> = urls
            .split(',')
            .map(|u| u.trim().trim_end_matches('/'))
            .filter(|u| !u.is_empty())
            .map(|u| {
                anyhow::ensure!(
                    u.starts_with("http://") || u.starts_with("https://"),
                    "{name}: `{u}` is not an http(s) URL"
                );
                Ok(Member {
                    base: Arc::from(u),
                    ready: AtomicBool::new(true),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        anyhow::ensure!(!members.is_empty(), "{name}: no upstream URL given");
        Ok(Self {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                members,
                next: AtomicUsize::new(0),
            }),
        })
    }

    /// The upstream's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// How many replicas there are.
    pub fn len(&self) -> usize {
        self.inner.members.len()
    }

    /// Never true: a pool has at least one member.
    pub fn is_empty(&self) -> bool {
        self.inner.members.is_empty()
    }

    /// The base URLs.
    pub fn members(&self) -> Vec<Arc<str>> {
        self.inner.members.iter().map(|m| m.base.clone()).collect()
    }

    /// The next replica to call, skipping those in `tried`: a ready one if there is one,
    /// else any (readiness may be stale; trying beats refusing). `None` once all were tried.
    pub fn pick(&self, tried: &[Arc<str>]) -> Option<Arc<str>> {
        let members = &self.inner.members;
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let untried = (0..members.len())
            .map(|i| &members[(start + i) % members.len()])
            .filter(|m| !tried.contains(&m.base));
        let mut fallback = None;
        for m in untried {
            if m.ready.load(Ordering::Relaxed) {
                return Some(m.base.clone());
            }
            fallback.get_or_insert_with(|| m.base.clone());
        }
        fallback
    }

    /// Marks a replica not ready (it refused a connection); the next poll may revive it.
    pub fn mark_down(&self, base: &str) {
        if self.inner.members.len() > 1 {
            if let Some(m) = self.inner.members.iter().find(|m| &*m.base == base) {
                m.ready.store(false, Ordering::Relaxed);
            }
        }
    }

    /// Sends `request(base)` to a ready replica. A replica that refuses the connection
    /// (stopped, restarting: nothing reached it) is marked down and the next one is tried;
    /// any other failure is the caller's to judge, since the request may have arrived.
    pub async fn send(
        &self,
        request: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, SendError> {
        let mut tried = Vec::new();
        loop {
            let base = self.pick(&tried).ok_or(SendError::NoReplica)?;
            match crate::trace::inject(request(&base)).send().await {
                Ok(res) => return Ok(res),
                Err(e) if e.is_connect() => {
                    self.mark_down(&base);
                    tried.push(base);
                }
                Err(e) => return Err(SendError::Failed(e)),
            }
        }
    }

    /// Whether a replica is taken as ready.
    pub fn is_ready(&self, base: &str) -> bool {
        self.inner
            .members
            .iter()
            .any(|m| &*m.base == base && m.ready.load(Ordering::Relaxed))
    }

    /// Polls every replica's `/readyz` until `stop`. A single replica is never polled:
    /// there is nothing to choose, and behind one Service URL readiness is the Service's.
    pub fn watch(&self, every: Duration, stop: CancellationToken) {
        if self.inner.members.len() < 2 {
            return;
        }
        let pool = self.clone();
        let http = match reqwest::Client::builder()
            .pool_idle_timeout(crate::server::CLIENT_IDLE_TIMEOUT)
            .timeout(every.max(Duration::from_millis(200)))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, upstream = pool.name(), "no readiness polling");
                return;
            }
        };
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let (http, name) = (&http, pool.name());
                let polls = pool.inner.members.iter().map(|m| {
                    async move {
                        let ok = http
                            .get(format!("{}/readyz", m.base))
                            .send()
                            .await
                            .is_ok_and(|r| r.status().is_success());
                        if m.ready.swap(ok, Ordering::Relaxed) != ok {
                            tracing::info!(upstream = name, replica = %m.base, ready = ok, "replica readiness changed");
                        }
                    }
                });
                futures::future::join_all(polls).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arc(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    #[test]
    fn parses_a_list_and_refuses_nonsense() {
        let p = Pool::parse("book", " http://a:1/ , http://b:2 ").unwrap();
        assert_eq!(p.members(), vec![arc("http://a:1"), arc("http://b:2")]);
        assert!(Pool::parse("book", "").is_err());
        assert!(Pool::parse("book", "a:1").is_err());
    }

    #[test]
    fn round_robin_skips_replicas_that_are_down_or_tried() {
        let p = Pool::parse("book", "http://a,http://b,http://c").unwrap();
        let picks: Vec<_> = (0..3).map(|_| p.pick(&[]).unwrap()).collect();
        assert_eq!(
            picks,
            vec![arc("http://a"), arc("http://b"), arc("http://c")]
        );
        p.mark_down("http://b");
        for _ in 0..6 {
            assert_ne!(p.pick(&[]).unwrap(), arc("http://b"));
        }
        assert_eq!(
            p.pick(&[arc("http://a"), arc("http://c")]),
            Some(arc("http://b")),
            "a replica taken as down is still tried when nothing else is left"
        );
        assert_eq!(
            p.pick(&[arc("http://a"), arc("http://b"), arc("http://c")]),
            None
        );
    }

    #[test]
    fn a_single_replica_is_never_marked_down() {
        let p = Pool::parse("book", "http://a").unwrap();
        p.mark_down("http://a");
        assert!(p.is_ready("http://a"));
    }
}

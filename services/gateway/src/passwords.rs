//! Password and client-secret checks with bounded CPU and memory.
//!
//! An argon2id check at OWASP's minimum (m=19 MiB, t=2) costs 19 MiB and tens of
//! milliseconds of one core, and anyone can ask for one: a token request with a made-up
//! name costs as much as a real one (it must, or the answer's timing tells which names
//! exist). Unbounded, 100 such requests at once held 2.3 GB that the allocator never gave
//! back. Here at most `max_concurrent` checks run at once, each in a working memory kept
//! from one check to the next (so the gateway's memory is its base plus
//! `max_concurrent × m`, whatever the flood); at most `max_waiting` more wait, each at most
//! `queue_wait_ms`; the rest are refused at once with `503` + `Retry-After`.
//!
//! A name nobody has costs no check at all: its answer comes after as long as real checks
//! have lately taken (queue included), so it still tells nothing about which names exist,
//! and a flood of made-up names — from however many addresses — takes no slot from the
//! users who exist. (Only the very first, before any real check, is a real check of a
//! dummy hash, which sets the estimate.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{Output, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use platform::ApiError;
use secrecy::ExposeSecret;
use serde::Deserialize;
use tokio::sync::Semaphore;

use crate::settings::Principal;

/// How many checks run and wait.
#[derive(Debug, Clone, Copy, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct PasswordSettings {
    /// Checks at once; each holds its hash's memory (19 MiB at OWASP's minimum). `0`: the
    /// cores the process may use, at most two.
    pub max_concurrent: usize,
    /// Requests waiting for a check at most; beyond, `503` at once.
    pub max_waiting: usize,
    /// How long a request waits for a check before `503`.
    pub queue_wait_ms: u64,
    /// Checks one client address may have running or waiting; beyond, `429` at once (so
    /// one source cannot fill the queue in front of everyone else).
    pub max_per_address: usize,
}

impl Default for PasswordSettings {
    fn default() -> Self {
        Self {
            max_concurrent: 0,
            max_waiting: 64,
            queue_wait_ms: 2_000,
            max_per_address: 4,
        }
    }
}

/// The largest memory a configured hash may ask for (an operator's typo in `m` must not
/// become gigabytes per request).
const MAX_MEMORY_KIB: u32 = 256 * 1024;

/// The checks under way and waiting, and their working memories: one for the process,
/// shared by the user and client lists.
#[derive(Clone)]
pub struct Slots {
    permits: Arc<Semaphore>,
    size: usize,
    waiting: Arc<AtomicUsize>,
    memories: Arc<Mutex<Vec<Vec<Block>>>>,
    /// Checks running or waiting per client address (an entry exists only while one does,
    /// so the map is bounded by the checks admitted).
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
    settings: PasswordSettings,
}

impl Slots {
    /// The slots `settings` name.
    pub fn new(settings: PasswordSettings) -> Self {
        let size = match settings.max_concurrent {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(2),
            n => n,
        };
        Self {
            permits: Arc::new(Semaphore::new(size)),
            size,
            waiting: Arc::default(),
            memories: Arc::default(),
            per_address: Arc::default(),
            settings,
        }
    }

    /// Runs `work` with a working memory once a slot is free; `503` when too many wait or
    /// the wait is too long.
    async fn run<T: Send + 'static>(
        &self,
        from: IpAddr,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _mine = AddressGuard::enter(&self.per_address, from, self.settings.max_per_address)
            .ok_or_else(|| {
                let mut e = ApiError::new(
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "too many sign-ins from this address at once; slow down",
                );
                e.retry_after = Some(Duration::from_secs(1));
                e
            })?;
        let busy = || {
            ApiError::unavailable(
                "too many sign-ins at once; retry shortly",
                Duration::from_secs(1),
            )
        };
        // Counted before waiting, so that the bound holds for however many arrive at once.
        let queued = WaitingGuard::enter(&self.waiting);
        if queued.position > self.size + self.settings.max_waiting {
            return Err(busy());
        }
        let wait = Duration::from_millis(self.settings.queue_wait_ms);
        let permit = match tokio::time::timeout(wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(p)) => p,
            _ => return Err(busy()),
        };
        drop(queued);
        let memories = self.memories.clone();
        tokio::task::spawn_blocking(move || {
            let mut memory = memories
                .lock()
                .map(|mut m| m.pop())
                .ok()
                .flatten()
                .unwrap_or_default();
            let out = work(&mut memory);
            if let Ok(mut m) = memories.lock() {
                m.push(memory);
            }
            drop(permit);
            out
        })
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("password check failed: {e}")))
    }
}

/// Checks names and secrets against one list of principals.
#[derive(Clone)]
pub struct Checker {
    principals: Arc<Vec<Principal>>,
    /// Verified for an unknown name only while no real check has been timed: same
    /// parameters as the list's first hash.
    dummy: Arc<str>,
    slots: Slots,
    /// How long a check has lately taken from arrival to answer, in microseconds (a
    /// moving average; `0` until the first): what an unknown name waits instead.
    typical_micros: Arc<AtomicU64>,
}

impl Checker {
    /// A checker over `principals`; refuses hashes it cannot check or whose memory is
    /// beyond reason.
    pub fn new(principals: Vec<Principal>, slots: Slots) -> anyhow::Result<Self> {
        for p in &principals {
            let hash = PasswordHash::new(p.secret_hash.expose_secret())
                .map_err(|e| anyhow::anyhow!("the hash of {} is not a PHC string: {e}", p.name))?;
            let params = Params::try_from(&hash)
                .map_err(|e| anyhow::anyhow!("the hash of {} has bad parameters: {e}", p.name))?;
            anyhow::ensure!(
                params.m_cost() <= MAX_MEMORY_KIB,
                "the hash of {} asks for {} KiB; at most {MAX_MEMORY_KIB}",
                p.name,
                params.m_cost()
            );
            anyhow::ensure!(
                hash.salt.is_some() && hash.hash.is_some(),
                "the hash of {} has no salt or output",
                p.name
            );
        }
        let dummy = dummy_like(principals.first())?;
        Ok(Self {
            principals: Arc::new(principals),
            dummy: Arc::from(dummy),
            slots,
            typical_micros: Arc::default(),
        })
    }

    /// Folds one check's time into the moving average (weight 1/8).
    fn timed(&self, took: Duration) {
        let took = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let _ = self
            .typical_micros
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(if old == 0 {
                    took
                } else {
                    old - old / 8 + took / 8
                })
            });
    }

    /// Whether a principal of this list has this name.
    pub fn knows(&self, name: &str) -> bool {
        self.principals.iter().any(|p| p.name == name)
    }

    /// The principal's roles when `secret` is its secret; `Ok(None)` when the name is
    /// unknown or the secret wrong (the two take the same time); `503` when too many
    /// checks are under way.
    pub async fn check(
        &self,
        from: IpAddr,
        name: &str,
        secret: &str,
    ) -> Result<Option<Vec<platform::auth::Role>>, ApiError> {
        let found = self.principals.iter().position(|p| p.name == name);
        let typical = self.typical_micros.load(Ordering::Relaxed);
        let hash = match found {
            Some(i) => self.principals[i].secret_hash.expose_secret().to_owned(),
            None if typical > 0 => {
                tokio::time::sleep(Duration::from_micros(typical)).await;
                return Ok(None);
            }
            None => self.dummy.to_string(),
        };
        let secret = secret.to_owned();
        let started = Instant::now();
        let ok = self
            .slots
            .run(from, move |memory| verify(&hash, secret.as_bytes(), memory))
            .await?;
        self.timed(started.elapsed());
        Ok(found
            .filter(|_| ok)
            .map(|i| self.principals[i].roles.clone()))
    }
}

/// Counts a request from its arrival until it holds a permit (or gives up).
struct WaitingGuard<'a> {
    count: &'a AtomicUsize,
    position: usize,
}

impl<'a> WaitingGuard<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        let position = count.fetch_add(1, Ordering::SeqCst) + 1;
        Self { count, position }
    }
}

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts a request against its address while it runs or waits.
struct AddressGuard<'a> {
    map: &'a Mutex<HashMap<IpAddr, usize>>,
    from: IpAddr,
}

impl<'a> AddressGuard<'a> {
    fn enter(map: &'a Mutex<HashMap<IpAddr, usize>>, from: IpAddr, max: usize) -> Option<Self> {
        let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(from).or_insert(0);
        if *n >= max.max(1) {
            return None;
        }
        *n += 1;
        Some(Self { map, from })
    }
}

impl Drop for AddressGuard<'_> {
    fn drop(&mut self) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.from) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.from);
            }
        }
    }
}

/// A hash no secret matches, with the parameters of `like` (the defaults without it): its
/// output is fixed bytes, not the hash of anything, so checking against it costs what a
/// real check costs and never succeeds. Nothing is hashed here: a hash computed at start
/// would leave its 19 MiB with the allocator for good.
fn dummy_like(like: Option<&Principal>) -> anyhow::Result<String> {
    const DEFAULT: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let source = like.map_or(DEFAULT, |p| p.secret_hash.expose_secret());
    let mut hash = PasswordHash::new(source).map_err(anyhow::Error::msg)?;
    let len = hash.hash.map_or(32, |o| o.len());
    hash.salt = Some(Salt::from_b64("bm8tc3VjaC1wcmluY2lwYWw").map_err(anyhow::Error::msg)?);
    hash.hash = Some(Output::new(&vec![0x5a; len]).map_err(anyhow::Error::msg)?);
    Ok(hash.to_string())
}

/// Whether `secret` matches the PHC string `hash`, computed in `memory` (grown to the
/// hash's size the first time, then reused).
fn verify(hash: &str, secret: &[u8], memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(params), Ok(algorithm)) = (
        Params::try_from(&parsed),
        Algorithm::try_from(parsed.algorithm),
    ) else {
        return false;
    };
    let Ok(version) = parsed.version.map(Version::try_from).transpose() else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = [0u8; Output::MAX_LENGTH];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    let Some(work) = memory.get_mut(..blocks) else {
        return false;
    };
    Argon2::new(algorithm, version.unwrap_or_default(), params)
        .hash_password_into_with_memory(secret, salt, out, work)
        .is_ok()
        // Output's equality is constant-time.
        && Output::new(out).is_ok_and(|o| o == expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Settings;
    use std::net::Ipv4Addr;

    const HERE: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn checker(max_concurrent: usize, max_waiting: usize) -> Checker {
        let slots = Slots::new(PasswordSettings {
            max_concurrent,
            max_waiting,
            queue_wait_ms: 10_000,
            max_per_address: 100,
        });
        Checker::new(Settings::default().users, slots).unwrap()
    }

    #[tokio::test]
    async fn the_right_password_passes_and_wrong_or_unknown_do_not() {
        let c = checker(1, 4);
        let roles = c.check(HERE, "alice", "alice").await.unwrap();
        assert_eq!(roles, Some(vec![platform::auth::Role::Customer]));
        assert_eq!(c.check(HERE, "alice", "bob").await.unwrap(), None);
        assert_eq!(c.check(HERE, "mallory", "alice").await.unwrap(), None);
        // The same working memory served all three.
        assert_eq!(c.slots.memories.lock().unwrap().len(), 1);
    }

    #[test]
    fn the_dummy_hash_has_the_users_parameters_and_matches_nothing() {
        let c = checker(1, 1);
        let dummy = PasswordHash::new(&c.dummy).unwrap();
        let alice = Settings::default().users[0].secret_hash.clone();
        let alice = alice.expose_secret().to_owned();
        let alice = PasswordHash::new(&alice).unwrap();
        assert_eq!(
            Params::try_from(&dummy).unwrap(),
            Params::try_from(&alice).unwrap()
        );
        assert_eq!(dummy.algorithm, alice.algorithm);
        // It is checked in full (the memory grew to its size) and matches nothing.
        let mut memory = Vec::new();
        for guess in ["", "alice", "admin", "bob"] {
            assert!(!verify(&c.dummy, guess.as_bytes(), &mut memory));
        }
        assert_eq!(
            memory.len(),
            Params::try_from(&dummy).unwrap().block_count()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn beyond_the_queue_requests_are_refused_at_once() {
        let c = checker(1, 2);
        // The one slot is busy.
        let held = c.slots.permits.clone().acquire_owned().await.unwrap();
        let tries: Vec<_> = (0..12)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move { c.check(HERE, "alice", "x").await })
            })
            .collect();
        // Nine are refused without waiting (1 running + 2 waiting is the bound) ...
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while tries.iter().filter(|t| t.is_finished()).count() < 9 {
            assert!(
                std::time::Instant::now() < deadline,
                "refusals did not come at once"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(c.slots.waiting.load(Ordering::SeqCst), 3);
        // ... and the three that wait are checked once the slot frees.
        drop(held);
        let mut busy = 0;
        let mut checked = 0;
        for t in tries {
            match t.await.unwrap() {
                Ok(None) => checked += 1,
                Err(e) if e.status == axum::http::StatusCode::SERVICE_UNAVAILABLE => {
                    assert!(e.retry_after.is_some());
                    busy += 1
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((busy, checked), (9, 3));
        assert_eq!(c.slots.waiting.load(Ordering::SeqCst), 0);
        assert_eq!(
            c.slots.memories.lock().unwrap().len(),
            1,
            "one slot, one memory"
        );
    }

    /// Issue 18: a made-up name costs no check once a real one has been timed — a flood
    /// of them takes no slot from existing users — and is answered after about as long
    /// as a real check takes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unknown_names_cost_no_check_and_take_as_long() {
        // One check at a time, one waiting.
        let c = checker(1, 0);
        // The first unknown name, before anything was timed, is a real (dummy) check.
        let started = Instant::now();
        assert_eq!(c.check(HERE, "nobody-0", "x").await.unwrap(), None);
        let first = started.elapsed();
        let started = Instant::now();
        assert_eq!(c.check(HERE, "alice", "wrong").await.unwrap(), None);
        let known = started.elapsed();
        // The one slot is now held, and alice waits for it; no one else may wait: a name
        // that needs a check is refused at once, a made-up one is still answered.
        let held = c.slots.permits.clone().acquire_owned().await.unwrap();
        let alice = {
            let c = c.clone();
            tokio::spawn(async move { c.check(HERE, "alice", "alice").await })
        };
        while c.slots.waiting.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let e = c.check(HERE, "bob", "bob").await.unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        let started = Instant::now();
        let tries: Vec<_> = (0..50)
            .map(|i| {
                let c = c.clone();
                tokio::spawn(async move { c.check(HERE, &format!("nobody-{i}"), "x").await })
            })
            .collect();
        for t in tries {
            assert_eq!(t.await.unwrap().unwrap(), None);
        }
        let unknown = started.elapsed();
        assert!(!alice.is_finished(), "the slot was never free meanwhile");
        drop(held);
        assert!(alice.await.unwrap().unwrap().is_some());
        println!(
            "[passwords] dummy check {first:?}, wrong password {known:?}, 50 made-up names at once {unknown:?} (typical {} µs)",
            c.typical_micros.load(Ordering::Relaxed)
        );
        assert!(c.typical_micros.load(Ordering::Relaxed) > 0);
    }

    #[tokio::test]
    async fn one_address_cannot_hold_more_than_its_share() {
        let mut slots = Slots::new(PasswordSettings::default());
        slots.settings.max_per_address = 2;
        let a = AddressGuard::enter(&slots.per_address, HERE, 2).unwrap();
        let b = AddressGuard::enter(&slots.per_address, HERE, 2).unwrap();
        let c = Checker::new(Settings::default().users, slots.clone()).unwrap();
        let e = c.check(HERE, "alice", "alice").await.unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::TOO_MANY_REQUESTS);
        // Another address is not affected, and the first one's share comes back.
        let elsewhere = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        assert!(c
            .check(elsewhere, "alice", "alice")
            .await
            .unwrap()
            .is_some());
        drop((a, b));
        assert!(c.check(HERE, "alice", "alice").await.unwrap().is_some());
        assert!(
            slots.per_address.lock().unwrap().is_empty(),
            "no entry outlives its checks"
        );
    }

    #[test]
    fn a_hash_asking_for_gigabytes_is_refused_at_start() {
        let mut users = Settings::default().users;
        users[0].secret_hash = "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3xJmHo0e2wH5P0xk7zZmYVZ2mJ+3Gf2h3uQG4tGmM0A".into();
        let e = Checker::new(users, Slots::new(PasswordSettings::default()))
            .err()
            .unwrap();
        assert!(e.to_string().contains("KiB"), "{e}");
    }
}

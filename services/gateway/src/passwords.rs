//! Password and client-secret checks with bounded CPU and memory, which tell nothing of
//! which names exist.
//!
//! An argon2id check at OWASP's minimum (m=19 MiB, t=2) costs 19 MiB and tens of
//! milliseconds of one core, and anyone can ask for one. Unbounded, 100 such requests at
//! once held 2.3 GB that the allocator never gave back. Here at most `max_concurrent`
//! checks run at once, each in a working memory kept from one check to the next (so the
//! gateway's memory is its base plus `max_concurrent × m`, whatever the flood); at most
//! `max_waiting` more wait, each at most `queue_wait_ms`; the rest are refused at once with
//! `503` + `Retry-After`. One client address has at most `max_per_address` running or
//! waiting (`429` beyond).
//!
//! A name nobody has takes the same path — the address's share, a queue of the same
//! bounds, a slot of the same count, as long as a real check — but in a lane of its own
//! (the stand-in lane), where its "check" is a wait as long as a real check lately took
//! (one of the last [`SAMPLES`] real checks' times, picked at random). So a burst of
//! made-up names gets the answers a burst of real ones would (the same `429`s and `503`s,
//! after the same times), and a flood of them — from however many addresses — takes no
//! slot and no CPU from the users who exist. Both lanes add the same small random jitter.
//! Before any real check has been timed, a stand-in is a real check of a dummy hash (in
//! its own lane), which gives the first sample.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{Output, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use platform::fair::Shares;
use platform::ApiError;
use secrecy::ExposeSecret;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::settings::Principal;

/// How many checks run and wait.
#[derive(schemars::JsonSchema, Debug, Clone, Copy, serde::Serialize, Deserialize)]
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

/// How many recent real checks' times a stand-in picks from.
pub const SAMPLES: usize = 64;

/// The most random jitter added to every check's time, real or stand-in.
const JITTER_MICROS: u64 = 1_000;

/// One queue and its slots.
#[derive(Clone)]
struct Lane {
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
}

impl Lane {
    fn new(size: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(size)),
            waiting: Arc::default(),
        }
    }
}

/// The checks under way and waiting, and their working memories: one for the process,
/// shared by the user and client lists.
#[derive(Clone)]
pub struct Slots {
    /// Real checks.
    real: Lane,
    /// Stand-ins for names nobody has: the same bounds, apart.
    stand_in: Lane,
    size: usize,
    memories: Arc<Mutex<Vec<Vec<Block>>>>,
    /// Checks running or waiting per client address, in both lanes alike.
    per_address: Shares,
    /// The last real checks' times, in microseconds (a ring; 0: no sample yet).
    samples: Arc<[AtomicU64; SAMPLES]>,
    next_sample: Arc<AtomicUsize>,
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
            real: Lane::new(size),
            stand_in: Lane::new(size),
            size,
            memories: Arc::default(),
            per_address: Shares::new(settings.max_per_address.max(1)),
            samples: Arc::new(std::array::from_fn(|_| AtomicU64::new(0))),
            next_sample: Arc::default(),
            settings,
        }
    }

    /// A slot of `lane` for a request from `from`, with its address's share: `429` when
    /// the address has its share running or waiting, `503` when too many wait or the wait
    /// is too long.
    async fn enter(
        &self,
        from: IpAddr,
        lane: &Lane,
    ) -> Result<(platform::fair::Share, OwnedSemaphorePermit), ApiError> {
        let mine = self.per_address.take(from).ok_or_else(|| {
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
        let queued = WaitingGuard::enter(&lane.waiting);
        if queued.position > self.size + self.settings.max_waiting {
            return Err(busy());
        }
        let wait = Duration::from_millis(self.settings.queue_wait_ms);
        match tokio::time::timeout(wait, lane.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok((mine, permit)),
            _ => Err(busy()),
        }
    }

    /// Runs `work` with a working memory once a real slot is free, and keeps its time as
    /// a sample for the stand-ins.
    async fn run<T: Send + 'static>(
        &self,
        from: IpAddr,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let held = self.enter(from, &self.real).await?;
        self.compute(held, work).await
    }

    /// A stand-in for a check of a name nobody has: in its own lane, a wait as long as a
    /// recent real check (or, before any, a real check of `dummy`). Never matches.
    async fn stand_in(
        &self,
        from: IpAddr,
        dummy: Arc<str>,
        secret: String,
    ) -> Result<(), ApiError> {
        let held = self.enter(from, &self.stand_in).await?;
        match self.sample() {
            Some(took) => {
                let jitter = jitter();
                tokio::task::spawn_blocking(move || {
                    std::thread::sleep(took + jitter);
                    drop(held);
                })
                .await
                .map_err(|e| ApiError::internal(anyhow::anyhow!("stand-in failed: {e}")))
            }
            None => self
                .compute(held, move |memory| {
                    verify(&dummy, secret.as_bytes(), memory)
                })
                .await
                .map(|_| ()),
        }
    }

    /// `work` on a blocking thread, in a working memory, holding `held` until done; its
    /// time becomes a sample.
    async fn compute<T: Send + 'static>(
        &self,
        held: (platform::fair::Share, OwnedSemaphorePermit),
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let slots = self.clone();
        let jitter = jitter();
        tokio::task::spawn_blocking(move || {
            let mut memory = slots
                .memories
                .lock()
                .map(|mut m| m.pop())
                .ok()
                .flatten()
                .unwrap_or_default();
            let started = Instant::now();
            let out = work(&mut memory);
            slots.record(started.elapsed());
            if let Ok(mut m) = slots.memories.lock() {
                m.push(memory);
            }
            std::thread::sleep(jitter);
            drop(held);
            out
        })
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("password check failed: {e}")))
    }

    /// Keeps one real check's time.
    fn record(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let i = self.next_sample.fetch_add(1, Ordering::Relaxed) % SAMPLES;
        self.samples[i].store(micros, Ordering::Relaxed);
    }

    /// One of the recent real checks' times, at random; `None` before the first.
    fn sample(&self) -> Option<Duration> {
        let known = self.next_sample.load(Ordering::Relaxed).min(SAMPLES);
        if known == 0 {
            return None;
        }
        let i = usize::try_from(random() % known as u64).unwrap_or(0);
        match self.samples[i].load(Ordering::Relaxed) {
            0 => None,
            micros => Some(Duration::from_micros(micros)),
        }
    }
}

/// A random number, from the standard library's per-process random hash keys (no
/// generator crate for a jitter).
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// A random jitter of up to [`JITTER_MICROS`].
fn jitter() -> Duration {
    Duration::from_micros(random() % (JITTER_MICROS + 1))
}

/// Checks names and secrets against one list of principals.
#[derive(Clone)]
pub struct Checker {
    principals: Arc<Vec<Principal>>,
    /// Checked by a stand-in while no real check has been timed: same parameters as the
    /// list's first hash.
    dummy: Arc<str>,
    slots: Slots,
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
        })
    }

    /// Whether a principal of this list has this name.
    pub fn knows(&self, name: &str) -> bool {
        self.principals.iter().any(|p| p.name == name)
    }

    /// The principal's roles when `secret` is its secret; `Ok(None)` when the name is
    /// unknown or the secret wrong (the two take the same path and time); `429`/`503` when
    /// the address or everyone has too many checks under way.
    pub async fn check(
        &self,
        from: IpAddr,
        name: &str,
        secret: &str,
    ) -> Result<Option<Vec<platform::auth::Role>>, ApiError> {
        let secret = secret.to_owned();
        let Some(i) = self.principals.iter().position(|p| p.name == name) else {
            self.slots
                .stand_in(from, self.dummy.clone(), secret)
                .await?;
            return Ok(None);
        };
        let hash = self.principals[i].secret_hash.expose_secret().to_owned();
        let ok = self
            .slots
            .run(from, move |memory| verify(&hash, secret.as_bytes(), memory))
            .await?;
        Ok(ok.then(|| self.principals[i].roles.clone()))
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

/// The parameters a new user's or client's hash gets: argon2id at OWASP's minimum
/// (19 MiB, two passes, one lane), those of the development users.
const NEW_HASH_PARAMS: (u32, u32, u32) = (19_456, 2, 1);

/// A PHC string for `secret` with a random salt and [`NEW_HASH_PARAMS`]: what
/// `gateway hash-password` prints for the `[[users]]` or `[[clients]]` of a deployment's
/// `gateway.toml`.
pub fn hash_new(secret: &[u8]) -> anyhow::Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use std::io::Read;
    anyhow::ensure!(!secret.is_empty(), "an empty password is no password");
    let mut salt = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut salt)?;
    let salt = SaltString::encode_b64(&salt).map_err(anyhow::Error::msg)?;
    let (m, t, p) = NEW_HASH_PARAMS;
    let params = Params::new(m, t, p, None).map_err(anyhow::Error::msg)?;
    let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(secret, &salt)
        .map_err(anyhow::Error::msg)?;
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

    #[test]
    fn a_new_hash_verifies_its_password_alone_and_never_repeats() {
        let hash = hash_new(b"correct horse").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        let mut memory = Vec::new();
        assert!(verify(&hash, b"correct horse", &mut memory));
        assert!(!verify(&hash, b"correct horsE", &mut memory));
        assert_ne!(
            hash,
            hash_new(b"correct horse").unwrap(),
            "a salt of its own"
        );
        assert!(hash_new(b"").is_err());
    }
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
        // The same working memory served all three (the stand-in computed nothing).
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

    /// What twelve requests at once from one address get while the one slot of `lane` is
    /// held, then once it frees: the number refused with `503` and the number answered.
    async fn burst_against(c: &Checker, name: &'static str, lane: &Lane) -> (usize, usize) {
        let held = lane.permits.clone().acquire_owned().await.unwrap();
        let tries: Vec<_> = (0..12)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move { c.check(HERE, name, "x").await })
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
        assert_eq!(lane.waiting.load(Ordering::SeqCst), 3);
        // ... and the three that wait are answered once the slot frees.
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
        assert_eq!(lane.waiting.load(Ordering::SeqCst), 0);
        (busy, checked)
    }

    /// Beyond the queue, requests are refused at once — for a real name and a made-up one
    /// alike, each in its lane: the same answers to the same burst.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn beyond_the_queue_requests_are_refused_at_once_whoever_is_named() {
        let c = checker(1, 2);
        let real = c.slots.real.clone();
        assert_eq!(burst_against(&c, "alice", &real).await, (9, 3));
        assert_eq!(
            c.slots.memories.lock().unwrap().len(),
            1,
            "one slot, one memory"
        );
        let stand_in = c.slots.stand_in.clone();
        assert_eq!(burst_against(&c, "nobody", &stand_in).await, (9, 3));
        assert_eq!(c.slots.memories.lock().unwrap().len(), 1, "no memory taken");
    }

    /// A made-up name takes no real slot — a flood of them leaves existing users their
    /// slots — and is answered after about as long as a real check takes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unknown_names_take_no_real_slot_and_take_as_long() {
        // One check at a time, one waiting.
        let c = checker(1, 0);
        // The first unknown name, before anything was timed, is a real (dummy) check.
        let started = Instant::now();
        assert_eq!(c.check(HERE, "nobody-0", "x").await.unwrap(), None);
        let first = started.elapsed();
        let started = Instant::now();
        assert_eq!(c.check(HERE, "alice", "wrong").await.unwrap(), None);
        let known = started.elapsed();
        // The one real slot is now held, and alice waits for it; no one else may wait: a
        // real name is refused at once, made-up ones are still answered in their lane.
        let held = c.slots.real.permits.clone().acquire_owned().await.unwrap();
        let alice = {
            let c = c.clone();
            tokio::spawn(async move { c.check(HERE, "alice", "alice").await })
        };
        while c.slots.real.waiting.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let e = c.check(HERE, "bob", "bob").await.unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        let started = Instant::now();
        for i in 0..5 {
            assert_eq!(
                c.check(HERE, &format!("nobody-{i}"), "x").await.unwrap(),
                None
            );
        }
        let unknown = started.elapsed() / 5;
        assert!(
            !alice.is_finished(),
            "the real slot was never free meanwhile"
        );
        drop(held);
        assert!(alice.await.unwrap().unwrap().is_some());
        println!(
            "[passwords] dummy check {first:?}, wrong password {known:?}, a made-up name {unknown:?}"
        );
        assert!(
            unknown >= c.slots.sample().unwrap() / 4,
            "a stand-in waits about a check's time"
        );
    }

    #[tokio::test]
    async fn one_address_cannot_hold_more_than_its_share_whoever_it_names() {
        let slots = Slots::new(PasswordSettings {
            max_per_address: 2,
            ..PasswordSettings::default()
        });
        let a = slots.per_address.take(HERE).unwrap();
        let b = slots.per_address.take(HERE).unwrap();
        let c = Checker::new(Settings::default().users, slots.clone()).unwrap();
        for name in ["alice", "nobody"] {
            let e = c.check(HERE, name, "alice").await.unwrap_err();
            assert_eq!(
                e.status,
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "{name}"
            );
        }
        // Another address is not affected, and the first one's share comes back.
        let elsewhere = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        assert!(c
            .check(elsewhere, "alice", "alice")
            .await
            .unwrap()
            .is_some());
        drop((a, b));
        assert!(c.check(HERE, "alice", "alice").await.unwrap().is_some());
        assert_eq!(
            slots.per_address.sources(),
            0,
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

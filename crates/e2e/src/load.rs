//! A stream of bookings and cancels through the gateway, kept up while a test breaks
//! things, with a tally of every answer: which bookings were answered `201` (those must
//! never be lost), which cancels `200`, and every other status seen.
//!
//! Test support (see the crate header): a failed set-up step or a `201` without an id
//! panics, which is how a test fails.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDate;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A password-grant token (the local users' passwords are their names).
pub async fn token(http: &reqwest::Client, gateway: &str, user: &str) -> String {
    let r = ask_token(http, gateway, user).await;
    assert_eq!(r.status(), StatusCode::OK, "token for {user}");
    r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The gateway's answer to a password grant for `user`.
async fn ask_token(http: &reqwest::Client, gateway: &str, user: &str) -> reqwest::Response {
    let form = [
        ("grant_type", "password"),
        ("username", user),
        ("password", user),
    ];
    http.post(format!("{gateway}/oauth/token"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// A worker's new token, or `None` when the gateway says to come back later (`429` or
/// `503` with `Retry-After`, which it waits out first): every worker of a load signs in
/// from the one address, at about the same moment, and one address has few sign-in slots
/// at once. Anything else fails the load.
async fn refreshed(http: &reqwest::Client, gateway: &str, user: &str) -> Option<String> {
    let r = ask_token(http, gateway, user).await;
    if matches!(r.status().as_u16(), 429 | 503) {
        let wait: u64 = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("a refusal for load says when to come back");
        tokio::time::sleep(Duration::from_secs(wait)).await;
        return None;
    }
    assert_eq!(r.status(), StatusCode::OK, "token for {user}");
    r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .map(str::to_owned)
}

/// A booking answered `201`.
#[derive(Debug, Clone)]
pub struct Created {
    /// Its id.
    pub id: String,
    /// The total price answered.
    pub price: i64,
}

/// What the load saw.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Bookings answered `201`.
    pub created: Vec<Created>,
    /// Bookings whose cancel was answered `200`.
    pub cancelled: Vec<String>,
    /// Count of answers by status (`0`: no answer at all).
    pub statuses: BTreeMap<u16, usize>,
    /// The first few answers of each status that was not `2xx`.
    pub failures: Vec<Failure>,
}

/// An answer that was not `2xx`.
#[derive(Debug, Clone)]
pub struct Failure {
    /// What was asked (`POST /books/ID/cancel`).
    pub request: String,
    /// Its status; `0`: no answer at all.
    pub status: u16,
    /// The body, or the client's error when there was no answer.
    pub body: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.request, self.status, self.body)
    }
}

impl Tally {
    /// All requests sent.
    pub fn requests(&self) -> usize {
        self.statuses.values().sum()
    }

    /// Requests not answered `2xx`.
    pub fn failed(&self) -> usize {
        self.statuses
            .iter()
            .filter(|(s, _)| !(200..300).contains(*s))
            .map(|(_, n)| n)
            .sum()
    }

    /// A line for the test's output and for `docs/guarantees.md`.
    pub fn summary(&self) -> String {
        format!(
            "{} requests, {} bookings 201, {} cancels 200, statuses {:?}",
            self.requests(),
            self.created.len(),
            self.cancelled.len(),
            self.statuses
        )
    }

    fn saw(&mut self, what: &str, status: u16, body: &str) {
        let seen = self.statuses.entry(status).or_default();
        *seen += 1;
        if !(200..300).contains(&status) && *seen <= 5 {
            self.failures.push(Failure {
                request: what.to_owned(),
                status,
                body: body.to_owned(),
            });
        }
    }
}

/// What to send.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Houses to book.
    pub houses: Vec<i64>,
    /// The users who book (the clients take turns); local users sign in with their name.
    pub customers: Vec<String>,
    /// Concurrent clients.
    pub workers: usize,
    /// First night any booking may take.
    pub first_night: NaiveDate,
    /// How many different first nights there are (fewer: more overlaps).
    pub spread_days: u64,
    /// Share of created bookings cancelled right away, in percent.
    pub cancel_percent: u64,
    /// Pause between one client's requests.
    pub pause: Duration,
}

/// A running load; [`Load::stop`] ends it and returns the tally.
pub struct Load {
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// How often a client takes a new token, as a client that reads `expires_in` does: well
/// within the shortest lifetime a test fleet gives tokens (a minute, the storefront's).
const TOKEN_REFRESH: Duration = Duration::from_secs(20);

/// A small, seeded pseudo-random sequence (xorshift): no dependency, different per client.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

impl Load {
    /// Starts `plan.workers` clients against the gateway, taking turns as the customers.
    pub async fn start(gateway: &str, plan: Plan) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap();
        let mut tokens = Vec::new();
        for user in &plan.customers {
            tokens.push(token(&http, gateway, user).await);
        }
        assert!(!tokens.is_empty(), "a plan names who books");
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let tasks = (0..plan.workers)
            .map(|w| {
                let (http, plan, stop, tally) =
                    (http.clone(), plan.clone(), stop.clone(), tally.clone());
                let user = plan.customers[w % plan.customers.len()].clone();
                let mut token = tokens[w % tokens.len()].clone();
                let gateway = gateway.to_owned();
                tokio::spawn(async move {
                    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((w as u64 + 1) * 0x1000_0001));
                    let mut minted = tokio::time::Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        if minted.elapsed() >= TOKEN_REFRESH {
                            match refreshed(&http, &gateway, &user).await {
                                Some(t) => {
                                    token = t;
                                    minted = tokio::time::Instant::now();
                                }
                                // Told to come back later (the sign-in slots of this one
                                // address are busy): as a client does, after Retry-After.
                                None => continue,
                            }
                        }
                        one_round(&http, &gateway, &token, &plan, &mut rng, &tally).await;
                        tokio::time::sleep(plan.pause).await;
                    }
                })
            })
            .collect();
        Self { stop, tally, tasks }
    }

    /// What was seen so far.
    pub fn tally(&self) -> Tally {
        self.tally
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Stops the clients (each finishes its request) and returns what they saw.
    pub async fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let t = self
            .tally
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        t
    }
}

async fn send(what: &str, req: reqwest::RequestBuilder, tally: &Mutex<Tally>) -> Option<Value> {
    let (status, body) = match req.send().await {
        Ok(r) => {
            let s = r.status().as_u16();
            (s, r.text().await.unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    };
    tally
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .saw(what, status, &body);
    if (200..300).contains(&status) {
        serde_json::from_str(&body).ok()
    } else {
        None
    }
}

async fn one_round(
    http: &reqwest::Client,
    gateway: &str,
    token: &str,
    plan: &Plan,
    rng: &mut Rng,
    tally: &Mutex<Tally>,
) {
    let house = plan.houses[rng.below(plan.houses.len() as u64) as usize];
    let check_in = plan.first_night + chrono::Days::new(rng.below(plan.spread_days));
    let check_out = check_in + chrono::Days::new(1 + rng.below(3));
    let body = json!({"houseId": house, "checkIn": check_in, "checkOut": check_out});
    let req = http
        .post(format!("{gateway}/books"))
        .bearer_auth(token)
        .json(&body);
    let Some(b) = send("POST /books", req, tally).await else {
        return;
    };
    let (Some(id), Some(price)) = (b["id"].as_str(), b["housePrice"].as_i64()) else {
        panic!("a 201 without id and price: {b}");
    };
    tally
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .created
        .push(Created {
            id: id.to_owned(),
            price,
        });
    // A booking whose house decided before it committed is answered decided: one
    // answered REJECTED is over, and a client does not cancel it.
    if rng.below(100) < plan.cancel_percent && b["status"] != "REJECTED" {
        let path = format!("/books/{id}/cancel");
        let req = http.post(format!("{gateway}{path}")).bearer_auth(token);
        if send(&format!("POST {path}"), req, tally).await.is_some() {
            tally
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .cancelled
                .push(id.to_owned());
        }
    }
}

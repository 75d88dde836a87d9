//! The guarantees of SPEC §6 checked against what the services hold, read through the
//! gateway as an admin once traffic has stopped:
//!
//! - I1: every booking answered `201` exists, at the price answered;
//! - I2: no `PAID` payment without a standing booking; every confirmed booking is paid;
//! - I3: no two `CONFIRMED` bookings of a house share a night, and each house's calendar
//!   holds exactly the nights of its confirmed bookings;
//! - I5: total paid − total refunded = the price of the bookings that stand;
//! - I6: the `mypage` view agrees with the sources, row by row;
//! - settled: no booking is left `BOOKED` (every saga finished).
//!
//! Test support (see the crate header): [`converge`] panics when they never hold, which is
//! how a test fails.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use serde_json::Value;

use crate::load::Created;

/// What the services hold.
#[derive(Debug, Default)]
pub struct Sources {
    books: Vec<Value>,
    payments: Vec<Value>,
    calendars: HashMap<i64, Vec<Value>>,
    views: Vec<Value>,
}

/// The figures of a passing check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Bookings by status.
    pub bookings: BTreeMap<String, usize>,
    /// Payments by status.
    pub payments: BTreeMap<String, usize>,
    /// Total taken.
    pub paid: i64,
    /// Total given back.
    pub refunded: i64,
    /// Nights reserved across all houses.
    pub nights: usize,
}

impl Report {
    /// Bookings in `status`.
    pub fn count(&self, status: &str) -> usize {
        self.bookings.get(status).copied().unwrap_or(0)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bookings {:?}; payments {:?}; paid {} − refunded {} = {}; {} nights reserved",
            self.bookings,
            self.payments,
            self.paid,
            self.refunded,
            self.paid - self.refunded,
            self.nights
        )
    }
}

async fn get_all(
    http: &reqwest::Client,
    gateway: &str,
    token: &str,
    path: &str,
) -> Result<Vec<Value>, String> {
    let mut all = Vec::new();
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = format!("{gateway}{path}{sep}limit=1000&offset={}", all.len());
        let r = http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        if !r.status().is_success() {
            return Err(format!("GET {path}: {}", r.status()));
        }
        let page: Vec<Value> = r.json().await.map_err(|e| format!("GET {path}: {e}"))?;
        let n = page.len();
        all.extend(page);
        if n < 1000 {
            return Ok(all);
        }
    }
}

/// Reserved nights in one answer of house's calendar at most (house:
/// `CALENDAR_MAX_NIGHTS`).
const CALENDAR_PAGE: usize = 366;

impl Sources {
    /// Reads everything through the gateway with an admin token.
    pub async fn fetch(gateway: &str, admin: &str, houses: &[i64]) -> Result<Self, String> {
        let http = testkit::http();
        let mut calendars = HashMap::new();
        for h in houses {
            // One answer holds at most a year's worth of nights: page on from the day
            // after the last one.
            let mut nights = Vec::new();
            let mut from = "2000-01-01".to_owned();
            loop {
                let r = http
                    .get(format!("{gateway}/houses/{h}?date={from}"))
                    .bearer_auth(admin)
                    .send()
                    .await
                    .map_err(|e| format!("GET /houses/{h}: {e}"))?;
                let v: Value = r
                    .json()
                    .await
                    .map_err(|e| format!("GET /houses/{h}: {e}"))?;
                let page = v["reservedNights"]
                    .as_array()
                    .cloned()
                    .ok_or_else(|| format!("house {h}: no calendar in {v}"))?;
                let next = page
                    .last()
                    .and_then(|n| n["night"].as_str())
                    .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                    .and_then(|d| d.succ_opt());
                let full = page.len() >= CALENDAR_PAGE;
                nights.extend(page);
                match next {
                    Some(d) if full => from = d.to_string(),
                    _ => break,
                }
            }
            calendars.insert(*h, nights);
        }
        Ok(Self {
            books: get_all(&http, gateway, admin, "/books").await?,
            payments: get_all(&http, gateway, admin, "/payments").await?,
            views: get_all(&http, gateway, admin, "/mypages").await?,
            calendars,
        })
    }

    /// Checks every invariant; the first broken one is the error.
    pub fn check(&self, created: &[Created]) -> Result<Report, String> {
        let s = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
        let books: HashMap<String, &Value> = self.books.iter().map(|b| (s(b, "id"), b)).collect();
        // I1
        for c in created {
            let b = books
                .get(&c.id)
                .ok_or_else(|| format!("I1: booking {} was answered 201 and is gone", c.id))?;
            if b["housePrice"].as_i64() != Some(c.price) {
                return Err(format!(
                    "I1: booking {} answered {} but holds {b}",
                    c.id, c.price
                ));
            }
        }
        let mut by_status = BTreeMap::new();
        for b in &self.books {
            *by_status.entry(s(b, "status")).or_insert(0) += 1;
        }
        if let Some(b) = self.books.iter().find(|b| b["status"] == "BOOKED") {
            return Err(format!("settled: booking still BOOKED: {b}"));
        }
        // I2 and I5
        let mut paid_for: HashMap<String, &Value> = HashMap::new();
        let (mut paid, mut refunded) = (0, 0);
        let mut payments = BTreeMap::new();
        for p in &self.payments {
            let book_id = s(p, "bookId");
            if paid_for.insert(book_id.clone(), p).is_some() {
                return Err(format!("I2: two payments for booking {book_id}"));
            }
            let amount = p["housePrice"].as_i64().unwrap_or_default();
            *payments.entry(s(p, "status")).or_insert(0) += 1;
            paid += amount;
            match p["status"].as_str() {
                Some("PAID") => {
                    let standing = books.get(&book_id).is_some_and(|b| {
                        matches!(b["status"].as_str(), Some("BOOKED" | "CONFIRMED"))
                    });
                    if !standing {
                        return Err(format!("I2: payment without a standing booking: {p}"));
                    }
                }
                Some("PAYMENT_CANCELED") => refunded += amount,
                _ => return Err(format!("payment in an unknown state: {p}")),
            }
        }
        let mut standing_total = 0;
        let mut taken: BTreeSet<(i64, NaiveDate, String)> = BTreeSet::new();
        let mut night_of: HashMap<(i64, NaiveDate), String> = HashMap::new();
        for b in &self.books {
            let id = s(b, "id");
            let status = s(b, "status");
            let payment = paid_for.get(&id).map(|p| s(p, "status"));
            if status == "CONFIRMED" {
                standing_total += b["housePrice"].as_i64().unwrap_or_default();
                if payment.as_deref() != Some("PAID") {
                    return Err(format!("I2: confirmed booking not paid: {b}"));
                }
                let house = b["houseId"].as_i64().unwrap_or_default();
                let parse = |k: &str| {
                    NaiveDate::parse_from_str(&s(b, k), "%Y-%m-%d")
                        .map_err(|e| format!("{k} of {b}: {e}"))
                };
                let (mut night, out) = (parse("checkIn")?, parse("checkOut")?);
                while night < out {
                    if let Some(other) = night_of.insert((house, night), id.clone()) {
                        return Err(format!(
                            "I3: bookings {id} and {other} are both CONFIRMED for house {house} on {night}"
                        ));
                    }
                    taken.insert((house, night, id.clone()));
                    night = night.succ_opt().ok_or("date overflow")?;
                }
            } else if payment.as_deref() == Some("PAID") {
                return Err(format!("I2: {status} booking {id} still paid"));
            }
        }
        if paid - refunded != standing_total {
            return Err(format!(
                "I5: paid {paid} − refunded {refunded} ≠ {standing_total}, the price of the confirmed bookings"
            ));
        }
        // I3: the calendars hold exactly the confirmed nights.
        let mut calendar = BTreeSet::new();
        for (house, nights) in &self.calendars {
            for n in nights {
                let night = NaiveDate::parse_from_str(&s(n, "night"), "%Y-%m-%d")
                    .map_err(|e| format!("calendar of {house}: {e}"))?;
                calendar.insert((*house, night, s(n, "bookId")));
            }
        }
        let houses: BTreeSet<i64> = self.calendars.keys().copied().collect();
        let confirmed: BTreeSet<_> = taken
            .iter()
            .filter(|(h, _, _)| houses.contains(h))
            .cloned()
            .collect();
        if calendar != confirmed {
            let extra: Vec<_> = calendar.difference(&confirmed).take(3).collect();
            let missing: Vec<_> = confirmed.difference(&calendar).take(3).collect();
            return Err(format!(
                "I3: house calendars differ from the confirmed bookings: reserved but not confirmed {extra:?}; confirmed but not reserved {missing:?}"
            ));
        }
        // I6: the view agrees with the sources.
        let views: HashMap<String, &Value> =
            self.views.iter().map(|v| (s(v, "bookId"), v)).collect();
        for b in &self.books {
            let id = s(b, "id");
            let v = views
                .get(&id)
                .ok_or_else(|| format!("I6: no view row for booking {id}"))?;
            let want_payment = paid_for
                .get(&id)
                .map(|p| p["status"].clone())
                .unwrap_or(Value::Null);
            if v["status"] != b["status"]
                || v["paymentStatus"] != want_payment
                || v["housePrice"] != b["housePrice"]
            {
                return Err(format!(
                    "I6: view {v} disagrees with booking {b} / payment {want_payment}"
                ));
            }
        }
        for (id, v) in &views {
            if !books.contains_key(id) {
                let p = paid_for
                    .get(id)
                    .ok_or_else(|| format!("I6: a view row with no source: {v}"))?;
                if v["paymentStatus"] != p["status"] {
                    return Err(format!("I6: view {v} disagrees with payment {p}"));
                }
            }
        }
        Ok(Report {
            bookings: by_status,
            payments,
            paid,
            refunded,
            nights: calendar.len(),
        })
    }
}

/// Waits (up to `secs`) until every invariant holds, and returns the figures; panics with
/// the last broken invariant if they never do.
pub async fn converge(
    gateway: &str,
    admin: &str,
    houses: &[i64],
    created: &[Created],
    secs: u64,
) -> Report {
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let verdict = match Sources::fetch(gateway, admin, houses).await {
            Ok(src) => src.check(created),
            Err(e) => Err(e),
        };
        match verdict {
            Ok(report) => return report,
            Err(e) if tokio::time::Instant::now() >= until => {
                panic!("after {secs}s the invariants still do not hold: {e}")
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
        }
    }
}

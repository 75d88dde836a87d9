//! In-memory fakes of every port, for domain tests that run in milliseconds without a
//! database, a broker or another service. The store keeps what the SQL adapter keeps, and
//! runs one unit of work at a time on a copy (`testkit::fake`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use events::{DomainEvent, EventKey, Stay};
use testkit::fake::{FakeStore, Staged};

use super::models::{BookStatus, Booking, Listing};
use super::ports::{
    BookRepository, BookUnit, BookingFilter, HouseLookupError, Houses, PaymentError,
    PaymentRequest, Payments,
};
use super::saga::{Changes, Claim, HouseDecision, Known, Standing};

/// What the booking store holds.
#[derive(Debug, Default, Clone)]
pub struct Store {
    /// Bookings by id.
    pub bookings: BTreeMap<String, Booking>,
    /// Bookings whose refund is due.
    pub refund_due: BTreeSet<String>,
    /// Listings by house.
    pub listings: HashMap<i64, Listing>,
    /// Who holds each booking id.
    pub claims: HashMap<String, Claim>,
    /// Decisions kept for bookings not committed.
    pub early: HashMap<String, HouseDecision>,
    /// Payments whose booking is not committed, with when they were seen.
    pub unmatched: BTreeMap<String, (i64, DateTime<Utc>)>,
    /// Event ids applied.
    pub inbox: HashSet<String>,
    /// Events published, in order.
    pub outbox: Vec<DomainEvent>,
}

/// The booking store in memory.
#[derive(Clone, Default)]
pub struct FakeBookings {
    store: FakeStore<Store>,
}

impl FakeBookings {
    /// What it holds now.
    pub async fn snapshot(&self) -> Store {
        self.store.snapshot().await
    }

    /// Takes the events published so far.
    pub async fn take_events(&self) -> Vec<DomainEvent> {
        std::mem::take(&mut self.store.lock().await.outbox)
    }
}

#[async_trait]
impl BookRepository for FakeBookings {
    async fn listing(&self, house_id: i64) -> anyhow::Result<Option<Listing>> {
        Ok(self.store.lock().await.listings.get(&house_id).cloned())
    }
    async fn remember_listing(&self, listing: &Listing) -> anyhow::Result<()> {
        let mut s = self.store.lock().await;
        s.listings
            .entry(listing.house_id)
            .or_insert_with(|| listing.clone());
        Ok(())
    }
    async fn get(&self, id: &str) -> anyhow::Result<Option<Booking>> {
        Ok(self.store.lock().await.bookings.get(id).cloned())
    }
    async fn list(&self, f: &BookingFilter) -> anyhow::Result<Vec<Booking>> {
        let s = self.store.lock().await;
        let bookings: Box<dyn Iterator<Item = &Booking>> = match f.order {
            platform::http::Order::Oldest => Box::new(s.bookings.values()),
            platform::http::Order::Newest => Box::new(s.bookings.values().rev()),
        };
        Ok(bookings
            .filter(|b| f.customer_id.as_ref().is_none_or(|c| *c == b.customer_id))
            .filter(|b| f.status.is_none_or(|st| st == b.status))
            .skip(usize::try_from(f.offset)?)
            .take(usize::try_from(f.limit)?)
            .cloned()
            .collect())
    }
    async fn stays_held(&self, customer_id: &str, after: NaiveDate) -> anyhow::Result<Vec<Stay>> {
        let s = self.store.lock().await;
        Ok(s.bookings
            .values()
            .filter(|b| b.customer_id == customer_id && b.stay.check_out() > after)
            .filter(|b| matches!(b.status, BookStatus::Booked | BookStatus::Confirmed))
            .map(|b| b.stay)
            .collect())
    }
    async fn unmatched_payments(&self, before: DateTime<Utc>) -> anyhow::Result<Vec<String>> {
        let s = self.store.lock().await;
        Ok(s.unmatched
            .iter()
            .filter(|(_, (_, seen))| *seen < before)
            .map(|(id, _)| id.clone())
            .collect())
    }
    async fn forget_payment(&self, book_id: &str) -> anyhow::Result<()> {
        self.store.lock().await.unmatched.remove(book_id);
        Ok(())
    }
    async fn refunds_due(&self) -> anyhow::Result<Vec<String>> {
        Ok(self.store.lock().await.refund_due.iter().cloned().collect())
    }
    async fn refund_done(&self, book_id: &str) -> anyhow::Result<()> {
        self.store.lock().await.refund_due.remove(book_id);
        Ok(())
    }
    async fn begin(&self) -> anyhow::Result<Box<dyn BookUnit>> {
        Ok(Box::new(FakeUnit {
            staged: self.store.begin().await,
        }))
    }
}

struct FakeUnit {
    staged: Staged<Store>,
}

#[async_trait]
impl BookUnit for FakeUnit {
    async fn standings(&mut self, ids: &[&str]) -> anyhow::Result<Known> {
        Ok(ids
            .iter()
            .filter_map(|id| {
                self.staged.bookings.get(*id).map(|b| {
                    (
                        b.id.clone(),
                        Standing {
                            status: b.status,
                            house_id: b.house_id,
                        },
                    )
                })
            })
            .collect())
    }
    async fn booking(&mut self, id: &str) -> anyhow::Result<Option<Booking>> {
        Ok(self.staged.bookings.get(id).cloned())
    }
    async fn claim_events(&mut self, keys: &[&EventKey]) -> anyhow::Result<Vec<bool>> {
        Ok(keys
            .iter()
            .map(|k| self.staged.inbox.insert(k.event_id.clone()))
            .collect())
    }
    async fn claim_id(&mut self, book_id: &str, claim: Claim) -> anyhow::Result<Claim> {
        Ok(*self
            .staged
            .claims
            .entry(book_id.to_owned())
            .or_insert(claim))
    }
    async fn early_decision(&mut self, book_id: &str) -> anyhow::Result<Option<HouseDecision>> {
        Ok(self.staged.early.remove(book_id))
    }
    async fn save(&mut self, changes: &Changes) -> anyhow::Result<Vec<bool>> {
        let s = &mut self.staged;
        for b in &changes.booked {
            anyhow::ensure!(
                s.bookings.insert(b.id.clone(), b.clone()).is_none(),
                "booking {} exists",
                b.id
            );
        }
        s.outbox.extend(changes.booked_events());
        for l in &changes.listings {
            s.listings.insert(l.house_id, l.clone());
        }
        let mut moved = Vec::new();
        for t in &changes.transitions {
            let applies = s
                .bookings
                .get(&t.book_id)
                .is_some_and(|b| t.from.contains(&b.status));
            if applies {
                if let Some(b) = s.bookings.remove(&t.book_id) {
                    s.bookings.insert(t.book_id.clone(), t.applied_to(b));
                }
                if t.refund_due {
                    s.refund_due.insert(t.book_id.clone());
                } else {
                    s.refund_due.remove(&t.book_id);
                }
                s.outbox.push(t.event.clone());
            }
            moved.push(applies);
        }
        for (id, d) in &changes.early {
            s.early.entry(id.clone()).or_insert_with(|| d.clone());
        }
        for p in &changes.unmatched {
            s.unmatched
                .entry(p.book_id.clone())
                .or_insert((p.payment_id, p.seen_at));
        }
        for id in &changes.matched {
            s.unmatched.remove(id);
        }
        Ok(moved)
    }
    async fn commit(self: Box<Self>) -> anyhow::Result<()> {
        self.staged.commit();
        Ok(())
    }
}

/// The payment context in memory: pays and refunds, or is unavailable when told.
#[derive(Clone, Default)]
pub struct FakePayments {
    state: Arc<Mutex<PaymentsState>>,
}

/// What [`FakePayments`] saw.
#[derive(Debug, Default, Clone)]
pub struct PaymentsState {
    /// Paid bookings, by id, with their payment id.
    pub paid: BTreeMap<String, i64>,
    /// Refunded bookings, in order (a booking twice if refunded twice).
    pub refunds: Vec<String>,
    /// Whether calls fail as an outage.
    pub down: bool,
}

impl FakePayments {
    fn with<T>(&self, f: impl FnOnce(&mut PaymentsState) -> T) -> T {
        f(&mut self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }
    /// Sets whether payment is down.
    pub fn set_down(&self, down: bool) {
        self.with(|s| s.down = down);
    }
    /// What it saw.
    pub fn state(&self) -> PaymentsState {
        self.with(|s| s.clone())
    }
    fn outage() -> PaymentError {
        PaymentError::Unavailable {
            reason: "down".into(),
            retry_after: Duration::from_secs(1),
        }
    }
}

#[async_trait]
impl Payments for FakePayments {
    async fn pay(&self, request: &PaymentRequest) -> Result<i64, PaymentError> {
        self.with(|s| {
            if s.down {
                return Err(Self::outage());
            }
            let next = i64::try_from(s.paid.len()).unwrap_or(i64::MAX - 1) + 1;
            Ok(*s.paid.entry(request.book_id.clone()).or_insert(next))
        })
    }
    async fn refund(&self, book_id: &str) -> Result<(), PaymentError> {
        self.with(|s| {
            if s.down {
                return Err(Self::outage());
            }
            s.refunds.push(book_id.to_owned());
            Ok(())
        })
    }
}

/// The house context in memory: the listings it answers for.
#[derive(Clone, Default)]
pub struct FakeHouses {
    listings: Arc<Mutex<HashMap<i64, Listing>>>,
}

impl FakeHouses {
    /// Registers a listing.
    pub fn add(&self, listing: Listing) {
        self.listings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(listing.house_id, listing);
    }
}

#[async_trait]
impl Houses for FakeHouses {
    async fn listing(&self, house_id: i64) -> Result<Option<Listing>, HouseLookupError> {
        Ok(self
            .listings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&house_id)
            .cloned())
    }
}

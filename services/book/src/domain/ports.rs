//! What the booking domain needs from the outside world: its store (reads, and units of
//! work that store what the saga decides), the payment context behind a synchronous call,
//! and the house context for a listing not known yet.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use events::{EventKey, Stay};

use super::models::{BookStatus, Booking, Listing};
use super::saga::{Changes, Claim, HouseDecision, Known};

/// Whether an event was applied now or had been applied before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied<T> {
    /// Applied now.
    Now(T),
    /// Its key was already in the inbox: nothing changed.
    Duplicate,
}

/// Which bookings to list.
#[derive(Debug, Clone, Default)]
pub struct BookingFilter {
    /// Only this customer's.
    pub customer_id: Option<String>,
    /// Only those in this status.
    pub status: Option<BookStatus>,
    /// Page size.
    pub limit: i64,
    /// Page start.
    pub offset: i64,
    /// By id (which grows with time): oldest or newest first.
    pub order: platform::http::Order,
}

/// Booking storage: reads, and units of work for every change.
#[async_trait]
pub trait BookRepository: Send + Sync + 'static {
    /// A listing.
    async fn listing(&self, house_id: i64) -> anyhow::Result<Option<Listing>>;
    /// Keeps a listing house answered for directly, unless `HouseRegistered` brought one
    /// first (the event's copy is never overwritten by this).
    async fn remember_listing(&self, listing: &Listing) -> anyhow::Result<()>;
    /// One booking.
    async fn get(&self, id: &str) -> anyhow::Result<Option<Booking>>;
    /// Bookings, oldest first.
    async fn list(&self, filter: &BookingFilter) -> anyhow::Result<Vec<Booking>>;
    /// The stays of a customer's bookings that stand (`BOOKED`, `CONFIRMED`) and end after
    /// `after`: what they hold ahead.
    async fn stays_held(&self, customer_id: &str, after: NaiveDate) -> anyhow::Result<Vec<Stay>>;
    /// Booking ids of payments seen before `before` whose booking never committed.
    async fn unmatched_payments(&self, before: DateTime<Utc>) -> anyhow::Result<Vec<String>>;
    /// Forgets an unmatched payment (refunded, or its booking turned up).
    async fn forget_payment(&self, book_id: &str) -> anyhow::Result<()>;
    /// Rejected or cancelled bookings whose refund has not gone through yet.
    async fn refunds_due(&self) -> anyhow::Result<Vec<String>>;
    /// Marks a booking's refund done.
    async fn refund_done(&self, book_id: &str) -> anyhow::Result<()>;
    /// Opens a unit of work: one transaction, committed by [`BookUnit::commit`] and rolled
    /// back when dropped without it.
    async fn begin(&self) -> anyhow::Result<Box<dyn BookUnit>>;
}

/// One transaction over the booking store. It reads what the saga's rules need and stores
/// what they decide ([`Changes`]) — state, events and inbox rows together. It decides
/// nothing itself.
#[async_trait]
pub trait BookUnit: Send {
    /// Where the named bookings stand, of those committed. A booking not found stays not
    /// committed until this unit ends: its commit, if one is in progress, is waited for
    /// and seen, or waits for this unit.
    async fn standings(&mut self, ids: &[&str]) -> anyhow::Result<Known>;
    /// One booking, as [`Self::standings`] holds it.
    async fn booking(&mut self, id: &str) -> anyhow::Result<Option<Booking>>;
    /// Claims consumed events by key, in order: `false` for one claimed before (a
    /// duplicate, to skip).
    async fn claim_events(&mut self, keys: &[&EventKey]) -> anyhow::Result<Vec<bool>>;
    /// Claims a booking id; returns who holds it afterwards (the first claim, for good).
    async fn claim_id(&mut self, book_id: &str, claim: Claim) -> anyhow::Result<Claim>;
    /// The house's decision kept for a booking before it committed.
    async fn early_decision(&mut self, book_id: &str) -> anyhow::Result<Option<HouseDecision>>;
    /// Stores changes; returns, for each transition in order, whether it applied (the
    /// store found its booking in a status it may leave). Only those publish their event.
    async fn save(&mut self, changes: &Changes) -> anyhow::Result<Vec<bool>>;
    /// Commits everything saved.
    async fn commit(self: Box<Self>) -> anyhow::Result<()>;
}

/// What `book` sends to `payment`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest {
    /// The booking (payment's idempotency key).
    pub book_id: String,
    /// The house.
    pub house_id: i64,
    /// Who pays.
    pub customer_id: String,
    /// Total.
    pub amount: i64,
    /// The stay.
    pub stay: events::Stay,
}

/// Why the payment context could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// Down, slow or failing, or the circuit is open: try again later.
    #[error("payment unavailable: {reason}")]
    Unavailable {
        /// What happened.
        reason: String,
        /// When to try again.
        retry_after: Duration,
    },
    /// Payment refused the request itself (a bug on our side, not an outage).
    #[error("payment refused the request: {0}")]
    Refused(String),
}

/// The payment context, called synchronously (SPEC §2: booking and payment together).
#[async_trait]
pub trait Payments: Send + Sync + 'static {
    /// Pays for a booking (idempotent on its id); returns the payment id.
    async fn pay(&self, request: &PaymentRequest) -> Result<i64, PaymentError>;
    /// Refunds a booking's payment (idempotent); a booking with no payment is fine.
    async fn refund(&self, book_id: &str) -> Result<(), PaymentError>;
}

/// Why the house context could not say whether a house exists.
#[derive(Debug, thiserror::Error)]
pub enum HouseLookupError {
    /// Down, slow or failing: try again later.
    #[error("house unavailable: {reason}")]
    Unavailable {
        /// What happened.
        reason: String,
        /// When to try again.
        retry_after: Duration,
    },
}

/// The house context, asked synchronously for a listing book's copy does not have yet
/// (read-your-writes: a house can be booked as soon as its registration was answered).
#[async_trait]
pub trait Houses: Send + Sync + 'static {
    /// The house's listing; `None` if house has no such house.
    async fn listing(&self, house_id: i64) -> Result<Option<Listing>, HouseLookupError>;
}

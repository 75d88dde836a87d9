//! What the booking domain needs from the outside world: its store, and the payment
//! context behind a synchronous call.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use events::EventKey;

use super::models::{BookStatus, Booking, InvalidTransition, Listing};

/// Whether an event was applied now or had been applied before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied<T> {
    /// Applied now.
    Now(T),
    /// Its key was already in the inbox: nothing changed.
    Duplicate,
}

/// The house's answer for a booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HouseDecision {
    /// Nights reserved.
    Rented,
    /// Refused, with the house's reason.
    Rejected(String),
}

/// An event the booking context consumes, as the domain sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumed {
    /// `HouseRegistered`: a listing to keep.
    Listing(Listing),
    /// `HouseRented` / `HouseRentRejected` for a booking.
    Decision {
        /// The booking.
        book_id: String,
        /// What house decided.
        decision: HouseDecision,
    },
    /// `Paid` for a booking.
    Paid {
        /// The booking.
        book_id: String,
        /// The payment.
        payment_id: i64,
    },
    /// `PaymentCanceled`: the booking's payment was refunded.
    Refunded {
        /// The booking.
        book_id: String,
    },
}

/// Why a cancel could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    /// No such booking.
    #[error("no booking {0}")]
    NotFound(String),
    /// Its status does not allow it (e.g. cancelled already).
    #[error(transparent)]
    Invalid(#[from] InvalidTransition),
    /// Anything else.
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
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
}

/// Booking storage. Each write commits the change with its events (and, for consumed
/// events, the inbox row) in one transaction.
#[async_trait]
pub trait BookRepository: Send + Sync + 'static {
    /// A listing.
    async fn listing(&self, house_id: i64) -> anyhow::Result<Option<Listing>>;
    /// Keeps a listing house answered for directly, unless `HouseRegistered` brought one
    /// first (the event's copy is never overwritten by this).
    async fn remember_listing(&self, listing: &Listing) -> anyhow::Result<()>;
    /// Commits a paid booking as `BOOKED` with `Booked`; applies a house decision that
    /// arrived before it; clears it from the unmatched payments.
    async fn insert_booked(&self, booking: &Booking) -> Result<Booking, InsertBookedError>;
    /// One booking.
    async fn get(&self, id: &str) -> anyhow::Result<Option<Booking>>;
    /// Bookings, oldest first.
    async fn list(&self, filter: &BookingFilter) -> anyhow::Result<Vec<Booking>>;
    /// Applies consumed events in order, each effectively once, all in one transaction:
    /// a listing (`HouseRegistered`) is stored or updated; a house decision moves a
    /// `BOOKED` booking to `CONFIRMED` (`BookConfirmed`) or `REJECTED` (`BookRejected`,
    /// with a refund due), or is kept for a booking not committed yet; a `Paid` whose
    /// booking is not known (yet) is recorded for the reconciler; a refund (`PaymentCanceled`)
    /// under a booking that still stands (`BOOKED`, `CONFIRMED`) cancels it
    /// (`BookCanceled`, nothing left to refund): a booking never stands on a refunded
    /// payment, whoever refunded it.
    async fn apply_events(
        &self,
        events: &[(EventKey, Consumed)],
    ) -> anyhow::Result<Vec<Applied<()>>>;
    /// Moves a booking to `BOOK_CANCELED` with `BookCanceled`.
    async fn cancel(&self, id: &str, at: DateTime<Utc>) -> Result<Booking, CancelError>;
    /// Booking ids of payments seen before `before` whose booking never committed.
    async fn unmatched_payments(&self, before: DateTime<Utc>) -> anyhow::Result<Vec<String>>;
    /// Gives up on a booking id whose payment is to be refunded: `false` if its booking
    /// committed (or is committing) first; `true` again for an id given up before (its
    /// refund may have failed and be tried again). A booking cannot commit after this.
    async fn abandon(&self, book_id: &str) -> anyhow::Result<bool>;
    /// Forgets an unmatched payment (refunded, or its booking turned up).
    async fn forget_payment(&self, book_id: &str) -> anyhow::Result<()>;
    /// Rejected or cancelled bookings whose refund has not gone through yet.
    async fn refunds_due(&self) -> anyhow::Result<Vec<String>>;
    /// Marks a booking's refund done.
    async fn refund_done(&self, book_id: &str) -> anyhow::Result<()>;
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

/// Why [`BookRepository::insert_booked`] stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum InsertBookedError {
    /// The booking came too late: the reconciler had given up on its id and refunds its
    /// payment.
    #[error("the reconciler gave up on this booking before it committed")]
    Abandoned,
    /// The store failed.
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

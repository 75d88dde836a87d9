//! What the payment domain needs from the outside world: its store — reads, and units of
//! work that store what the aggregate decides with its events.

use async_trait::async_trait;

use chrono::{DateTime, Utc};
use events::DomainEvent;

use super::models::{NewPayment, Payment};

/// Which payments to list.
#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    /// Only this customer's.
    pub customer_id: Option<String>,
    /// Only this booking's.
    pub book_id: Option<String>,
    /// Page size.
    pub limit: i64,
    /// Page start.
    pub offset: i64,
    /// By id (which grows with time): oldest or newest first.
    pub order: platform::http::Order,
}

/// How a payment is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentKey<'a> {
    /// By its id.
    Id(i64),
    /// By its booking (one payment per booking).
    Book(&'a str),
}

/// Payment storage: reads, and units of work for every change.
#[async_trait]
pub trait PaymentRepository: Send + Sync + 'static {
    /// One payment.
    async fn get(&self, key: PaymentKey<'_>) -> anyhow::Result<Option<Payment>>;
    /// Payments, oldest first.
    async fn list(&self, filter: &PaymentFilter) -> anyhow::Result<Vec<Payment>>;
    /// Opens a unit of work: one transaction, committed by [`PaymentUnit::commit`] and
    /// rolled back when dropped without it.
    async fn begin(&self) -> anyhow::Result<Box<dyn PaymentUnit>>;
}

/// One transaction over the payment store: it reads, and stores what the aggregate
/// decided with the events it publishes; it decides nothing itself.
#[async_trait]
pub trait PaymentUnit: Send {
    /// One payment.
    async fn payment(&mut self, key: PaymentKey<'_>) -> anyhow::Result<Option<Payment>>;
    /// Stores a new payment, `PAID` at `at`, and returns its id; `None` when its booking
    /// has a payment already (a concurrent request stored it first; the unit is spent).
    async fn insert(&mut self, new: &NewPayment, at: DateTime<Utc>) -> anyhow::Result<Option<i64>>;
    /// Stores a refund; `false` when the payment was no longer `PAID` (a concurrent
    /// refund committed first; nothing stored).
    async fn refund(&mut self, refunded: &Payment) -> anyhow::Result<bool>;
    /// Adds events to publish, in order.
    async fn publish(&mut self, events: &[DomainEvent]) -> anyhow::Result<()>;
    /// Commits everything stored.
    async fn commit(self: Box<Self>) -> anyhow::Result<()>;
}

//! What the view needs from its store.

use async_trait::async_trait;
use events::{DomainEvent, EventKey, Stay};

use super::models::{Availability, BookingView};

/// Whether an event was applied now or had been applied before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Applied now.
    Now,
    /// Its key was already in the inbox: nothing changed.
    Duplicate,
}

/// The view's storage.
#[async_trait]
pub trait ViewRepository: Send + Sync + 'static {
    /// Folds events into the view in order, each with its inbox row, all in one
    /// transaction: all of them or none.
    async fn apply_all(&self, events: &[(EventKey, DomainEvent)]) -> anyhow::Result<Vec<Applied>>;
    /// One row.
    async fn get(&self, book_id: &str) -> anyhow::Result<Option<BookingView>>;
    /// Rows, of one customer or all, oldest booking first.
    async fn list(
        &self,
        customer: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> anyhow::Result<Vec<BookingView>>;
    /// A house's taken nights during a stay; `None` for an unknown house.
    async fn availability(
        &self,
        house_id: i64,
        stay: &Stay,
    ) -> anyhow::Result<Option<Availability>>;
    /// Empties the view and its inbox (before a rebuild).
    async fn clear(&self) -> anyhow::Result<()>;
}

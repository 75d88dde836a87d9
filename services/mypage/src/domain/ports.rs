//! What the view needs from its store: reads, and units of work that store what the
//! view's rules ([`super::view`]) made of a batch.

use async_trait::async_trait;
use events::{EventKey, Stay};

use super::models::{Availability, BookingView};
use super::view::Changes;

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
    /// Opens a unit of work: one transaction, committed by [`ViewUnit::commit`] and rolled
    /// back when dropped without it.
    async fn begin(&self) -> anyhow::Result<Box<dyn ViewUnit>>;
    /// One row.
    async fn get(&self, book_id: &str) -> anyhow::Result<Option<BookingView>>;
    /// Rows, of one customer or all, by booking id (which grows with time), in `order`.
    async fn list(
        &self,
        customer: Option<&str>,
        limit: i64,
        offset: i64,
        order: platform::http::Order,
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

/// One transaction over the view: it reads the rows a batch names and stores what the
/// view's rules made of them ([`Changes`]) with the inbox rows; it decides nothing itself.
#[async_trait]
pub trait ViewUnit: Send {
    /// Claims consumed events by key, in order: `false` for one claimed before (a
    /// duplicate, to skip).
    async fn claim_events(&mut self, keys: &[&EventKey]) -> anyhow::Result<Vec<bool>>;
    /// The stored rows of the named bookings.
    async fn rows(&mut self, book_ids: &[&str]) -> anyhow::Result<Vec<BookingView>>;
    /// Stores what a batch changed.
    async fn save(&mut self, changes: &Changes) -> anyhow::Result<()>;
    /// Commits everything saved.
    async fn commit(self: Box<Self>) -> anyhow::Result<()>;
}

//! What the notification context needs from storage.

use std::collections::HashMap;

use async_trait::async_trait;
use events::{DomainEvent, EventKey};
use platform::http::Order;

use super::models::{Changes, Cursor, Notification};

/// One event to apply: its key, when it happened, what it says.
pub type Item = (EventKey, chrono::DateTime<chrono::Utc>, DomainEvent);

/// Whether an event was applied now or had been applied before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Applied now.
    Now,
    /// Its key was already in the inbox: nothing changed.
    Duplicate,
}

/// The store of messages and booking owners.
#[async_trait]
pub trait NotificationStore: Send + Sync + 'static {
    /// Messages of one customer (`Some`) or of all, by when they happened, in `order`.
    async fn list(
        &self,
        customer: Option<&str>,
        limit: i64,
        offset: i64,
        order: Order,
    ) -> anyhow::Result<Vec<Notification>>;
    /// Messages of one customer (`Some`) or of all stored, or given their owner, after
    /// `after`, in feed order, each with its own place, at most `limit`.
    async fn feed(
        &self,
        customer: Option<&str>,
        after: &Cursor,
        limit: i64,
    ) -> anyhow::Result<Vec<(Cursor, Notification)>>;
    /// The feed's end now: where a reader who wants only what comes next starts.
    async fn feed_head(&self) -> anyhow::Result<Cursor>;
    /// Opens a unit of work: one transaction, committed by [`NotificationUnit::commit`]
    /// and rolled back when dropped without it.
    async fn begin(&self) -> anyhow::Result<Box<dyn NotificationUnit>>;
}

/// One transaction over the store: it reads the owners a batch needs and stores what the
/// rules made of the batch ([`Changes`]) with the inbox rows; it decides nothing itself.
#[async_trait]
pub trait NotificationUnit: Send {
    /// Claims consumed events by key, in order: `false` for one claimed before.
    async fn claim_events(&mut self, keys: &[&EventKey]) -> anyhow::Result<Vec<bool>>;
    /// The stored owners of the named bookings.
    async fn owners(&mut self, book_ids: &[&str]) -> anyhow::Result<HashMap<String, String>>;
    /// Stores owners and messages; the messages of a booking stored without an owner get
    /// the owner learnt now. What it stores or changes is numbered for the live feed
    /// after everything committed before it.
    async fn save(&mut self, changes: &Changes) -> anyhow::Result<()>;
    /// Commits everything saved.
    async fn commit(self: Box<Self>) -> anyhow::Result<()>;
}

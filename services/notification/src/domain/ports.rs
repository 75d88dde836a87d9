//! What the notification context needs from storage.

use async_trait::async_trait;
use events::{DomainEvent, EventKey};
use platform::consumer::Handled;

use super::models::Notification;

/// One event to apply: its key, when it happened, what it says.
pub type Item = (EventKey, chrono::DateTime<chrono::Utc>, DomainEvent);

/// The store of messages and booking owners.
#[async_trait]
pub trait NotificationStore: Send + Sync + 'static {
    /// Applies events in order, all or none, each effectively once (its inbox row with
    /// it): the owner an event names is remembered, the message it makes is kept.
    async fn apply_all(&self, items: &[Item]) -> anyhow::Result<Vec<Handled>>;
    /// Messages of one customer (`Some`) or of all, oldest first.
    async fn list(
        &self,
        customer: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> anyhow::Result<Vec<Notification>>;
}

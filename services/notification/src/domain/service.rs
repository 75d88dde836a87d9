//! The use cases: apply what arrived, and show a reader the messages they may see.

use std::sync::Arc;

use events::EventKey;
use platform::auth::Actor;

use super::models::{book_id, Batch, Notification};
use super::ports::{Applied, Item, NotificationStore};

/// Notifications over a store.
#[derive(Clone)]
pub struct NotificationService {
    store: Arc<dyn NotificationStore>,
}

impl NotificationService {
    /// A service over its store.
    pub fn new(store: Arc<dyn NotificationStore>) -> Self {
        Self { store }
    }

    /// Applies a batch of events by the rules ([`Batch`]), in order, all or none, each
    /// effectively once.
    pub async fn apply(&self, items: &[Item]) -> anyhow::Result<Vec<Applied>> {
        let mut unit = self.store.begin().await?;
        let keys: Vec<&EventKey> = items.iter().map(|(k, _, _)| k).collect();
        let claimed = unit.claim_events(&keys).await?;
        let named: Vec<&str> = items
            .iter()
            .zip(&claimed)
            .filter(|(_, c)| **c)
            .filter_map(|((_, _, e), _)| book_id(e))
            .collect();
        let mut batch = Batch::new(unit.owners(&named).await?);
        let mut out = Vec::with_capacity(items.len());
        for ((key, at, event), claimed) in items.iter().zip(claimed) {
            if claimed {
                batch.apply(&key.event_id, *at, event);
                out.push(Applied::Now);
            } else {
                out.push(Applied::Duplicate);
            }
        }
        unit.save(&batch.into_changes()).await?;
        unit.commit().await?;
        Ok(out)
    }

    /// The messages `reader` may see, oldest first: their own, or all for an admin.
    pub async fn list(
        &self,
        reader: &Actor,
        limit: i64,
        offset: i64,
    ) -> anyhow::Result<Vec<Notification>> {
        self.store.list(reader.only_own(), limit, offset).await
    }
}

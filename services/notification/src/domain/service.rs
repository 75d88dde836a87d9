//! The use cases: apply what arrived, and show a reader the messages they may see.

use std::sync::Arc;
use std::time::Duration;

use events::EventKey;
use platform::auth::Actor;
use platform::http::Order;
use platform::shutdown::CancellationToken;
use tokio::sync::watch;

use super::models::{book_id, Batch, Cursor, Notification};
use super::ports::{Applied, Item, NotificationStore};

/// Notifications over a store.
#[derive(Clone)]
pub struct NotificationService {
    store: Arc<dyn NotificationStore>,
    /// Changes whenever the feed may have grown: a unit of work of this process
    /// committed, or [`Self::watch_feed`] saw another replica's.
    grown: Arc<watch::Sender<u64>>,
}

impl NotificationService {
    /// A service over its store.
    pub fn new(store: Arc<dyn NotificationStore>) -> Self {
        Self {
            store,
            grown: Arc::new(watch::channel(0).0),
        }
    }

    /// A signal that changes whenever the feed may have grown.
    pub fn feed_signal(&self) -> watch::Receiver<u64> {
        self.grown.subscribe()
    }

    fn signal_growth(&self) {
        self.grown.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Until `stop`: every `every`, while anyone is reading the feed, looks at its end and
    /// signals when it moved (units of work committed by another replica).
    pub fn watch_feed(&self, every: Duration, stop: CancellationToken) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut seen = None;
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
                if this.grown.receiver_count() == 0 {
                    seen = None;
                    continue;
                }
                match this.store.feed_head().await {
                    // The first look too: a reader that read just before it may have
                    // missed a commit of another replica; waking it for nothing costs a
                    // read.
                    Ok(head) if seen.as_ref() != Some(&head) => {
                        this.signal_growth();
                        seen = Some(head);
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not read the feed's end"),
                }
            }
        });
    }

    /// What `reader` may see of the feed after `after`, oldest first, at most `limit`.
    pub async fn feed(
        &self,
        reader: &Actor,
        after: &Cursor,
        limit: i64,
    ) -> anyhow::Result<Vec<(Cursor, Notification)>> {
        self.store.feed(reader.only_own(), after, limit).await
    }

    /// The feed's end now.
    pub async fn feed_head(&self) -> anyhow::Result<Cursor> {
        self.store.feed_head().await
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
        let changes = batch.into_changes();
        unit.save(&changes).await?;
        unit.commit().await?;
        if !changes.messages.is_empty() || !changes.owners.is_empty() {
            self.signal_growth();
        }
        Ok(out)
    }

    /// The messages `reader` may see, in `order`: their own, or all for an admin.
    pub async fn list(
        &self,
        reader: &Actor,
        limit: i64,
        offset: i64,
        order: Order,
    ) -> anyhow::Result<Vec<Notification>> {
        self.store
            .list(reader.only_own(), limit, offset, order)
            .await
    }
}

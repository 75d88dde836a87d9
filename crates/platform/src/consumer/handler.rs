//! What a service's inbound event adapter is: a handler of one event, or of a batch
//! applied in one transaction.

use async_trait::async_trait;
use events::Envelope;

/// What a handler did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Its change committed.
    Applied,
    /// Its `eventId` was already in the inbox; nothing changed.
    Duplicate,
}

/// Why a handler failed.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Retrying cannot help (the payload does not fit the contract): park it now.
    #[error("permanent: {0}")]
    Permanent(String),
    /// Retrying may help (the database was unavailable).
    #[error("transient: {0:#}")]
    Transient(#[from] anyhow::Error),
}

/// A service's inbound event adapter.
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// The event types it consumes; every other type is skipped.
    fn handles(&self) -> &'static [&'static str];
    /// Applies one event effectively once.
    async fn handle(&self, envelope: &Envelope) -> Result<Handled, HandleError>;
    /// Applies several events (all of a type it handles) in order, effectively once each,
    /// all or none — one transaction instead of one each. `None`: this adapter applies one
    /// event at a time. On an error nothing of the batch may have been applied; the loop
    /// then handles its events one by one, with the usual retries and dead-lettering.
    async fn handle_batch(
        &self,
        _envelopes: &[Envelope],
    ) -> Option<Result<Vec<Handled>, HandleError>> {
        None
    }
}

/// An inbound event adapter whose store applies a batch of events in one transaction: it
/// reads each envelope into what its domain consumes, and applies a slice of those, all
/// or none. Every `BatchHandler` is an [`EventHandler`] (one event is a batch of one).
#[async_trait]
pub trait BatchHandler: Send + Sync + 'static {
    /// What one event means to the domain.
    type Item: Send + Sync + 'static;
    /// The event types it consumes; every other type is skipped.
    fn handles(&self) -> &'static [&'static str];
    /// Reads one envelope; an event that does not fit the contract is [`HandleError::Permanent`].
    fn read(&self, envelope: &Envelope) -> Result<Self::Item, HandleError>;
    /// Applies items in order, effectively once each, in one transaction; one outcome each.
    async fn apply(&self, items: &[Self::Item]) -> anyhow::Result<Vec<Handled>>;
}

#[async_trait]
impl<B: BatchHandler> EventHandler for B {
    fn handles(&self) -> &'static [&'static str] {
        BatchHandler::handles(self)
    }

    async fn handle(&self, envelope: &Envelope) -> Result<Handled, HandleError> {
        let one = [self.read(envelope)?];
        self.apply(&one)
            .await?
            .pop()
            .ok_or_else(|| HandleError::Transient(anyhow::anyhow!("the store applied nothing")))
    }

    async fn handle_batch(
        &self,
        envelopes: &[Envelope],
    ) -> Option<Result<Vec<Handled>, HandleError>> {
        let items: Result<Vec<_>, _> = envelopes.iter().map(|e| self.read(e)).collect();
        Some(match items {
            Ok(items) => self.apply(&items).await.map_err(HandleError::Transient),
            Err(e) => Err(e),
        })
    }
}

/// The most messages handed to [`EventHandler::handle_batch`] at once: what has already
/// arrived, never waiting for more.
pub const MAX_BATCH: usize = 256;

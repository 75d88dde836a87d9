//! Reads the events it needs and applies a batch of them in one transaction.

use async_trait::async_trait;
use events::{Envelope, EventKey};
use platform::consumer::{BatchHandler, HandleError, Handled};

use crate::domain::ports::{Applied, Item};
use crate::domain::service::NotificationService;
use crate::domain::CONSUMES;

/// The event adapter.
pub struct NotificationEvents {
    service: NotificationService,
}

impl NotificationEvents {
    /// An adapter over the service.
    pub fn new(service: NotificationService) -> Self {
        Self { service }
    }
}

#[async_trait]
impl BatchHandler for NotificationEvents {
    type Item = Item;

    fn handles(&self) -> &'static [&'static str] {
        CONSUMES
    }

    fn read(&self, envelope: &Envelope) -> Result<Self::Item, HandleError> {
        let event = envelope
            .decode()
            .map_err(|e| HandleError::Permanent(e.to_string()))?;
        Ok((EventKey::of(envelope), envelope.occurred_at, event))
    }

    async fn apply(&self, items: &[Self::Item]) -> anyhow::Result<Vec<Handled>> {
        let done = self.service.apply(items).await?;
        Ok(done
            .into_iter()
            .map(|a| match a {
                Applied::Now => Handled::Applied,
                Applied::Duplicate => Handled::Duplicate,
            })
            .collect())
    }
}

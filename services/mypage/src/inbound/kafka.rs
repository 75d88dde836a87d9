//! Folds every event of the catalog into the view.

use async_trait::async_trait;
use events::{DomainEvent, Envelope, EventKey, EVENT_TYPES};
use platform::consumer::{BatchHandler, HandleError, Handled};

use crate::domain::ports::Applied;
use crate::domain::service::ViewService;

fn handled(a: Applied) -> Handled {
    match a {
        Applied::Now => Handled::Applied,
        Applied::Duplicate => Handled::Duplicate,
    }
}

/// The view's event adapter: a batch of events is folded in one transaction.
pub struct ViewEvents {
    service: ViewService,
}

impl ViewEvents {
    /// An adapter over the view service.
    pub fn new(service: ViewService) -> Self {
        Self { service }
    }
}

#[async_trait]
impl BatchHandler for ViewEvents {
    type Item = (EventKey, DomainEvent);

    fn handles(&self) -> &'static [&'static str] {
        EVENT_TYPES
    }

    fn read(&self, envelope: &Envelope) -> Result<Self::Item, HandleError> {
        let event = envelope
            .decode()
            .map_err(|e| HandleError::Permanent(e.to_string()))?;
        Ok((EventKey::of(envelope), event))
    }

    async fn apply(&self, items: &[Self::Item]) -> anyhow::Result<Vec<Handled>> {
        let done = self.service.apply_all(items).await?;
        Ok(done.into_iter().map(handled).collect())
    }
}

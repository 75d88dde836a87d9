//! Folds every event of the catalog into the view.

use async_trait::async_trait;
use events::{Envelope, EventKey, EVENT_TYPES};
use platform::consumer::{EventHandler, HandleError, Handled};

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
impl EventHandler for ViewEvents {
    fn handles(&self) -> &'static [&'static str] {
        EVENT_TYPES
    }

    async fn handle(&self, envelope: &Envelope) -> Result<Handled, HandleError> {
        let event = envelope
            .decode()
            .map_err(|e| HandleError::Permanent(e.to_string()))?;
        Ok(handled(
            self.service.apply(&EventKey::of(envelope), &event).await?,
        ))
    }

    async fn handle_batch(
        &self,
        envelopes: &[Envelope],
    ) -> Option<Result<Vec<Handled>, HandleError>> {
        let decoded: Result<Vec<_>, HandleError> = envelopes
            .iter()
            .map(|e| {
                e.decode()
                    .map(|event| (EventKey::of(e), event))
                    .map_err(|err| HandleError::Permanent(err.to_string()))
            })
            .collect();
        let result = match decoded {
            Ok(events) => self
                .service
                .apply_all(&events)
                .await
                .map(|a| a.into_iter().map(handled).collect())
                .map_err(HandleError::Transient),
            Err(e) => Err(e),
        };
        Some(result)
    }
}

//! Folds every event of the catalog into the view.

use async_trait::async_trait;
use events::{Envelope, EventKey, EVENT_TYPES};
use platform::consumer::{EventHandler, HandleError, Handled};

use crate::domain::ports::Applied;
use crate::domain::service::ViewService;

/// The view's event adapter.
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
        match self.service.apply(&EventKey::of(envelope), &event).await? {
            Applied::Now => Ok(Handled::Applied),
            Applied::Duplicate => Ok(Handled::Duplicate),
        }
    }
}

//! The house's event adapter: `Paid` reserves, `PaymentCanceled` / `BookCanceled` release.

use async_trait::async_trait;
use events::{DomainEvent, Envelope, EventKey, Stay};
use platform::consumer::{EventHandler, HandleError, Handled};

use crate::domain::models::Reservation;
use crate::domain::ports::Applied;
use crate::domain::service::HouseService;

/// Applies the events the house context consumes.
pub struct HouseEvents {
    service: HouseService,
}

impl HouseEvents {
    /// An adapter over the domain service.
    pub fn new(service: HouseService) -> Self {
        Self { service }
    }
}

fn handled<T>(a: Applied<T>) -> Handled {
    match a {
        Applied::Now(_) => Handled::Applied,
        Applied::Duplicate => Handled::Duplicate,
    }
}

#[async_trait]
impl EventHandler for HouseEvents {
    fn handles(&self) -> &'static [&'static str] {
        &["Paid", "PaymentCanceled", "BookCanceled"]
    }

    async fn handle(&self, envelope: &Envelope) -> Result<Handled, HandleError> {
        let key = EventKey::of(envelope);
        let event = envelope
            .decode()
            .map_err(|e| HandleError::Permanent(e.to_string()))?;
        match event {
            DomainEvent::Paid(p) => {
                let r = Reservation {
                    book_id: p.book_id,
                    house_id: p.house_id,
                    stay: Stay::new(p.check_in, p.check_out).ok(),
                };
                Ok(handled(self.service.reserve(&key, &r).await?))
            }
            DomainEvent::PaymentCanceled(p) => {
                Ok(handled(self.service.release(&key, &p.book_id).await?))
            }
            DomainEvent::BookCanceled(b) => {
                Ok(handled(self.service.release(&key, &b.book_id).await?))
            }
            other => Err(HandleError::Permanent(format!(
                "not handled here: {other:?}"
            ))),
        }
    }
}

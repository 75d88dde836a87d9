//! The house's event adapter: `Paid` reserves, `PaymentCanceled` / `BookCanceled` release;
//! a batch of them is carried out in one transaction.

use async_trait::async_trait;
use events::{DomainEvent, Envelope, EventKey, Stay};
use platform::consumer::{BatchHandler, HandleError, Handled};

use crate::domain::models::Reservation;
use crate::domain::ports::{Applied, Command};
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

/// The command an event carries.
fn command(envelope: &Envelope) -> Result<(EventKey, Command), HandleError> {
    let event = envelope
        .decode()
        .map_err(|e| HandleError::Permanent(e.to_string()))?;
    let command = match event {
        DomainEvent::Paid(p) => Command::Reserve(Reservation {
            book_id: p.book_id,
            house_id: p.house_id,
            stay: Stay::new(p.check_in, p.check_out).ok(),
        }),
        DomainEvent::PaymentCanceled(p) => Command::Release(p.book_id),
        DomainEvent::BookCanceled(b) => Command::Release(b.book_id),
        other => {
            return Err(HandleError::Permanent(format!(
                "not handled here: {other:?}"
            )))
        }
    };
    Ok((EventKey::of(envelope), command))
}

#[async_trait]
impl BatchHandler for HouseEvents {
    type Item = (EventKey, Command);

    fn handles(&self) -> &'static [&'static str] {
        &["Paid", "PaymentCanceled", "BookCanceled"]
    }

    fn read(&self, envelope: &Envelope) -> Result<Self::Item, HandleError> {
        command(envelope)
    }

    async fn apply(&self, items: &[Self::Item]) -> anyhow::Result<Vec<Handled>> {
        let done = self.service.apply_all(items).await?;
        Ok(done.into_iter().map(handled).collect())
    }
}

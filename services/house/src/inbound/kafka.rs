//! The house's event adapter: `Paid` reserves, `PaymentCanceled` / `BookCanceled` release;
//! a batch of them is carried out in one transaction.

use async_trait::async_trait;
use events::{DomainEvent, Envelope, EventKey, Stay};
use platform::consumer::{EventHandler, HandleError, Handled};

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
impl EventHandler for HouseEvents {
    fn handles(&self) -> &'static [&'static str] {
        &["Paid", "PaymentCanceled", "BookCanceled"]
    }

    async fn handle(&self, envelope: &Envelope) -> Result<Handled, HandleError> {
        let one = [command(envelope)?];
        let mut done = self.service.apply_all(&one).await?;
        done.pop()
            .map(handled)
            .ok_or_else(|| HandleError::Transient(anyhow::anyhow!("the store applied nothing")))
    }

    async fn handle_batch(
        &self,
        envelopes: &[Envelope],
    ) -> Option<Result<Vec<Handled>, HandleError>> {
        let commands: Result<Vec<_>, _> = envelopes.iter().map(command).collect();
        Some(match commands {
            Ok(c) => self
                .service
                .apply_all(&c)
                .await
                .map(|done| done.into_iter().map(handled).collect())
                .map_err(HandleError::Transient),
            Err(e) => Err(e),
        })
    }
}

//! The booking's event adapter: listings, the house's answers, and payments to match; a
//! batch of them is applied in one transaction.

use async_trait::async_trait;
use events::{DomainEvent, Envelope, EventKey};
use platform::consumer::{EventHandler, HandleError, Handled};

use crate::domain::models::Listing;
use crate::domain::ports::{Applied, Consumed, HouseDecision};
use crate::domain::service::BookService;

/// Applies the events the booking context consumes.
pub struct BookEvents {
    service: BookService,
}

impl BookEvents {
    /// An adapter over the domain service.
    pub fn new(service: BookService) -> Self {
        Self { service }
    }
}

fn handled(a: Applied<()>) -> Handled {
    match a {
        Applied::Now(()) => Handled::Applied,
        Applied::Duplicate => Handled::Duplicate,
    }
}

/// What an event means to the booking context.
fn consumed(envelope: &Envelope) -> Result<(EventKey, Consumed), HandleError> {
    let event = envelope
        .decode()
        .map_err(|e| HandleError::Permanent(e.to_string()))?;
    let consumed = match event {
        DomainEvent::HouseRegistered(h) => Consumed::Listing(Listing {
            house_id: h.house_id,
            name: h.house_name,
            price: h.house_price,
        }),
        DomainEvent::HouseRented(h) => Consumed::Decision {
            book_id: h.book_id,
            decision: HouseDecision::Rented,
        },
        DomainEvent::HouseRentRejected(h) => Consumed::Decision {
            book_id: h.book_id,
            decision: HouseDecision::Rejected(h.reason),
        },
        DomainEvent::Paid(p) => Consumed::Paid {
            book_id: p.book_id,
            payment_id: p.payment_id,
        },
        other => {
            return Err(HandleError::Permanent(format!(
                "not handled here: {other:?}"
            )))
        }
    };
    Ok((EventKey::of(envelope), consumed))
}

#[async_trait]
impl EventHandler for BookEvents {
    fn handles(&self) -> &'static [&'static str] {
        &[
            "HouseRegistered",
            "HouseRented",
            "HouseRentRejected",
            "Paid",
        ]
    }

    async fn handle(&self, envelope: &Envelope) -> Result<Handled, HandleError> {
        let one = [consumed(envelope)?];
        let mut done = self.service.on_events(&one).await?;
        done.pop()
            .map(handled)
            .ok_or_else(|| HandleError::Transient(anyhow::anyhow!("the store applied nothing")))
    }

    async fn handle_batch(
        &self,
        envelopes: &[Envelope],
    ) -> Option<Result<Vec<Handled>, HandleError>> {
        let events: Result<Vec<_>, _> = envelopes.iter().map(consumed).collect();
        Some(match events {
            Ok(e) => self
                .service
                .on_events(&e)
                .await
                .map(|done| done.into_iter().map(handled).collect())
                .map_err(HandleError::Transient),
            Err(e) => Err(e),
        })
    }
}

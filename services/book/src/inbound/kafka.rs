//! The booking's event adapter: listings, the house's answers, payments to match and
//! refunds to follow; a batch of them is applied in one transaction.

use async_trait::async_trait;
use events::{DomainEvent, Envelope, EventKey};
use platform::consumer::{BatchHandler, HandleError, Handled};

use crate::domain::models::Listing;
use crate::domain::ports::Applied;
use crate::domain::saga::{Consumed, HouseDecision};
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

#[async_trait]
impl BatchHandler for BookEvents {
    type Item = (EventKey, Consumed);

    fn handles(&self) -> &'static [&'static str] {
        &[
            "HouseRegistered",
            "HouseRented",
            "HouseRentRejected",
            "Paid",
            "PaymentCanceled",
        ]
    }

    fn read(&self, envelope: &Envelope) -> Result<Self::Item, HandleError> {
        consumed(envelope)
    }

    async fn apply(&self, items: &[Self::Item]) -> anyhow::Result<Vec<Handled>> {
        let done = self.service.on_events(items).await?;
        Ok(done.into_iter().map(handled).collect())
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
        DomainEvent::PaymentCanceled(p) => Consumed::Refunded { book_id: p.book_id },
        other => {
            return Err(HandleError::Permanent(format!(
                "not handled here: {other:?}"
            )))
        }
    };
    Ok((EventKey::of(envelope), consumed))
}

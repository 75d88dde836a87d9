//! The booking's event adapter: listings, the house's answers, and payments to match.

use async_trait::async_trait;
use events::{DomainEvent, Envelope, EventKey};
use platform::consumer::{EventHandler, HandleError, Handled};

use crate::domain::models::Listing;
use crate::domain::ports::{Applied, HouseDecision};
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

fn handled<T>(a: Applied<T>) -> Handled {
    match a {
        Applied::Now(_) => Handled::Applied,
        Applied::Duplicate => Handled::Duplicate,
    }
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
        let key = EventKey::of(envelope);
        let s = &self.service;
        match envelope
            .decode()
            .map_err(|e| HandleError::Permanent(e.to_string()))?
        {
            DomainEvent::HouseRegistered(h) => {
                let l = Listing {
                    house_id: h.house_id,
                    name: h.house_name,
                    price: h.house_price,
                };
                Ok(handled(s.on_house_registered(&key, &l).await?))
            }
            DomainEvent::HouseRented(h) => Ok(handled(
                s.on_house_decision(&key, &h.book_id, &HouseDecision::Rented)
                    .await?,
            )),
            DomainEvent::HouseRentRejected(h) => Ok(handled(
                s.on_house_decision(&key, &h.book_id, &HouseDecision::Rejected(h.reason))
                    .await?,
            )),
            DomainEvent::Paid(p) => Ok(handled(s.on_paid(&key, &p.book_id, p.payment_id).await?)),
            other => Err(HandleError::Permanent(format!(
                "not handled here: {other:?}"
            ))),
        }
    }
}

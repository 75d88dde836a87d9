//! The payment service: the operations the inbound adapters call. The rules of a payment
//! live in the aggregate ([`Payment::taken`], [`Payment::refund`]) and who may read which
//! payment in [`Actor`]; the service loads, asks them, and has a unit of work store the
//! result with its event.

use std::sync::Arc;

use platform::auth::Actor;
use platform::clock::{Clock, SystemClock};

use super::models::{NewPayment, Payment};
use super::ports::{PaymentFilter, PaymentKey, PaymentRepository};

/// Whether a call created or changed something, or found it already done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Created or changed now (an event was written).
    Done,
    /// It had been done before (no new event).
    AlreadyDone,
}

/// Why a payment could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum PayError {
    /// This booking was already paid with different values (409).
    #[error("booking {0} was already paid with different values")]
    Conflict(String),
    /// Anything else (500).
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

/// Why a payment could not be refunded.
#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    /// No such payment (404).
    #[error("no payment {0}")]
    NotFound(String),
    /// Anything else (500).
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

/// Takes, refunds and reads payments.
#[derive(Clone)]
pub struct PaymentService {
    repo: Arc<dyn PaymentRepository>,
    clock: Arc<dyn Clock>,
}

impl PaymentService {
    /// A service over a repository.
    pub fn new(repo: Arc<dyn PaymentRepository>) -> Self {
        Self {
            repo,
            clock: Arc::new(SystemClock),
        }
    }

    /// The same service reading the time from `clock`.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        Self { clock, ..self }
    }

    /// Pays for a booking once: a repeat with the same values returns the same payment,
    /// with other values it is refused.
    #[tracing::instrument(skip(self, new), fields(book_id = new.book_id.as_str()))]
    pub async fn pay(&self, new: NewPayment) -> Result<(Payment, Outcome), PayError> {
        let book = PaymentKey::Book(new.book_id.as_str());
        let mut unit = self.repo.begin().await?;
        let existing = match unit.payment(book).await? {
            Some(p) => p,
            None => {
                let at = self.clock.now();
                if let Some(id) = unit.insert(&new, at).await? {
                    let payment = Payment::taken(id, &new, at);
                    unit.publish(&[payment.paid()]).await?;
                    unit.commit().await?;
                    return Ok((payment, Outcome::Done));
                }
                // The same booking raced us and won: answer with its payment.
                drop(unit);
                self.repo
                    .get(book)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("the payment that won the race vanished"))?
            }
        };
        if !existing.matches(&new) {
            return Err(PayError::Conflict(existing.book_id));
        }
        Ok((existing, Outcome::AlreadyDone))
    }

    /// Refunds a payment; refunding twice is a no-op that returns the refunded payment.
    #[tracing::instrument(skip(self))]
    pub async fn refund(&self, key: PaymentKey<'_>) -> Result<(Payment, Outcome), RefundError> {
        let missing = || match key {
            PaymentKey::Id(id) => RefundError::NotFound(id.to_string()),
            PaymentKey::Book(b) => RefundError::NotFound(b.to_owned()),
        };
        let mut unit = self.repo.begin().await?;
        let payment = unit.payment(key).await?.ok_or_else(missing)?;
        let Some((refunded, event)) = payment.refund(self.clock.now()) else {
            return Ok((payment, Outcome::AlreadyDone));
        };
        if !unit.refund(&refunded).await? {
            // A concurrent refund won; report what it stored.
            drop(unit);
            let stored = self.repo.get(key).await?.ok_or_else(missing)?;
            return Ok((stored, Outcome::AlreadyDone));
        }
        unit.publish(&[event]).await?;
        unit.commit().await?;
        Ok((refunded, Outcome::Done))
    }

    /// One payment, if `reader` may see it. Someone else's is `None`, exactly like a
    /// missing one: telling them apart would tell a caller which ids exist (issue 18).
    pub async fn get(&self, reader: &Actor, id: i64) -> anyhow::Result<Option<Payment>> {
        Ok(self
            .repo
            .get(PaymentKey::Id(id))
            .await?
            .filter(|p| reader.may_see(&p.customer_id)))
    }

    /// The payments `reader` may see (of one booking, when `book_id` says), in `order`.
    pub async fn list(
        &self,
        reader: &Actor,
        book_id: Option<String>,
        limit: i64,
        offset: i64,
        order: platform::http::Order,
    ) -> anyhow::Result<Vec<Payment>> {
        let filter = PaymentFilter {
            customer_id: reader.only_own().map(str::to_owned),
            book_id,
            limit,
            offset,
            order,
        };
        self.repo.list(&filter).await
    }
}

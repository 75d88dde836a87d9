//! The payment service: the operations the inbound adapters (HTTP today, gRPC tomorrow)
//! call. The rules live in the models; this orders the calls and adds the metrics.

use std::sync::Arc;

use super::models::{NewPayment, Payment};
use super::ports::{
    CancelPaymentError, CreatePaymentError, Outcome, PaymentFilter, PaymentRepository,
};

/// Takes, refunds and reads payments.
#[derive(Clone)]
pub struct PaymentService {
    repo: Arc<dyn PaymentRepository>,
}

impl PaymentService {
    /// A service over a repository.
    pub fn new(repo: Arc<dyn PaymentRepository>) -> Self {
        Self { repo }
    }

    /// Pays for a booking once: a repeat with the same values returns the same payment.
    #[tracing::instrument(skip(self, new), fields(book_id = new.book_id.as_str()))]
    pub async fn pay(&self, new: NewPayment) -> Result<(Payment, Outcome), CreatePaymentError> {
        let (payment, outcome) = self.repo.create(&new).await?;
        if outcome == Outcome::AlreadyDone && !payment.matches(&new) {
            return Err(CreatePaymentError::Conflict(payment.book_id));
        }
        Ok((payment, outcome))
    }

    /// Refunds a payment; refunding twice is a no-op that returns the refunded payment.
    #[tracing::instrument(skip(self))]
    pub async fn cancel(&self, id: i64) -> Result<(Payment, Outcome), CancelPaymentError> {
        self.repo.cancel(id).await
    }

    /// Refunds the payment of a booking.
    #[tracing::instrument(skip(self))]
    pub async fn cancel_by_book(
        &self,
        book_id: &str,
    ) -> Result<(Payment, Outcome), CancelPaymentError> {
        self.repo.cancel_by_book(book_id).await
    }

    /// One payment.
    pub async fn get(&self, id: i64) -> anyhow::Result<Option<Payment>> {
        self.repo.get(id).await
    }

    /// Payments matching a filter.
    pub async fn list(&self, filter: &PaymentFilter) -> anyhow::Result<Vec<Payment>> {
        self.repo.list(filter).await
    }
}

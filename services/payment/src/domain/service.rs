//! The payment service: the operations the inbound adapters (HTTP today, gRPC tomorrow)
//! call. The rules of a payment live in the models, who may read which payment here
//! ([`Actor`]); the service orders the calls.

use std::sync::Arc;

use platform::auth::Actor;

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

    /// One payment, if `reader` may see it. Someone else's is `None`, exactly like a
    /// missing one: telling them apart would tell a caller which ids exist (issue 18).
    pub async fn get(&self, reader: &Actor, id: i64) -> anyhow::Result<Option<Payment>> {
        Ok(self
            .repo
            .get(id)
            .await?
            .filter(|p| reader.may_see(&p.customer_id)))
    }

    /// The payments `reader` may see (of one booking, when `book_id` says), oldest first.
    pub async fn list(
        &self,
        reader: &Actor,
        book_id: Option<String>,
        limit: i64,
        offset: i64,
    ) -> anyhow::Result<Vec<Payment>> {
        let filter = PaymentFilter {
            customer_id: reader.only_own().map(str::to_owned),
            book_id,
            limit,
            offset,
        };
        self.repo.list(&filter).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::Utc;

    use super::*;
    use crate::domain::models::PaymentStatus;
    use events::Stay;

    /// One stored payment, alice's; remembers the filters it was asked for.
    #[derive(Default)]
    struct OnePayment(Mutex<Vec<Option<String>>>);

    fn alices() -> Payment {
        let night = events::parse_date("2030-01-01").unwrap();
        Payment {
            id: 1,
            book_id: "b1".into(),
            house_id: 1,
            customer_id: "alice".into(),
            amount: 100,
            stay: Stay::one_night(night).unwrap(),
            status: PaymentStatus::Paid,
            payment_date: Utc::now(),
            payment_cancel_date: None,
        }
    }

    #[async_trait]
    impl PaymentRepository for OnePayment {
        async fn create(&self, _: &NewPayment) -> Result<(Payment, Outcome), CreatePaymentError> {
            Err(anyhow::anyhow!("not used here").into())
        }
        async fn cancel(&self, _: i64) -> Result<(Payment, Outcome), CancelPaymentError> {
            Err(anyhow::anyhow!("not used here").into())
        }
        async fn cancel_by_book(&self, _: &str) -> Result<(Payment, Outcome), CancelPaymentError> {
            Err(anyhow::anyhow!("not used here").into())
        }
        async fn get(&self, id: i64) -> anyhow::Result<Option<Payment>> {
            Ok((id == 1).then(alices))
        }
        async fn list(&self, filter: &PaymentFilter) -> anyhow::Result<Vec<Payment>> {
            self.0.lock().unwrap().push(filter.customer_id.clone());
            Ok(Vec::new())
        }
    }

    fn reader(id: &str, sees_all: bool) -> Actor {
        Actor {
            id: id.into(),
            sees_all,
        }
    }

    #[tokio::test]
    async fn a_customer_sees_their_own_payments_and_anothers_is_missing() {
        let repo = Arc::new(OnePayment::default());
        let service = PaymentService::new(repo.clone());
        let got = |who: &'static str, all: bool, id: i64| {
            let service = service.clone();
            async move { service.get(&reader(who, all), id).await.unwrap() }
        };
        assert_eq!(got("alice", false, 1).await.map(|p| p.id), Some(1));
        assert_eq!(got("admin", true, 1).await.map(|p| p.id), Some(1));
        assert!(
            got("bob", false, 1).await.is_none(),
            "bob's answer for alice's"
        );
        assert!(
            got("bob", false, 2).await.is_none(),
            "and for none: the same"
        );
        service
            .list(&reader("bob", false), None, 10, 0)
            .await
            .unwrap();
        service
            .list(&reader("admin", true), None, 10, 0)
            .await
            .unwrap();
        assert_eq!(*repo.0.lock().unwrap(), vec![Some("bob".to_owned()), None]);
    }
}

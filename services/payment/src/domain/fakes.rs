//! An in-memory fake of the payment store, for domain tests without a database. It keeps
//! what the SQL adapter keeps and runs one unit of work at a time on a copy
//! (`testkit::fake`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use events::DomainEvent;
use testkit::fake::{FakeStore, Staged};

use super::models::{NewPayment, Payment};
use super::ports::{PaymentFilter, PaymentKey, PaymentRepository, PaymentUnit};

/// What the payment store holds.
#[derive(Debug, Default, Clone)]
pub struct Store {
    /// Payments by id.
    pub payments: BTreeMap<i64, Payment>,
    /// Events published, in order.
    pub outbox: Vec<DomainEvent>,
}

impl Store {
    fn find(&self, key: PaymentKey<'_>) -> Option<Payment> {
        match key {
            PaymentKey::Id(id) => self.payments.get(&id).cloned(),
            PaymentKey::Book(b) => self.payments.values().find(|p| p.book_id == b).cloned(),
        }
    }
}

/// The payment store in memory.
#[derive(Clone, Default)]
pub struct FakePayments {
    store: FakeStore<Store>,
}

impl FakePayments {
    /// What it holds now.
    pub async fn snapshot(&self) -> Store {
        self.store.snapshot().await
    }
}

#[async_trait]
impl PaymentRepository for FakePayments {
    async fn get(&self, key: PaymentKey<'_>) -> anyhow::Result<Option<Payment>> {
        Ok(self.store.lock().await.find(key))
    }
    async fn list(&self, f: &PaymentFilter) -> anyhow::Result<Vec<Payment>> {
        let s = self.store.lock().await;
        let payments: Box<dyn Iterator<Item = &Payment>> = match f.order {
            platform::http::Order::Oldest => Box::new(s.payments.values()),
            platform::http::Order::Newest => Box::new(s.payments.values().rev()),
        };
        Ok(payments
            .filter(|p| f.customer_id.as_ref().is_none_or(|c| *c == p.customer_id))
            .filter(|p| f.book_id.as_ref().is_none_or(|b| *b == p.book_id))
            .skip(usize::try_from(f.offset)?)
            .take(usize::try_from(f.limit)?)
            .cloned()
            .collect())
    }
    async fn begin(&self) -> anyhow::Result<Box<dyn PaymentUnit>> {
        Ok(Box::new(FakeUnit {
            staged: self.store.begin().await,
        }))
    }
}

struct FakeUnit {
    staged: Staged<Store>,
}

#[async_trait]
impl PaymentUnit for FakeUnit {
    async fn payment(&mut self, key: PaymentKey<'_>) -> anyhow::Result<Option<Payment>> {
        Ok(self.staged.find(key))
    }
    async fn insert(&mut self, new: &NewPayment, at: DateTime<Utc>) -> anyhow::Result<Option<i64>> {
        if self
            .staged
            .find(PaymentKey::Book(new.book_id.as_str()))
            .is_some()
        {
            return Ok(None);
        }
        let id = self
            .staged
            .payments
            .keys()
            .next_back()
            .map_or(1, |last| last + 1);
        self.staged.payments.insert(id, Payment::taken(id, new, at));
        Ok(Some(id))
    }
    async fn refund(&mut self, refunded: &Payment) -> anyhow::Result<bool> {
        match self.staged.payments.get_mut(&refunded.id) {
            Some(p) if p.status == super::models::PaymentStatus::Paid => {
                *p = refunded.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn publish(&mut self, events: &[DomainEvent]) -> anyhow::Result<()> {
        self.staged.outbox.extend(events.iter().cloned());
        Ok(())
    }
    async fn commit(self: Box<Self>) -> anyhow::Result<()> {
        self.staged.commit();
        Ok(())
    }
}

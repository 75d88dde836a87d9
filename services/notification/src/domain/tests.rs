//! The rules over an in-memory store: a message per event, its owner from `Booked` or
//! `Paid` whichever comes first, messages that came before their owner given it later,
//! each event once, and a reader's own messages only.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{TimeZone as _, Utc};
use events::{BookConfirmed, Booked, DomainEvent, EventKey, Paid};
use platform::auth::Actor;
use testkit::fake::Staged;

use super::models::{Changes, Notification};
use super::ports::{Applied, NotificationStore, NotificationUnit};
use super::service::NotificationService;

#[derive(Clone, Default, Debug)]
struct Store {
    owners: HashMap<String, String>,
    messages: BTreeMap<String, Notification>,
    inbox: HashSet<String>,
}

#[derive(Clone, Default)]
struct FakeStore(testkit::fake::FakeStore<Store>);

#[async_trait]
impl NotificationStore for FakeStore {
    async fn list(
        &self,
        customer: Option<&str>,
        _: i64,
        _: i64,
    ) -> anyhow::Result<Vec<Notification>> {
        let s = self.0.lock().await;
        Ok(s.messages
            .values()
            .filter(|m| customer.is_none() || m.customer_id.as_deref() == customer)
            .cloned()
            .collect())
    }
    async fn begin(&self) -> anyhow::Result<Box<dyn NotificationUnit>> {
        Ok(Box::new(FakeUnit {
            staged: self.0.begin().await,
        }))
    }
}

struct FakeUnit {
    staged: Staged<Store>,
}

#[async_trait]
impl NotificationUnit for FakeUnit {
    async fn claim_events(&mut self, keys: &[&EventKey]) -> anyhow::Result<Vec<bool>> {
        Ok(keys
            .iter()
            .map(|k| self.staged.inbox.insert(k.event_id.clone()))
            .collect())
    }
    async fn owners(&mut self, ids: &[&str]) -> anyhow::Result<HashMap<String, String>> {
        Ok(ids
            .iter()
            .filter_map(|id| {
                self.staged
                    .owners
                    .get(*id)
                    .map(|c| ((*id).to_owned(), c.clone()))
            })
            .collect())
    }
    async fn save(&mut self, changes: &Changes) -> anyhow::Result<()> {
        let s = &mut self.staged;
        for (b, c) in &changes.owners {
            s.owners.entry(b.clone()).or_insert_with(|| c.clone());
        }
        for m in &changes.messages {
            s.messages.entry(m.id.clone()).or_insert_with(|| m.clone());
        }
        for (b, c) in &changes.owners {
            for m in s.messages.values_mut() {
                if &m.book_id == b && m.customer_id.is_none() {
                    m.customer_id = Some(c.clone());
                }
            }
        }
        Ok(())
    }
    async fn commit(self: Box<Self>) -> anyhow::Result<()> {
        self.staged.commit();
        Ok(())
    }
}

fn at() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 8, 0, 0).unwrap()
}

fn item(id: &str, event: DomainEvent) -> (EventKey, chrono::DateTime<Utc>, DomainEvent) {
    (
        EventKey {
            event_id: id.into(),
            event_type: "any".into(),
        },
        at(),
        event,
    )
}

fn confirmed(book: &str) -> DomainEvent {
    DomainEvent::BookConfirmed(BookConfirmed {
        book_id: book.into(),
        house_id: 1,
    })
}

fn booked(book: &str, customer: &str) -> DomainEvent {
    let night = events::parse_date("2030-02-01").unwrap();
    DomainEvent::Booked(Booked {
        book_id: book.into(),
        customer_id: customer.into(),
        house_id: 1,
        house_name: "Hanok".into(),
        house_price: 100,
        check_in: night,
        check_out: night.succ_opt().unwrap(),
        payment_id: 1,
    })
}

fn paid(book: &str, customer: &str) -> DomainEvent {
    let night = events::parse_date("2030-02-01").unwrap();
    DomainEvent::Paid(Paid {
        payment_id: 1,
        book_id: book.into(),
        house_id: 1,
        customer_id: customer.into(),
        house_price: 100,
        check_in: night,
        check_out: night.succ_opt().unwrap(),
        payment_date: at(),
    })
}

fn reader(id: &str, sees_all: bool) -> Actor {
    Actor {
        id: id.into(),
        sees_all,
    }
}

#[tokio::test]
async fn a_message_before_its_owner_is_known_gets_the_owner_later_in_or_across_batches() {
    let store = FakeStore::default();
    let service = NotificationService::new(Arc::new(store.clone()));
    // Across batches: the confirmation first, alone; then the booking.
    service.apply(&[item("e1", confirmed("b1"))]).await.unwrap();
    assert_eq!(
        service.list(&reader("root", true), 10, 0).await.unwrap()[0].customer_id,
        None,
        "kept without an owner (an admin sees it)"
    );
    service
        .apply(&[item("e2", booked("b1", "alice"))])
        .await
        .unwrap();
    // Within one batch: the confirmation before the payment that names the owner.
    service
        .apply(&[item("e3", confirmed("b2")), item("e4", paid("b2", "bob"))])
        .await
        .unwrap();
    let all = service.list(&reader("root", true), 10, 0).await.unwrap();
    let owner = |id: &str| {
        all.iter()
            .find(|m| m.id == id)
            .and_then(|m| m.customer_id.clone())
    };
    assert_eq!(owner("e1").as_deref(), Some("alice"));
    assert_eq!(owner("e3").as_deref(), Some("bob"));
    assert_eq!(owner("e4").as_deref(), Some("bob"));
    assert_eq!(all.len(), 3, "Booked tells nothing by itself");
    let kinds: Vec<_> = all.iter().map(|m| m.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["BOOKING_CONFIRMED", "BOOKING_CONFIRMED", "PAYMENT_RECEIVED"]
    );
    // A reader sees their own; the same events again change nothing.
    let bobs = service.list(&reader("bob", false), 10, 0).await.unwrap();
    assert_eq!(bobs.len(), 2);
    let again = service
        .apply(&[item("e3", confirmed("b2")), item("e4", paid("b2", "bob"))])
        .await
        .unwrap();
    assert_eq!(again, [Applied::Duplicate, Applied::Duplicate]);
    assert_eq!(store.0.lock().await.messages.len(), 3);
}

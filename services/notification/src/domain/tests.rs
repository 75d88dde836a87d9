//! The rules over an in-memory store: a message per event, its owner from `Booked` or
//! `Paid` whichever comes first, messages that came before their owner given it later,
//! each event once, and a reader's own messages only.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{TimeZone as _, Utc};
use events::{BookConfirmed, Booked, DomainEvent, EventKey, Paid};
use platform::auth::Actor;
use platform::http::Order;
use testkit::fake::Staged;

use super::models::{Changes, Cursor, Notification};
use super::ports::{Applied, NotificationStore, NotificationUnit};
use super::service::NotificationService;

#[derive(Clone, Default, Debug)]
struct Store {
    owners: HashMap<String, String>,
    messages: BTreeMap<String, Notification>,
    inbox: HashSet<String>,
    /// Each message's place in the feed, and the last unit's number.
    seqs: HashMap<String, i64>,
    last: i64,
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
        order: Order,
    ) -> anyhow::Result<Vec<Notification>> {
        let s = self.0.lock().await;
        let mut out: Vec<Notification> = s
            .messages
            .values()
            .filter(|m| customer.is_none() || m.customer_id.as_deref() == customer)
            .cloned()
            .collect();
        out.sort_by(|a, b| (&a.occurred_at, &a.id).cmp(&(&b.occurred_at, &b.id)));
        if order == Order::Newest {
            out.reverse();
        }
        Ok(out)
    }
    async fn feed(
        &self,
        customer: Option<&str>,
        after: &Cursor,
        limit: i64,
    ) -> anyhow::Result<Vec<(Cursor, Notification)>> {
        let s = self.0.lock().await;
        let mut out: Vec<(Cursor, Notification)> = s
            .messages
            .values()
            .filter(|m| customer.is_none() || m.customer_id.as_deref() == customer)
            .map(|m| (Cursor::at(s.seqs[&m.id], &m.id), m.clone()))
            .filter(|(c, _)| match &after.id {
                None => c.seq > after.seq,
                Some(id) => (c.seq, c.id.as_ref()) > (after.seq, Some(id)),
            })
            .collect();
        out.sort_by(|(a, _), (b, _)| (a.seq, &a.id).cmp(&(b.seq, &b.id)));
        out.truncate(usize::try_from(limit)?);
        Ok(out)
    }
    async fn feed_head(&self) -> anyhow::Result<Cursor> {
        Ok(Cursor {
            seq: self.0.lock().await.last,
            id: None,
        })
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
        let s: &mut Store = &mut self.staged;
        if changes.owners.is_empty() && changes.messages.is_empty() {
            return Ok(());
        }
        s.last += 1;
        let seq = s.last;
        for (b, c) in &changes.owners {
            s.owners.entry(b.clone()).or_insert_with(|| c.clone());
        }
        for m in &changes.messages {
            if !s.messages.contains_key(&m.id) {
                s.messages.insert(m.id.clone(), m.clone());
                s.seqs.insert(m.id.clone(), seq);
            }
        }
        for (b, c) in &changes.owners {
            for m in s.messages.values_mut().filter(|m| &m.book_id == b) {
                if m.customer_id.is_none() {
                    m.customer_id = Some(c.clone());
                    s.seqs.insert(m.id.clone(), seq);
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
        service
            .list(&reader("root", true), 10, 0, Order::Oldest)
            .await
            .unwrap()[0]
            .customer_id,
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
    let all = service
        .list(&reader("root", true), 10, 0, Order::Oldest)
        .await
        .unwrap();
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
    let bobs = service
        .list(&reader("bob", false), 10, 0, Order::Oldest)
        .await
        .unwrap();
    assert_eq!(bobs.len(), 2);
    let again = service
        .apply(&[item("e3", confirmed("b2")), item("e4", paid("b2", "bob"))])
        .await
        .unwrap();
    assert_eq!(again, [Applied::Duplicate, Applied::Duplicate]);
    assert_eq!(store.0.lock().await.messages.len(), 3);
}

#[tokio::test]
async fn the_feed_wakes_its_readers_for_what_is_stored_and_shows_each_their_own() {
    let store = FakeStore::default();
    let service = NotificationService::new(Arc::new(store.clone()));
    let start = service.feed_head().await.unwrap();
    let mut signal = service.feed_signal();
    assert!(!signal.has_changed().unwrap());
    // The confirmation comes before anyone knows whose booking it is: only an admin's
    // feed has it, until the owner is learnt — then it is in alice's, after her cursor.
    service.apply(&[item("e1", confirmed("b1"))]).await.unwrap();
    assert!(signal.has_changed().unwrap(), "a stored message wakes");
    signal.mark_unchanged();
    let alice = reader("alice", false);
    let seen = service.feed(&alice, &start, 10).await.unwrap();
    assert!(seen.is_empty(), "not hers yet: {seen:?}");
    let admin = service
        .feed(&reader("root", true), &start, 10)
        .await
        .unwrap();
    assert_eq!(admin.len(), 1);
    let alice_at = service.feed_head().await.unwrap();
    service
        .apply(&[item("e2", booked("b1", "alice"))])
        .await
        .unwrap();
    assert!(signal.has_changed().unwrap(), "an owner learnt wakes");
    signal.mark_unchanged();
    let hers = service.feed(&alice, &alice_at, 10).await.unwrap();
    assert_eq!(hers.len(), 1, "given its owner after her cursor: {hers:?}");
    assert_eq!(hers[0].1.id, "e1");
    // Resuming after the last seen gives nothing more; the same events again wake no one.
    let after = hers[0].0.clone();
    assert!(service.feed(&alice, &after, 10).await.unwrap().is_empty());
    service.apply(&[item("e1", confirmed("b1"))]).await.unwrap();
    assert!(!signal.has_changed().unwrap(), "a duplicate stores nothing");
    // Bob sees none of it.
    assert!(service
        .feed(&reader("bob", false), &start, 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_page_of_the_feed_resumes_inside_a_unit_of_work() {
    let store = FakeStore::default();
    let service = NotificationService::new(Arc::new(store.clone()));
    let start = service.feed_head().await.unwrap();
    // One unit stores three messages (one number); a reader takes them two at a time.
    service
        .apply(&[
            item("e1", paid("b1", "alice")),
            item("e2", confirmed("b1")),
            item("e3", confirmed("b1")),
        ])
        .await
        .unwrap();
    let alice = reader("alice", false);
    let first = service.feed(&alice, &start, 2).await.unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].0.seq, first[1].0.seq, "one unit, one number");
    let rest = service.feed(&alice, &first[1].0, 2).await.unwrap();
    let ids: Vec<_> = first
        .iter()
        .chain(&rest)
        .map(|(_, n)| n.id.as_str())
        .collect();
    assert_eq!(ids, ["e1", "e2", "e3"], "each once, none skipped");
}

/// Two replicas over one store: what one stores wakes the other's readers, through the
/// poll of the feed's end (its own commits wake only its own readers at once).
#[tokio::test]
async fn what_another_replica_stores_wakes_this_ones_readers() {
    let store = FakeStore::default();
    let here = NotificationService::new(Arc::new(store.clone()));
    let there = NotificationService::new(Arc::new(store.clone()));
    let stop = platform::shutdown::CancellationToken::new();
    here.watch_feed(std::time::Duration::from_millis(10), stop.clone());
    let mut signal = here.feed_signal();
    // The poll has seen the end (and woken the reader once, for what it may have missed
    // before it looked) before anything is stored there.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    signal.mark_unchanged();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!signal.has_changed().unwrap(), "nothing stored since");
    there
        .apply(&[item("e1", paid("b1", "alice"))])
        .await
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), signal.changed())
        .await
        .expect("woken within the poll")
        .unwrap();
    stop.cancel();
}

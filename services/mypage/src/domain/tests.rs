//! The view's rules over every order its events can arrive in: each producer's events of a
//! booking in order, the producers interleaved any way; the row and the calendar come out
//! the same. Through the service over an in-memory store, in milliseconds.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{NaiveDate, TimeZone as _, Utc};
use events::{
    BookCanceled, BookConfirmed, Booked, DomainEvent, EventKey, HouseRegistered, HouseRentCanceled,
    HouseRented, Paid, PaymentCanceled, Stay,
};
use testkit::fake::Staged;

use super::models::{Availability, BookingView};
use super::ports::{Applied, ViewRepository, ViewUnit};
use super::service::ViewService;
use super::view::{Changes, NightChange};

/// The view's store in memory, one unit at a time.
#[derive(Clone, Default)]
struct FakeView {
    store: testkit::fake::FakeStore<Store>,
}

#[derive(Clone, Default, Debug)]
struct Store {
    rows: BTreeMap<String, BookingView>,
    nights: BTreeMap<(i64, NaiveDate), String>,
    houses: HashSet<i64>,
    inbox: HashSet<String>,
}

#[async_trait]
impl ViewRepository for FakeView {
    async fn begin(&self) -> anyhow::Result<Box<dyn ViewUnit>> {
        Ok(Box::new(FakeUnit {
            staged: self.store.begin().await,
        }))
    }
    async fn get(&self, book_id: &str) -> anyhow::Result<Option<BookingView>> {
        Ok(self.store.lock().await.rows.get(book_id).cloned())
    }
    async fn list(
        &self,
        _: Option<&str>,
        _: i64,
        _: i64,
        _: platform::http::Order,
    ) -> anyhow::Result<Vec<BookingView>> {
        Ok(self.store.lock().await.rows.values().cloned().collect())
    }
    async fn availability(
        &self,
        house_id: i64,
        stay: &Stay,
    ) -> anyhow::Result<Option<Availability>> {
        let s = self.store.lock().await;
        Ok(s.houses.contains(&house_id).then(|| Availability {
            house_id,
            taken: stay
                .each_night()
                .filter(|n| s.nights.contains_key(&(house_id, *n)))
                .collect(),
        }))
    }
    async fn clear(&self) -> anyhow::Result<()> {
        *self.store.lock().await = Store::default();
        Ok(())
    }
}

struct FakeUnit {
    staged: Staged<Store>,
}

#[async_trait]
impl ViewUnit for FakeUnit {
    async fn claim_events(&mut self, keys: &[&EventKey]) -> anyhow::Result<Vec<bool>> {
        Ok(keys
            .iter()
            .map(|k| self.staged.inbox.insert(k.event_id.clone()))
            .collect())
    }
    async fn rows(&mut self, ids: &[&str]) -> anyhow::Result<Vec<BookingView>> {
        Ok(ids
            .iter()
            .filter_map(|id| self.staged.rows.get(*id).cloned())
            .collect())
    }
    async fn save(&mut self, changes: &Changes) -> anyhow::Result<()> {
        let s = &mut self.staged;
        for r in &changes.rows {
            s.rows.insert(r.book_id.clone(), r.clone());
        }
        s.houses.extend(changes.houses.iter().map(|h| h.house_id));
        for c in &changes.nights {
            match c {
                NightChange::Hold {
                    house_id,
                    night,
                    book_id,
                } => {
                    s.nights.insert((*house_id, *night), book_id.clone());
                }
                NightChange::Free { book_id } => s.nights.retain(|_, b| b != book_id),
            }
        }
        Ok(())
    }
    async fn commit(self: Box<Self>) -> anyhow::Result<()> {
        self.staged.commit();
        Ok(())
    }
}

fn d(s: &str) -> NaiveDate {
    events::parse_date(s).unwrap()
}

/// One booking's life: booked, paid, rented, confirmed, then cancelled, refunded and
/// released; per producer, in the order it publishes.
fn story() -> Vec<Vec<DomainEvent>> {
    let at = Utc.with_ymd_and_hms(2030, 1, 1, 10, 0, 0).unwrap();
    let (id, house) = ("b1".to_string(), 7);
    let (check_in, check_out) = (d("2030-02-01"), d("2030-02-03"));
    vec![
        vec![
            DomainEvent::Booked(Booked {
                book_id: id.clone(),
                customer_id: "alice".into(),
                house_id: house,
                house_name: "Hanok".into(),
                house_price: 200,
                check_in,
                check_out,
                payment_id: 5,
            }),
            DomainEvent::BookConfirmed(BookConfirmed {
                book_id: id.clone(),
                house_id: house,
            }),
            DomainEvent::BookCanceled(BookCanceled {
                book_id: id.clone(),
                house_id: house,
                book_cancel_date: at,
            }),
        ],
        vec![
            DomainEvent::Paid(Paid {
                payment_id: 5,
                book_id: id.clone(),
                house_id: house,
                customer_id: "alice".into(),
                house_price: 200,
                check_in,
                check_out,
                payment_date: at,
            }),
            DomainEvent::PaymentCanceled(PaymentCanceled {
                payment_id: 5,
                book_id: id.clone(),
                house_id: house,
                house_price: 200,
                payment_cancel_date: at,
            }),
        ],
        vec![
            DomainEvent::HouseRegistered(HouseRegistered {
                house_id: house,
                house_name: "Hanok".into(),
                house_price: 100,
            }),
            DomainEvent::HouseRented(HouseRented {
                house_id: house,
                book_id: id.clone(),
                check_in,
                check_out,
            }),
            DomainEvent::HouseRentCanceled(HouseRentCanceled {
                house_id: house,
                book_id: id,
                check_in,
                check_out,
            }),
        ],
    ]
}

/// Every interleaving of the producers' sequences (each kept in order).
fn interleavings(seqs: &[Vec<DomainEvent>]) -> Vec<Vec<DomainEvent>> {
    if seqs.iter().all(Vec::is_empty) {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for (i, s) in seqs.iter().enumerate() {
        if let Some((first, rest)) = s.split_first() {
            let mut next = seqs.to_vec();
            next[i] = rest.to_vec();
            for mut tail in interleavings(&next) {
                tail.insert(0, first.clone());
                out.push(tail);
            }
        }
    }
    out
}

async fn fold(events: &[DomainEvent], batch: usize) -> (BookingView, Store) {
    let repo = FakeView::default();
    let service = ViewService::new(Arc::new(repo.clone()));
    let keyed: Vec<_> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            (
                EventKey {
                    event_id: format!("e{i}"),
                    event_type: "any".into(),
                },
                e.clone(),
            )
        })
        .collect();
    for chunk in keyed.chunks(batch) {
        let done = service.apply_all(chunk).await.unwrap();
        assert!(done.iter().all(|a| *a == Applied::Now));
    }
    // Delivered again, whole: nothing changes.
    let again = service.apply_all(&keyed).await.unwrap();
    assert!(again.iter().all(|a| *a == Applied::Duplicate));
    let store = repo.store.snapshot().await;
    (store.rows["b1"].clone(), store)
}

#[tokio::test]
async fn every_arrival_order_folds_to_the_same_row() {
    let orders = interleavings(&story());
    assert_eq!(orders.len(), 560, "8! / (3! 2! 3!)");
    let (want, _) = fold(&orders[0], 1).await;
    assert_eq!(want.book_status.as_deref(), Some("BOOK_CANCELED"));
    assert_eq!(want.payment_status.as_deref(), Some("PAYMENT_CANCELED"));
    assert_eq!(want.house_status.as_deref(), Some("RELEASED"));
    assert_eq!(want.house_name.as_deref(), Some("Hanok"));
    assert_eq!(want.customer_id.as_deref(), Some("alice"));
    assert_eq!(
        want.refunded_at.as_deref(),
        Some("2030-01-01T10:00:00.000000Z")
    );
    for (n, order) in orders.iter().enumerate() {
        // One event per batch, and the whole story in one.
        for batch in [1, order.len()] {
            let (row, store) = fold(order, batch).await;
            assert_eq!(row, want, "order {n}, batches of {batch}");
            assert!(
                store.nights.is_empty(),
                "order {n}: released nights are free"
            );
        }
    }
}

#[tokio::test]
async fn rented_nights_show_as_taken_until_released() {
    let events: Vec<DomainEvent> = story()
        .into_iter()
        .flat_map(|s| s.into_iter().take(2))
        .collect();
    let (row, store) = fold(&events, 3).await;
    assert_eq!(row.house_status.as_deref(), Some("RENTED"));
    assert_eq!(row.book_status.as_deref(), Some("CONFIRMED"));
    let held: HashMap<_, _> = store.nights.into_iter().collect();
    assert_eq!(
        held,
        HashMap::from([
            ((7, d("2030-02-01")), "b1".to_string()),
            ((7, d("2030-02-02")), "b1".to_string()),
        ])
    );
}

//! The calendar's rules through the house service over an in-memory store: every command
//! in every state of a booking's rental, batches in order, duplicates and out-of-order
//! arrivals, in milliseconds. (The SQL adapter's tests, with concurrent replicas, and the
//! fleet's end-to-end tests run the same rules on real parts.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::NaiveDate;
use events::{DomainEvent, EventKey, Stay};

use super::calendar::RentalStatus;
use super::fakes::FakeHouses;
use super::models::{NewHouse, RejectReason, ReleaseOutcome, Reservation, ReserveOutcome};
use super::ports::{Applied, Command, Decided, HouseRepository};
use super::service::HouseService;

struct World {
    service: HouseService,
    store: FakeHouses,
    house: i64,
    keys: AtomicU64,
}

async fn world() -> World {
    let store = FakeHouses::default();
    let house = store
        .register(&NewHouse::new("Hanok", 100, None).unwrap())
        .await
        .unwrap()
        .id;
    World {
        service: HouseService::new(Arc::new(store.clone())),
        store,
        house,
        keys: AtomicU64::new(0),
    }
}

fn d(s: &str) -> NaiveDate {
    events::parse_date(s).unwrap()
}

impl World {
    fn key(&self) -> EventKey {
        EventKey {
            event_id: format!("evt-{}", self.keys.fetch_add(1, Ordering::Relaxed)),
            event_type: "any".into(),
        }
    }

    fn stay(&self, id: &str, from: &str, to: &str) -> Command {
        Command::Reserve(Reservation {
            book_id: id.into(),
            house_id: self.house,
            stay: Some(Stay::new(d(from), d(to)).unwrap()),
        })
    }

    async fn apply(&self, commands: &[Command]) -> Vec<Decided> {
        let batch: Vec<_> = commands.iter().map(|c| (self.key(), c.clone())).collect();
        self.service
            .apply_all(&batch)
            .await
            .unwrap()
            .into_iter()
            .map(|a| match a {
                Applied::Now(d) => d,
                Applied::Duplicate => panic!("fresh keys are never duplicates"),
            })
            .collect()
    }

    async fn holders(&self) -> Vec<(String, String)> {
        self.store
            .snapshot()
            .await
            .held
            .iter()
            .map(|((_, n), b)| (n.to_string(), b.clone()))
            .collect()
    }

    async fn events(&self) -> Vec<String> {
        self.store
            .take_events()
            .await
            .iter()
            .map(|e| match e {
                DomainEvent::HouseRented(e) => format!("HouseRented {}", e.book_id),
                DomainEvent::HouseRentRejected(e) => {
                    format!("HouseRentRejected {} {}", e.book_id, e.reason)
                }
                DomainEvent::HouseRentCanceled(e) => {
                    format!("HouseRentCanceled {}", e.book_id)
                }
                other => format!("{other:?}"),
            })
            .collect()
    }
}

fn reserved(outcome: ReserveOutcome) -> Decided {
    Decided::Reserve(outcome)
}
fn released(outcome: ReleaseOutcome) -> Decided {
    Decided::Release(outcome)
}

/// A reservation in every state of its booking and its nights.
#[tokio::test]
async fn a_reservation_in_every_state() {
    // Free nights: held, all of them.
    let w = world().await;
    assert_eq!(
        w.apply(&[w.stay("a", "2030-01-01", "2030-01-03")]).await,
        [reserved(ReserveOutcome::Rented)]
    );
    assert_eq!(
        w.holders().await,
        [
            ("2030-01-01".into(), "a".into()),
            ("2030-01-02".into(), "a".into())
        ]
    );
    assert_eq!(w.events().await, ["HouseRented a"]);
    // One night taken: refused, none held (all or none).
    assert_eq!(
        w.apply(&[w.stay("b", "2030-01-02", "2030-01-05")]).await,
        [reserved(ReserveOutcome::Rejected(
            RejectReason::NightsTaken
        ))]
    );
    assert_eq!(w.holders().await.len(), 2);
    assert_eq!(w.events().await, ["HouseRentRejected b NIGHTS_TAKEN"]);
    // The next night on is free: check-out day is not a night.
    assert_eq!(
        w.apply(&[w.stay("c", "2030-01-03", "2030-01-04")]).await,
        [reserved(ReserveOutcome::Rented)]
    );
    // Decided before, whatever came of it: nothing changes.
    for id in ["a", "b"] {
        assert_eq!(
            w.apply(&[w.stay(id, "2030-06-01", "2030-06-02")]).await,
            [reserved(ReserveOutcome::AlreadyDecided)],
            "{id}"
        );
    }
    // An unknown house, an impossible stay.
    let unknown = Command::Reserve(Reservation {
        book_id: "d".into(),
        house_id: 999,
        stay: Some(Stay::one_night(d("2030-02-01")).unwrap()),
    });
    let impossible = Command::Reserve(Reservation {
        book_id: "e".into(),
        house_id: w.house,
        stay: None,
    });
    w.events().await;
    assert_eq!(
        w.apply(&[unknown, impossible]).await,
        [
            reserved(ReserveOutcome::Rejected(RejectReason::UnknownHouse)),
            reserved(ReserveOutcome::Rejected(RejectReason::InvalidStay)),
        ]
    );
    assert_eq!(
        w.events().await,
        [
            "HouseRentRejected d UNKNOWN_HOUSE",
            "HouseRentRejected e INVALID_STAY"
        ]
    );
}

/// A release in every state: rented, rejected, released already, never seen (then paid).
#[tokio::test]
async fn a_release_in_every_state() {
    let w = world().await;
    w.apply(&[
        w.stay("rented", "2030-03-01", "2030-03-03"),
        w.stay("rejected", "2030-03-02", "2030-03-04"),
    ])
    .await;
    w.events().await;
    assert_eq!(
        w.apply(&[
            Command::Release("rented".into()),
            Command::Release("rejected".into()),
            Command::Release("rented".into()),
            Command::Release("unseen".into()),
        ])
        .await,
        [
            released(ReleaseOutcome::Released),
            released(ReleaseOutcome::NothingHeld),
            released(ReleaseOutcome::NothingHeld),
            released(ReleaseOutcome::NothingHeld),
        ]
    );
    assert!(w.holders().await.is_empty(), "its nights are free");
    assert_eq!(w.events().await, ["HouseRentCanceled rented"], "once");
    let store = w.store.snapshot().await;
    let status = |id: &str| store.rentals.get(id).map(|r| r.status);
    assert_eq!(status("rented"), Some(RentalStatus::Released));
    assert_eq!(status("rejected"), Some(RentalStatus::Rejected));
    assert_eq!(status("unseen"), None);
    assert!(["rented", "rejected", "unseen"]
        .iter()
        .all(|id| store.canceled.contains(*id)));
    // Its Paid after its cancel (contexts publish in no fixed order): never held.
    assert_eq!(
        w.apply(&[w.stay("unseen", "2030-03-01", "2030-03-02")])
            .await,
        [reserved(ReserveOutcome::BookingCanceled)]
    );
    assert!(w.holders().await.is_empty());
    assert!(w.events().await.is_empty());
    // The freed nights can be held again.
    assert_eq!(
        w.apply(&[w.stay("next", "2030-03-01", "2030-03-04")]).await,
        [reserved(ReserveOutcome::Rented)]
    );
}

/// A batch applies in order, as one: what one command frees a later one may hold; a stay
/// held and released within the batch is never stored as held; a duplicate is skipped.
#[tokio::test]
async fn a_batch_applies_in_order_and_each_event_once() {
    let w = world().await;
    let first = w.stay("first", "2030-11-10", "2030-11-12");
    let k1 = w.key();
    let batch = [
        (k1.clone(), first.clone()),
        (w.key(), w.stay("overlap", "2030-11-11", "2030-11-13")),
        (k1, first),
        (w.key(), Command::Release("first".into())),
        (w.key(), w.stay("later", "2030-11-11", "2030-11-14")),
        (w.key(), w.stay("brief", "2030-12-01", "2030-12-02")),
        (w.key(), Command::Release("brief".into())),
    ];
    let done = w.service.apply_all(&batch).await.unwrap();
    assert_eq!(
        done,
        [
            Applied::Now(reserved(ReserveOutcome::Rented)),
            Applied::Now(reserved(ReserveOutcome::Rejected(
                RejectReason::NightsTaken
            ))),
            Applied::Duplicate,
            Applied::Now(released(ReleaseOutcome::Released)),
            Applied::Now(reserved(ReserveOutcome::Rented)),
            Applied::Now(reserved(ReserveOutcome::Rented)),
            Applied::Now(released(ReleaseOutcome::Released)),
        ]
    );
    assert_eq!(
        w.holders().await,
        [
            ("2030-11-11".into(), "later".into()),
            ("2030-11-12".into(), "later".into()),
            ("2030-11-13".into(), "later".into()),
        ]
    );
    assert_eq!(
        w.events().await,
        [
            "HouseRented first",
            "HouseRentRejected overlap NIGHTS_TAKEN",
            "HouseRentCanceled first",
            "HouseRented later",
            "HouseRented brief",
            "HouseRentCanceled brief",
        ]
    );
    let store = w.store.snapshot().await;
    assert!(store.canceled.contains("first") && store.canceled.contains("brief"));
    // Delivered again as a whole: every event a duplicate, nothing changes.
    let again = w.service.apply_all(&batch).await.unwrap();
    assert!(again.iter().all(|a| *a == Applied::Duplicate), "{again:?}");
    assert!(w.events().await.is_empty());
}

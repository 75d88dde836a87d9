//! The saga's rules through the booking service over in-memory ports: every consumed event
//! in every state, duplicates, out-of-order arrivals, cancel races and the reconciler's
//! cases, in milliseconds. (The SQL adapter's own tests and the fleet's end-to-end and
//! fault tests run the same rules on real parts.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone as _, Utc};
use events::{DomainEvent, EventKey, Stay};
use platform::clock::{Clock as _, FixedClock};

use super::fakes::{FakeBookings, FakeHouses, FakePayments};
use super::models::{
    BookStatus, Booking, BookingInvalid, BookingRequest, Holdings, Horizon, Listing,
};
use super::ports::Applied;
use super::saga::{Consumed, HouseDecision};
use super::service::{Actor, BookError, BookService, CancelBookingError};

struct World {
    service: BookService,
    repo: FakeBookings,
    payments: FakePayments,
    clock: FixedClock,
    keys: AtomicU64,
}

const HOUSE: i64 = 1;
const GRACE: Duration = Duration::from_secs(10);

fn world() -> World {
    let repo = FakeBookings::default();
    let payments = FakePayments::default();
    let houses = FakeHouses::default();
    houses.add(Listing {
        house_id: HOUSE,
        name: "Sea view".into(),
        price: 100,
    });
    let clock = FixedClock::at(Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap());
    let service = BookService::new(
        Arc::new(repo.clone()),
        Arc::new(payments.clone()),
        Arc::new(houses),
    )
    .with_clock(Arc::new(clock.clone()))
    // The cases below book as one customer, many times: no bound (the rules' own test
    // below uses the defaults).
    .with_holdings(
        Holdings {
            max_nights_ahead: 0,
        },
        platform::limit::Rate {
            per_second: 0.0,
            burst: 0.0,
        },
    );
    World {
        service,
        repo,
        payments,
        clock,
        keys: AtomicU64::new(0),
    }
}

fn alice() -> Actor {
    Actor {
        id: "alice".into(),
        sees_all: false,
    }
}

fn rented(id: &str) -> Consumed {
    Consumed::Decision {
        book_id: id.into(),
        decision: HouseDecision::Rented,
    }
}
fn rejected(id: &str) -> Consumed {
    Consumed::Decision {
        book_id: id.into(),
        decision: HouseDecision::Rejected("nights taken".into()),
    }
}
fn paid(id: &str) -> Consumed {
    Consumed::Paid {
        book_id: id.into(),
        payment_id: 99,
    }
}
fn refunded(id: &str) -> Consumed {
    Consumed::Refunded { book_id: id.into() }
}

impl World {
    fn key(&self) -> EventKey {
        EventKey {
            event_id: format!("evt-{}", self.keys.fetch_add(1, Ordering::Relaxed)),
            event_type: "any".into(),
        }
    }

    async fn book(&self) -> Booking {
        let today = self.service.today();
        let stay = Stay::new(today + chrono::Days::new(9), today + chrono::Days::new(11)).unwrap();
        let request = BookingRequest::new(HOUSE, stay, today, Horizon::default()).unwrap();
        self.service.book("alice", request).await.unwrap()
    }

    async fn apply(&self, events: &[Consumed]) -> Vec<Applied<()>> {
        let batch: Vec<_> = events.iter().map(|e| (self.key(), e.clone())).collect();
        self.service.on_events(&batch).await.unwrap()
    }

    async fn status(&self, id: &str) -> Option<BookStatus> {
        self.repo
            .snapshot()
            .await
            .bookings
            .get(id)
            .map(|b| b.status)
    }
}

/// Where a booking is before the event under test arrives.
#[derive(Debug, Clone, Copy)]
enum Start {
    NotCommitted,
    Booked,
    Confirmed,
    Rejected,
    Cancelled,
}

/// Brings a booking to `start`; its id (a fresh one for `NotCommitted`).
async fn at(w: &World, start: Start) -> String {
    if let Start::NotCommitted = start {
        return "not-committed".into();
    }
    let id = w.book().await.id;
    match start {
        Start::Confirmed => {
            w.apply(&[rented(&id)]).await;
        }
        Start::Rejected => {
            w.apply(&[rejected(&id)]).await;
        }
        Start::Cancelled => {
            w.service.cancel(&alice(), &id).await.unwrap();
        }
        _ => {}
    }
    w.repo.take_events().await;
    id
}

fn names(events: &[DomainEvent]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match e {
            DomainEvent::Booked(_) => "Booked",
            DomainEvent::BookConfirmed(_) => "BookConfirmed",
            DomainEvent::BookRejected(_) => "BookRejected",
            DomainEvent::BookCanceled(_) => "BookCanceled",
            _ => "other",
        })
        .collect()
}

/// Every consumed event in every state: the status after, what is published, whether a
/// refund is due, and what is kept for a booking not committed.
#[tokio::test]
async fn every_event_in_every_state() {
    use BookStatus::*;
    type Row = (
        Start,
        fn(&str) -> Consumed,
        Option<BookStatus>,
        &'static [&'static str],
        bool,
    );
    let table: &[Row] = &[
        (Start::NotCommitted, rented, None, &[], false),
        (Start::NotCommitted, rejected, None, &[], false),
        (Start::NotCommitted, paid, None, &[], false),
        (Start::NotCommitted, refunded, None, &[], false),
        (
            Start::Booked,
            rented,
            Some(Confirmed),
            &["BookConfirmed"],
            false,
        ),
        (
            Start::Booked,
            rejected,
            Some(Rejected),
            &["BookRejected"],
            true,
        ),
        (Start::Booked, paid, Some(Booked), &[], false),
        (
            Start::Booked,
            refunded,
            Some(BookCanceled),
            &["BookCanceled"],
            false,
        ),
        (Start::Confirmed, rented, Some(Confirmed), &[], false),
        (Start::Confirmed, rejected, Some(Confirmed), &[], false),
        (Start::Confirmed, paid, Some(Confirmed), &[], false),
        (
            Start::Confirmed,
            refunded,
            Some(BookCanceled),
            &["BookCanceled"],
            false,
        ),
        (Start::Rejected, rented, Some(Rejected), &[], true),
        (Start::Rejected, rejected, Some(Rejected), &[], true),
        (Start::Rejected, paid, Some(Rejected), &[], true),
        (Start::Rejected, refunded, Some(Rejected), &[], true),
        (Start::Cancelled, rented, Some(BookCanceled), &[], false),
        (Start::Cancelled, rejected, Some(BookCanceled), &[], false),
        (Start::Cancelled, paid, Some(BookCanceled), &[], false),
        (Start::Cancelled, refunded, Some(BookCanceled), &[], false),
    ];
    for &(start, event, status, published, refund_due) in table {
        let w = world();
        let id = at(&w, start).await;
        let e = event(&id);
        let case = format!("{start:?} + {e:?}");
        assert_eq!(
            w.apply(std::slice::from_ref(&e)).await,
            [Applied::Now(())],
            "{case}"
        );
        let store = w.repo.snapshot().await;
        assert_eq!(w.status(&id).await, status, "{case}");
        assert_eq!(names(&w.repo.take_events().await), published, "{case}");
        assert_eq!(store.refund_due.contains(&id), refund_due, "{case}");
        // Kept for a booking not committed: its decision, its payment; nothing else.
        let kept_decision = store.early.get(&id).cloned();
        let kept_payment = store.unmatched.get(&id).map(|(p, _)| *p);
        match (start, &e) {
            (Start::NotCommitted, Consumed::Decision { decision, .. }) => {
                assert_eq!(kept_decision.as_ref(), Some(decision), "{case}");
            }
            (Start::NotCommitted, Consumed::Paid { payment_id, .. }) => {
                assert_eq!(kept_payment, Some(*payment_id), "{case}");
            }
            _ => assert_eq!((kept_decision, kept_payment), (None, None), "{case}"),
        }
        // Delivered again (same key): a duplicate that changes nothing. A `Paid` for a
        // committed booking is never claimed: there is nothing it could change.
        let key = w.key();
        w.service
            .on_events(&[(key.clone(), e.clone())])
            .await
            .unwrap();
        let again = w.service.on_events(&[(key, e.clone())]).await.unwrap();
        let unclaimed = matches!(e, Consumed::Paid { .. }) && status.is_some();
        let want = if unclaimed {
            Applied::Now(())
        } else {
            Applied::Duplicate
        };
        assert_eq!(again, [want], "{case}, again");
        assert_eq!(w.status(&id).await, status, "{case}, again");
    }
}

#[tokio::test]
async fn a_decision_that_arrives_before_its_booking_applies_when_it_commits() {
    for (decision, status, event) in [
        (
            HouseDecision::Rented,
            BookStatus::Confirmed,
            "BookConfirmed",
        ),
        (
            HouseDecision::Rejected("taken".into()),
            BookStatus::Rejected,
            "BookRejected",
        ),
    ] {
        let w = world();
        // The ids are made by the service: learn the next one by booking through a first
        // commit path, then replay the order of a decision first.
        let first = w.book().await;
        let mut early = first.clone();
        early.id = "early".into();
        w.repo.take_events().await;
        w.apply(&[Consumed::Decision {
            book_id: "early".into(),
            decision: decision.clone(),
        }])
        .await;
        let stored = w.service.commit(early).await.unwrap().unwrap();
        assert_eq!(stored.status, status, "answered as decided");
        assert_eq!(w.status("early").await, Some(status));
        assert_eq!(names(&w.repo.take_events().await), ["Booked", event]);
        let store = w.repo.snapshot().await;
        assert!(store.early.is_empty(), "used once");
        assert_eq!(
            store.refund_due.contains("early"),
            status == BookStatus::Rejected
        );
    }
}

#[tokio::test]
async fn a_payment_that_arrives_before_its_booking_is_matched_when_it_commits() {
    let w = world();
    let mut b = w.book().await;
    b.id = "late".into();
    w.apply(&[paid("late")]).await;
    assert!(w.repo.snapshot().await.unmatched.contains_key("late"));
    w.service.commit(b).await.unwrap().unwrap();
    assert!(w.repo.snapshot().await.unmatched.is_empty());
    // The reconciler, long after: nothing to refund.
    w.clock.advance(chrono::Duration::minutes(5));
    assert_eq!(w.service.reconcile(GRACE).await.unwrap(), 0);
    assert!(w.payments.state().refunds.is_empty());
}

#[tokio::test]
async fn one_batch_applies_its_events_in_order() {
    // Confirmed, then its payment refunded: cancelled, both published.
    let w = world();
    let id = at(&w, Start::Booked).await;
    w.apply(&[rented(&id), refunded(&id)]).await;
    assert_eq!(w.status(&id).await, Some(BookStatus::BookCanceled));
    assert_eq!(
        names(&w.repo.take_events().await),
        ["BookConfirmed", "BookCanceled"]
    );
    // Refunded, then a decision: the decision finds it cancelled.
    let id = at(&w, Start::Booked).await;
    w.apply(&[refunded(&id), rented(&id)]).await;
    assert_eq!(w.status(&id).await, Some(BookStatus::BookCanceled));
    assert_eq!(names(&w.repo.take_events().await), ["BookCanceled"]);
    // The same event twice in one batch: applied once.
    let id = at(&w, Start::Booked).await;
    let key = w.key();
    let done = w
        .service
        .on_events(&[(key.clone(), rented(&id)), (key, rented(&id))])
        .await
        .unwrap();
    assert_eq!(done, [Applied::Now(()), Applied::Duplicate]);
    assert_eq!(names(&w.repo.take_events().await), ["BookConfirmed"]);
}

#[tokio::test]
async fn cancels_race_and_only_the_owner_or_an_admin_cancels() {
    let w = world();
    let id = at(&w, Start::Confirmed).await;
    let bob = Actor {
        id: "bob".into(),
        sees_all: false,
    };
    assert!(matches!(
        w.service.cancel(&bob, &id).await,
        Err(CancelBookingError::NotYours)
    ));
    assert!(matches!(
        w.service.cancel(&alice(), "nope").await,
        Err(CancelBookingError::NotFound(_))
    ));
    let cancelled = w.service.cancel(&alice(), &id).await.unwrap();
    assert_eq!(cancelled.status, BookStatus::BookCanceled);
    assert_eq!(cancelled.book_cancel_date, Some(w.clock.now()));
    assert_eq!(
        w.payments.state().refunds,
        std::slice::from_ref(&id),
        "refunded at once"
    );
    assert!(w.repo.snapshot().await.refund_due.is_empty());
    assert!(matches!(
        w.service.cancel(&alice(), &id).await,
        Err(CancelBookingError::Invalid(_))
    ));
    assert_eq!(names(&w.repo.take_events().await), ["BookCanceled"], "once");
    // Refunded elsewhere first: the customer's cancel finds it cancelled already.
    let id = at(&w, Start::Booked).await;
    w.apply(&[refunded(&id)]).await;
    assert!(matches!(
        w.service.cancel(&alice(), &id).await,
        Err(CancelBookingError::Invalid(_))
    ));
    // An admin cancels anyone's.
    let id = at(&w, Start::Booked).await;
    let admin = Actor {
        id: "root".into(),
        sees_all: true,
    };
    assert!(w.service.cancel(&admin, &id).await.is_ok());
}

/// What one customer may hold and how fast, with the defaults: 90 nights ahead (the
/// next is refused before payment is asked; a cancel gives nights back; nights already
/// passed do not count), ten bookings at once, then `TooFast` — nothing charged.
#[tokio::test]
async fn one_customer_holds_at_most_90_nights_ahead_and_books_at_a_persons_pace() {
    let w = world();
    let service = w
        .service
        .clone()
        .with_holdings(Holdings::default(), BookService::PACE);
    let today = service.today();
    let stay = |from: u64, nights: u64| {
        let stay = Stay::new(
            today + chrono::Days::new(from),
            today + chrono::Days::new(from + nights),
        )
        .unwrap();
        BookingRequest::new(HOUSE, stay, today, Horizon::default()).unwrap()
    };
    let first = service.book("alice", stay(1, 45)).await.unwrap();
    service.book("alice", stay(100, 45)).await.unwrap();
    let refused = service.book("alice", stay(200, 1)).await;
    assert!(
        matches!(
            refused,
            Err(BookError::Invalid(BookingInvalid::TooManyNights {
                held: 90,
                asked: 1,
                max: 90
            }))
        ),
        "{refused:?}"
    );
    assert_eq!(w.payments.state().paid.len(), 2, "nothing asked of payment");
    service.cancel(&alice(), &first.id).await.unwrap();
    service.book("alice", stay(200, 1)).await.unwrap();
    // Nights that have passed are no longer held ahead.
    w.clock.advance(chrono::Duration::days(120));
    let today = service.today();
    let later = Stay::new(today + chrono::Days::new(1), today + chrono::Days::new(60)).unwrap();
    let later = BookingRequest::new(HOUSE, later, today, Horizon::default()).unwrap();
    service.book("alice", later).await.unwrap();
    // The pace: bob's ten at once pass, the eleventh waits.
    for n in 0..10 {
        service.book("bob", stay(300 + n, 1)).await.unwrap();
    }
    let paid = w.payments.state().paid.len();
    let fast = service.book("bob", stay(400, 1)).await;
    assert!(
        matches!(fast, Err(BookError::TooFast { retry_after }) if retry_after >= Duration::from_secs(1)),
        "{fast:?}"
    );
    assert_eq!(w.payments.state().paid.len(), paid, "nothing charged");
}

/// A customer cannot cancel a stay that has begun (its check-in day, UTC, or later) —
/// nothing moves, nothing is refunded; the day before, they can; an admin can at any time,
/// and the refund follows as for any cancel.
#[tokio::test]
async fn a_customer_cannot_cancel_a_stay_that_has_begun_and_an_admin_can() {
    let w = world();
    let admin = Actor {
        id: "root".into(),
        sees_all: true,
    };
    // The booking's check-in is nine days after today.
    let early = at(&w, Start::Confirmed).await;
    let late = at(&w, Start::Confirmed).await;
    let booked = at(&w, Start::Booked).await;
    w.repo.take_events().await;
    w.clock.advance(chrono::Duration::days(8));
    assert!(
        w.service.cancel(&alice(), &early).await.is_ok(),
        "the day before"
    );
    w.clock.advance(chrono::Duration::days(1));
    for id in [&late, &booked] {
        let refused = w.service.cancel(&alice(), id).await;
        assert!(
            matches!(refused, Err(CancelBookingError::StayBegun(on)) if on == w.service.today()),
            "{refused:?}"
        );
    }
    assert_eq!(w.status(&late).await, Some(BookStatus::Confirmed));
    assert_eq!(
        w.payments.state().refunds,
        std::slice::from_ref(&early),
        "only the early one"
    );
    w.clock.advance(chrono::Duration::days(30));
    assert_eq!(
        w.service.cancel(&admin, &late).await.unwrap().status,
        BookStatus::BookCanceled
    );
    assert_eq!(w.payments.state().refunds, [early.clone(), late]);
    assert_eq!(
        names(&w.repo.take_events().await),
        ["BookCanceled", "BookCanceled"]
    );
    // A cancelled booking is refused for its status first, whenever it is asked.
    let again = w.service.cancel(&alice(), &early).await;
    assert!(
        matches!(again, Err(CancelBookingError::Invalid(_))),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_cancel_while_payment_is_down_stands_and_is_refunded_later() {
    let w = world();
    let id = at(&w, Start::Booked).await;
    w.payments.set_down(true);
    w.service.cancel(&alice(), &id).await.unwrap();
    assert!(w.repo.snapshot().await.refund_due.contains(&id));
    assert_eq!(w.service.reconcile(GRACE).await.unwrap(), 0, "still down");
    w.payments.set_down(false);
    assert_eq!(w.service.reconcile(GRACE).await.unwrap(), 1);
    assert_eq!(w.payments.state().refunds, [id]);
    assert!(w.repo.snapshot().await.refund_due.is_empty());
}

#[tokio::test]
async fn the_reconciler_refunds_payments_whose_booking_never_came_and_rejected_ones() {
    let w = world();
    let rejected_id = at(&w, Start::Rejected).await;
    w.apply(&[paid("orphan")]).await;
    // Within the grace: only the rejected booking's refund.
    assert_eq!(w.service.reconcile(GRACE).await.unwrap(), 1);
    assert_eq!(
        w.payments.state().refunds,
        std::slice::from_ref(&rejected_id)
    );
    // After it, with payment down: tried, kept, and made once payment is back.
    w.clock.advance(chrono::Duration::seconds(11));
    w.payments.set_down(true);
    assert_eq!(w.service.reconcile(GRACE).await.unwrap(), 0);
    assert!(w.repo.snapshot().await.unmatched.contains_key("orphan"));
    w.payments.set_down(false);
    assert_eq!(w.service.reconcile(GRACE).await.unwrap(), 1);
    assert_eq!(w.payments.state().refunds, [rejected_id, "orphan".into()]);
    let store = w.repo.snapshot().await;
    assert!(store.unmatched.is_empty() && store.refund_due.is_empty());
    // The booking turns up after all: it may not commit over a refunded payment.
    let mut late = w.book().await;
    late.id = "orphan".into();
    assert_eq!(w.service.commit(late).await.unwrap(), None);
    assert_eq!(w.status("orphan").await, None);
    assert_eq!(w.service.reconcile(GRACE).await.unwrap(), 0, "nothing more");
}

#[tokio::test]
async fn a_booking_that_committed_is_never_refunded_by_the_reconciler() {
    let w = world();
    let id = at(&w, Start::Booked).await;
    // Its Paid came late, after the commit: nothing kept, nothing refunded.
    w.apply(&[paid(&id)]).await;
    w.clock.advance(chrono::Duration::minutes(1));
    assert_eq!(w.service.reconcile(GRACE).await.unwrap(), 0);
    assert!(
        !w.service.abandon(&id).await.unwrap(),
        "the booking holds its id"
    );
    assert!(w.payments.state().refunds.is_empty());
}

#[tokio::test]
async fn with_payment_down_nothing_is_booked() {
    let w = world();
    w.payments.set_down(true);
    let today = w.service.today();
    let request = BookingRequest::new(
        HOUSE,
        Stay::one_night(today).unwrap(),
        today,
        Horizon::default(),
    )
    .unwrap();
    assert!(matches!(
        w.service.book("alice", request).await,
        Err(BookError::PaymentUnavailable { .. })
    ));
    assert!(w.repo.snapshot().await.bookings.is_empty());
    assert!(w.repo.take_events().await.is_empty());
}

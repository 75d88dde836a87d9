//! The payment aggregate's rules through the service over an in-memory store: paying once
//! per booking, refunding once, who reads what — in milliseconds.

use std::sync::Arc;

use chrono::{TimeZone as _, Utc};
use events::{DomainEvent, Stay};
use platform::auth::Actor;
use platform::clock::{Clock as _, FixedClock};

use super::fakes::FakePayments;
use super::models::{BookId, Money, NewPayment, PaymentStatus};
use super::ports::PaymentKey;
use super::service::{Outcome, PayError, PaymentService, RefundError};

fn world() -> (PaymentService, FakePayments, FixedClock) {
    let store = FakePayments::default();
    let clock = FixedClock::at(Utc.with_ymd_and_hms(2030, 1, 1, 9, 0, 0).unwrap());
    let service = PaymentService::new(Arc::new(store.clone())).with_clock(Arc::new(clock.clone()));
    (service, store, clock)
}

fn new(book: &str, customer: &str, amount: i64) -> NewPayment {
    NewPayment {
        book_id: BookId::new(book).unwrap(),
        house_id: 1,
        customer_id: customer.into(),
        amount: Money::new(amount).unwrap(),
        stay: Stay::one_night(events::parse_date("2030-02-01").unwrap()).unwrap(),
    }
}

fn kinds(events: &[DomainEvent]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match e {
            DomainEvent::Paid(_) => "Paid",
            DomainEvent::PaymentCanceled(_) => "PaymentCanceled",
            _ => "other",
        })
        .collect()
}

#[tokio::test]
async fn a_booking_is_paid_once_and_a_different_repeat_is_refused() {
    let (service, store, clock) = world();
    let (p, outcome) = service.pay(new("b1", "alice", 100)).await.unwrap();
    assert_eq!(outcome, Outcome::Done);
    assert_eq!(
        (p.status, p.payment_date),
        (PaymentStatus::Paid, clock.now())
    );
    // The same request again (a retry after a timeout): the same payment, no new event.
    let (again, outcome) = service.pay(new("b1", "alice", 100)).await.unwrap();
    assert_eq!((again, outcome), (p.clone(), Outcome::AlreadyDone));
    // The same booking with other values: refused, nothing changes.
    for other in [new("b1", "alice", 999), new("b1", "mallory", 100)] {
        assert!(matches!(
            service.pay(other).await,
            Err(PayError::Conflict(b)) if b == "b1"
        ));
    }
    let s = store.snapshot().await;
    assert_eq!(s.payments.len(), 1);
    assert_eq!(kinds(&s.outbox), ["Paid"]);
    match &s.outbox[0] {
        DomainEvent::Paid(e) => {
            assert_eq!(
                (e.payment_id, e.book_id.as_str(), e.house_price),
                (p.id, "b1", 100)
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_refund_moves_money_once_by_id_or_by_booking() {
    let (service, store, clock) = world();
    let (p, _) = service.pay(new("b1", "alice", 100)).await.unwrap();
    clock.advance(chrono::Duration::minutes(3));
    let (refunded, outcome) = service.refund(PaymentKey::Book("b1")).await.unwrap();
    assert_eq!(outcome, Outcome::Done);
    assert_eq!(refunded.status, PaymentStatus::PaymentCanceled);
    assert_eq!(refunded.payment_cancel_date, Some(clock.now()));
    // Again, by either name: the refunded payment as it is, no second refund.
    clock.advance(chrono::Duration::minutes(1));
    for key in [PaymentKey::Book("b1"), PaymentKey::Id(p.id)] {
        let (same, outcome) = service.refund(key).await.unwrap();
        assert_eq!((&same, outcome), (&refunded, Outcome::AlreadyDone));
    }
    assert_eq!(
        kinds(&store.snapshot().await.outbox),
        ["Paid", "PaymentCanceled"]
    );
    assert!(matches!(
        service.refund(PaymentKey::Id(999)).await,
        Err(RefundError::NotFound(id)) if id == "999"
    ));
    assert!(matches!(
        service.refund(PaymentKey::Book("nope")).await,
        Err(RefundError::NotFound(id)) if id == "nope"
    ));
}

#[tokio::test]
async fn a_customer_sees_their_own_payments_and_anothers_is_missing() {
    let (service, _, _) = world();
    let (p, _) = service.pay(new("b1", "alice", 100)).await.unwrap();
    service.pay(new("b2", "bob", 100)).await.unwrap();
    let actor = |id: &str, sees_all| Actor {
        id: id.into(),
        sees_all,
    };
    let got = |who, all, id| {
        let service = service.clone();
        let reader = actor(who, all);
        async move { service.get(&reader, id).await.unwrap().map(|p| p.id) }
    };
    assert_eq!(got("alice", false, p.id).await, Some(p.id));
    assert_eq!(got("root", true, p.id).await, Some(p.id));
    assert_eq!(
        got("bob", false, p.id).await,
        None,
        "bob's answer for alice's"
    );
    assert_eq!(got("bob", false, 999).await, None, "and for none: the same");
    let books = |who, all| {
        let service = service.clone();
        let reader = actor(who, all);
        async move {
            service
                .list(&reader, None, 10, 0, platform::http::Order::Oldest)
                .await
                .unwrap()
                .into_iter()
                .map(|p| p.book_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(books("bob", false).await, ["b2"]);
    assert_eq!(books("root", true).await, ["b1", "b2"]);
}

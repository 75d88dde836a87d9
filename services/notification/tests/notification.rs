//! Integration tests of the notification service: events injected on the real broker as
//! book and payment publish them, on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{NaiveDate, Utc};
use events::{
    BookCanceled, BookConfirmed, BookRejected, Booked, Envelope, Event, HouseRented, Paid,
    PaymentCanceled,
};
use notification::{Application, Settings};
use platform::auth::Role;
use reqwest::StatusCode;
use serde_json::Value;
use testkit::{eventually, on_both_backends, token, Backend, TestApp, World};

fn d(s: &str) -> NaiveDate {
    events::parse_date(s).unwrap()
}

fn env<E: Event>(e: &E) -> Envelope {
    Envelope::new(e).unwrap()
}

fn paid(book: &str, customer: &str) -> Paid {
    Paid {
        payment_id: 7,
        book_id: book.into(),
        house_id: 1,
        customer_id: customer.into(),
        house_price: 200,
        check_in: d("2030-06-01"),
        check_out: d("2030-06-03"),
        payment_date: Utc::now(),
    }
}

fn booked(book: &str, customer: &str) -> Booked {
    Booked {
        book_id: book.into(),
        customer_id: customer.into(),
        house_id: 1,
        house_name: "Jeju".into(),
        house_price: 200,
        check_in: d("2030-06-01"),
        check_out: d("2030-06-03"),
        payment_id: 7,
    }
}

async fn messages(app: &TestApp, who: &str, roles: &[Role]) -> Vec<Value> {
    let (s, v) = app.get("/notifications", &token(who, roles)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v.as_array().unwrap().clone()
}

fn kinds(list: &[Value], book: &str) -> Vec<String> {
    list.iter()
        .filter(|m| m["bookId"] == book)
        .map(|m| m["kind"].as_str().unwrap().to_owned())
        .collect()
}

async fn each_customer_is_told_about_their_own_bookings_once(backend: Backend) {
    let world = World::new(backend);
    let settings = world.settings("notification").await;
    platform::kafka::ensure_topics(&settings.kafka)
        .await
        .unwrap();
    let (a, b) = (testkit::unique("b-"), testkit::unique("b-"));
    // History from before the service ever ran: it starts from the topics' beginnings.
    let (paid_a, booked_a) = (env(&paid(&a, "alice")), env(&booked(&a, "alice")));
    let rented = env(&HouseRented {
        house_id: 1,
        book_id: a.clone(),
        check_in: d("2030-06-01"),
        check_out: d("2030-06-03"),
    });
    let confirmed = env(&BookConfirmed {
        book_id: a.clone(),
        house_id: 1,
    });
    for e in [
        paid_a,
        booked_a,
        rented,
        confirmed.clone(),
        confirmed.clone(), // delivered twice: told once
    ] {
        world.publish(&e).await;
    }
    let app = TestApp::spawn::<Application>(Settings {
        common: settings,
        ..Settings::default()
    })
    .await;
    let alice = eventually(30, "alice's history", || async {
        let list = messages(&app, "alice", &[Role::Customer]).await;
        (kinds(&list, &a).len() == 2).then_some(list)
    })
    .await;
    assert_eq!(kinds(&alice, &a), ["PAYMENT_RECEIVED", "BOOKING_CONFIRMED"]);
    assert_eq!(
        alice[1]["message"],
        format!("Your booking {a} is confirmed.")
    );
    assert_eq!(alice[1]["id"], confirmed.event_id.to_string());
    assert_eq!(alice[1]["customerId"], "alice");

    // Bob's booking: its rejection arrives before anything says whose it is.
    for e in [
        env(&BookRejected {
            book_id: b.clone(),
            house_id: 1,
            reason: "NIGHTS_TAKEN".into(),
        }),
        env(&paid(&b, "bob")),
        env(&PaymentCanceled {
            payment_id: 8,
            book_id: b.clone(),
            house_id: 1,
            house_price: 200,
            payment_cancel_date: Utc::now(),
        }),
    ] {
        world.publish(&e).await;
    }
    let bob = eventually(30, "bob's messages", || async {
        let list = messages(&app, "bob", &[Role::Customer]).await;
        (kinds(&list, &b).len() == 3).then_some(list)
    })
    .await;
    assert_eq!(
        kinds(&bob, &b),
        ["BOOKING_REJECTED", "PAYMENT_RECEIVED", "PAYMENT_REFUNDED"],
        "the early rejection got its owner when the payment said who it was"
    );
    assert!(kinds(&bob, &a).is_empty(), "bob never sees alice's");
    assert!(kinds(&messages(&app, "alice", &[Role::Customer]).await, &b).is_empty());
    let all = messages(&app, "admin", &[Role::Admin]).await;
    assert_eq!((kinds(&all, &a).len(), kinds(&all, &b).len()), (2, 3));

    // A cancel and its refund reach alice too.
    for e in [
        env(&BookCanceled {
            book_id: a.clone(),
            house_id: 1,
            book_cancel_date: Utc::now(),
        }),
        env(&PaymentCanceled {
            payment_id: 7,
            book_id: a.clone(),
            house_id: 1,
            house_price: 200,
            payment_cancel_date: Utc::now(),
        }),
    ] {
        world.publish(&e).await;
    }
    eventually(30, "the cancel told", || async {
        let list = messages(&app, "alice", &[Role::Customer]).await;
        (kinds(&list, &a)
            == [
                "PAYMENT_RECEIVED",
                "BOOKING_CONFIRMED",
                "BOOKING_CANCELED",
                "PAYMENT_REFUNDED",
            ])
        .then_some(())
    })
    .await;
    app.stop().await;
}

async fn bad_requests_get_json_4xx(backend: Backend) {
    let world = World::new(backend);
    let app = TestApp::spawn::<Application>(Settings {
        common: world.settings("notification").await,
        ..Settings::default()
    })
    .await;
    let r = testkit::http()
        .get(app.url("/notifications"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let alice = token("alice", &[Role::Customer]);
    for q in ["limit=0", "limit=5000", "offset=-1", "limit=x", "limit=1.5"] {
        let (s, e) = app.get(&format!("/notifications?{q}"), &alice).await;
        assert!(s.is_client_error(), "{q}: {s}");
        assert!(
            e["error"].is_string() && e["message"].is_string(),
            "{q}: {e}"
        );
    }
    testkit::assert_documented_routes_exist(&app, include_str!("../openapi.json"), &alice).await;
    app.stop().await;
}

async fn open_stream(app: &TestApp, tok: &str, last: Option<&str>) -> reqwest::Response {
    let mut req = testkit::sse::client()
        .get(app.url("/notifications/stream"))
        .bearer_auth(tok);
    if let Some(id) = last {
        req = req.header("last-event-id", id);
    }
    req.send().await.unwrap()
}

/// The live feed: each reader is sent their own messages as they are stored, in order,
/// resumes after the last id seen, holds a bounded number of streams, and a stream with
/// nothing to say ends.
async fn each_customer_streams_their_own_messages_live(backend: Backend) {
    let world = World::new(backend);
    let settings = world.settings("notification").await;
    platform::kafka::ensure_topics(&settings.kafka)
        .await
        .unwrap();
    let app = TestApp::spawn::<Application>(Settings {
        common: settings,
        streams: notification::StreamSettings {
            bounds: platform::stream::StreamBounds {
                per_subject: 2,
                total: 50,
            },
            idle_secs: 3,
            keepalive_secs: 1,
        },
    })
    .await;
    let (alice, bob) = (
        token("alice", &[Role::Customer]),
        token("bob", &[Role::Customer]),
    );
    // Refused before anything is held: no token, a made-up place.
    let anonymous = testkit::sse::client()
        .get(app.url("/notifications/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    for bad in ["x", "-1", "1:", "01", "1:a:b"] {
        let r = open_stream(&app, &alice, Some(bad)).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], "bad_request", "{bad}: {e}");
    }

    let mut hers = testkit::sse::SseStream::new(open_stream(&app, &alice, None).await);
    let mut his = testkit::sse::SseStream::new(open_stream(&app, &bob, None).await);
    let (a, earlier) = (testkit::unique("b-"), testkit::unique("b-"));
    // Her confirmation is stored before anything says whose booking it is (only an admin
    // sees it); then another of her messages moves her stream past it; then the payment
    // says the booking is hers: the confirmation is sent to her then, after that place.
    let confirmed = env(&BookConfirmed {
        book_id: a.clone(),
        house_id: 1,
    });
    world.publish(&confirmed).await;
    eventually(30, "the confirmation stored without an owner", || async {
        let all = messages(&app, "admin", &[Role::Admin]).await;
        all.iter()
            .any(|m| m["id"] == confirmed.event_id.to_string())
            .then_some(())
    })
    .await;
    world.publish(&env(&paid(&earlier, "alice"))).await;
    let before = hers.next().await;
    assert_eq!(before.json()["bookId"], earlier.as_str());
    world.publish(&env(&paid(&a, "alice"))).await;
    let first = hers.next().await;
    let second = hers.next().await;
    let got: Vec<(String, String)> = [&first, &second]
        .iter()
        .map(|e| {
            assert_eq!(e.event, "notification");
            let n = e.json();
            assert_eq!(n["customerId"], "alice");
            (
                n["bookId"].as_str().unwrap().to_owned(),
                n["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut kinds: Vec<&str> = got.iter().map(|(_, k)| k.as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["BOOKING_CONFIRMED", "PAYMENT_RECEIVED"], "{got:?}");
    assert!(got.iter().all(|(b, _)| *b == a), "{got:?}");
    // Bob's stream is ordered too: the first thing he is sent is his own.
    let b = testkit::unique("b-");
    world.publish(&env(&paid(&b, "bob"))).await;
    let bobs = his.next().await.json();
    assert_eq!(
        (bobs["bookId"].as_str(), bobs["customerId"].as_str()),
        (Some(b.as_str()), Some("bob"))
    );

    // Reconnecting after her first event resumes with her second, and nothing before.
    let mut again =
        testkit::sse::SseStream::new(open_stream(&app, &alice, first.id.as_deref()).await);
    assert_eq!(again.next().await, second);
    // Her two streams are her share: a third is refused until one closes.
    let third = open_stream(&app, &alice, None).await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(third.headers().contains_key("retry-after"));
    assert_eq!(
        third.json::<Value>().await.unwrap()["error"],
        "too_many_streams"
    );
    drop(again);
    let reopened = eventually(30, "a closed stream's place given back", || async {
        let r = open_stream(&app, &alice, None).await;
        (r.status() == StatusCode::OK).then_some(r)
    })
    .await;
    drop(reopened);
    // With nothing more to say, a stream ends by itself (keep-alives do not count).
    his.ends_within(std::time::Duration::from_secs(60), "an idle stream ends")
        .await;
    drop(hers);
    app.stop().await;
}

/// A database with messages from before the feed existed: migration 3 numbers them in the
/// order they happened, and the live feed continues after them.
async fn the_feed_numbers_messages_stored_before_it(backend: Backend) {
    let world = World::new(backend);
    let settings = world.settings("notification").await;
    let before = platform::db::Db::connect(&settings.database, &notification::MIGRATIONS[..1])
        .await
        .unwrap();
    for (id, customer, at) in [
        ("e2", Some("alice"), "2030-01-02T00:00:00Z"),
        ("e1", Some("alice"), "2030-01-01T00:00:00Z"),
        ("e3", None, "2030-01-01T00:00:00Z"),
    ] {
        sqlx::query(
            "INSERT INTO notifications (id, book_id, customer_id, kind, message, occurred_at) \
             VALUES ($1, 'b', $2, 'PAYMENT_RECEIVED', 'm', $3)",
        )
        .bind(id)
        .bind(customer)
        .bind(at)
        .execute(before.pool())
        .await
        .unwrap();
    }
    before.close().await;
    platform::kafka::ensure_topics(&settings.kafka)
        .await
        .unwrap();
    let app = TestApp::spawn::<Application>(Settings {
        common: settings,
        ..Settings::default()
    })
    .await;
    let admin = token("admin", &[Role::Admin]);
    let mut all = testkit::sse::SseStream::new(
        testkit::sse::client()
            .get(app.url("/notifications/stream"))
            .bearer_auth(&admin)
            .header("last-event-id", "0")
            .send()
            .await
            .unwrap(),
    );
    let mut seen = Vec::new();
    for _ in 0..3 {
        let e = all.next().await;
        seen.push((
            e.id.clone().unwrap(),
            e.json()["id"].as_str().unwrap().to_owned(),
        ));
    }
    assert_eq!(
        seen,
        [
            ("1:e1".to_owned(), "e1".to_owned()),
            ("2:e3".to_owned(), "e3".to_owned()),
            ("3:e2".to_owned(), "e2".to_owned())
        ],
        "numbered by when they happened"
    );
    // What is stored next comes after them.
    let book = testkit::unique("b-");
    world.publish(&env(&paid(&book, "alice"))).await;
    let next = all.next().await;
    assert!(next.id.as_deref().unwrap().starts_with("4:"), "{next:?}");
    assert_eq!(next.json()["bookId"], book.as_str());
    drop(all);
    app.stop().await;
}

on_both_backends!(
    the_feed_numbers_messages_stored_before_it,
    each_customer_is_told_about_their_own_bookings_once,
    bad_requests_get_json_4xx,
    each_customer_streams_their_own_messages_live,
);

//! Integration tests of the house service: the real application on port 0, against the
//! real broker, on SQLite and on PostgreSQL. Events are injected onto the topic exactly as
//! `payment` and `book` publish them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::NaiveDate;
use events::{BookCanceled, Envelope, EventKey, Paid, PaymentCanceled};
use house::domain::models::{RejectReason, ReleaseOutcome, Reservation, ReserveOutcome, Stay};
use house::domain::ports::{Applied, Command, Decided, HouseRepository};
use house::outbound::db::SqlHouses;
use house::{Application, Settings};
use platform::auth::Role;
use platform::settings::CommonSettings;
use reqwest::StatusCode;
use serde_json::{json, Value};
use testkit::{eventually, inject, on_both_backends, token, Backend, EventProbe, TestApp, World};

async fn spawn(common: &CommonSettings) -> TestApp {
    TestApp::spawn::<Application>(Settings {
        common: common.clone(),
    })
    .await
}

fn admin() -> String {
    token("admin", &[Role::Admin])
}

fn d(s: &str) -> NaiveDate {
    events::parse_date(s).unwrap()
}

fn paid(book: &str, house: i64, check_in: &str, check_out: &str) -> Envelope {
    Envelope::new(&Paid {
        payment_id: 1,
        book_id: book.into(),
        house_id: house,
        customer_id: "alice".into(),
        house_price: 100,
        check_in: d(check_in),
        check_out: d(check_out),
        payment_date: chrono::Utc::now(),
    })
    .unwrap()
}

fn of<'a>(events: &'a [Envelope], ty: &str, book: &str) -> Vec<&'a Envelope> {
    events
        .iter()
        .filter(|e| e.event_type == ty && e.correlation_id == book)
        .collect()
}

async fn register(app: &TestApp, name: &str, price: i64) -> i64 {
    let (s, h) = app
        .post(
            "/houses",
            &admin(),
            json!({"houseName": name, "housePrice": price}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{h}");
    h["id"].as_i64().unwrap()
}

/// How many events of a type ended with an outcome, read from `/metrics`.
async fn event_count(app: &TestApp, ty: &str, outcome: &str) -> u64 {
    let text = app.metrics().await;
    let needle = format!(
        "housebook_events_total{{event_type=\"{ty}\",outcome=\"{outcome}\",service=\"house\"}} "
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&needle))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0)
}

async fn registering_a_house_is_for_admins_and_validated(backend: Backend) {
    let world = World::new(backend);
    let app = spawn(&world.settings("house").await).await;
    let mut probe = world.probe();

    // The seed's command as written: client-sent id and status are ignored, price as text.
    let (s, h) = app
        .post("/houses", &admin(), json!({"id": 77, "houseName": "Jeju stone house", "housePrice": "200000", "status": "WAITING"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{h}");
    assert_ne!(h["id"], 77);
    assert_eq!(h["housePrice"], 200_000);
    assert_eq!(h["status"], "AVAILABLE");

    let customer = token("alice", &[Role::Customer]);
    let (s, _) = app
        .post(
            "/houses",
            &customer,
            json!({"houseName": "x", "housePrice": 5}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let bad: Vec<(Value, StatusCode)> = vec![
        (
            json!({"houseName": "", "housePrice": 5}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"houseName": "a".repeat(101), "housePrice": 5}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"houseName": "a\u{0000}b", "housePrice": 5}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        // Issue 18: a bidi override displays this as "exe.png"; zero-width characters
        // make two names that look the same.
        (
            json!({"houseName": "\u{202e}gnp.exe", "housePrice": 5}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"houseName": "Jeju\u{200b}", "housePrice": 5, "houseDescription": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"houseName": "a", "housePrice": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"houseName": "a", "housePrice": 1_000_000_000_001_i64}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"houseName": "a", "housePrice": 18446744073709551615_u64}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"houseName": "a", "housePrice": 2.5}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"houseName": 5, "housePrice": 5}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"housePrice": 5}), StatusCode::BAD_REQUEST),
        (json!([1, 2]), StatusCode::BAD_REQUEST),
    ];
    for (body, want) in bad {
        let (s, e) = app.post("/houses", &admin(), body.clone()).await;
        assert_eq!(s, want, "{body} → {e}");
        assert!(e["error"].is_string(), "{e}");
    }
    let (s, _) = app.get("/houses/424242", &customer).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.get("/houses?date=2030-02-30", &customer).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let r = testkit::http()
        .get(app.url("/houses"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let (_, list) = app.get("/houses", &customer).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "only the valid house is stored: {list}"
    );
    let seen = probe
        .wait_until(20, "HouseRegistered", |e| !e.is_empty())
        .await;
    let seen = probe.settle(1).await.len().max(seen.len());
    assert_eq!(seen, 1, "one event for one registration");
    app.stop().await;
}

async fn paid_reserves_the_nights_and_an_overlap_is_rejected(backend: Backend) {
    let world = World::new(backend);
    let app = spawn(&world.settings("house").await).await;
    let mut probe = world.probe();
    let house = register(&app, "Seoul loft", 100).await;
    let (b1, b2, b3, b4) = (
        "b1-".to_owned() + &testkit::unique(""),
        testkit::unique("b2-"),
        testkit::unique("b3-"),
        testkit::unique("b4-"),
    );

    world
        .publish(&paid(&b1, house, "2030-01-10", "2030-01-12"))
        .await;
    probe
        .wait_until(20, "HouseRented b1", |e| {
            !of(e, "HouseRented", &b1).is_empty()
        })
        .await;
    world
        .publish(&paid(&b2, house, "2030-01-11", "2030-01-13"))
        .await;
    world
        .publish(&paid(&b3, house, "2030-01-12", "2030-01-14"))
        .await;
    world
        .publish(&paid(&b4, 999_999, "2030-01-12", "2030-01-14"))
        .await;
    let seen = probe
        .wait_until(20, "decisions for b2, b3, b4", |e| {
            !of(e, "HouseRentRejected", &b2).is_empty()
                && !of(e, "HouseRented", &b3).is_empty()
                && !of(e, "HouseRentRejected", &b4).is_empty()
        })
        .await;
    assert_eq!(
        of(&seen, "HouseRentRejected", &b2)[0].payload["reason"],
        "NIGHTS_TAKEN"
    );
    assert_eq!(
        of(&seen, "HouseRentRejected", &b4)[0].payload["reason"],
        "UNKNOWN_HOUSE"
    );
    assert!(of(&seen, "HouseRented", &b2).is_empty());

    let (_, h) = app
        .get(&format!("/houses/{house}?date=2030-01-11"), &admin())
        .await;
    assert_eq!(h["status"], "RENTED");
    let nights: Vec<&str> = h["reservedNights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["night"].as_str().unwrap())
        .collect();
    assert_eq!(nights, vec!["2030-01-11", "2030-01-12", "2030-01-13"]);
    assert_eq!(h["reservedNights"][0]["bookId"], b1.as_str());
    let (_, h) = app
        .get(
            &format!("/houses/{house}?date=20300114"),
            &token("bob", &[Role::Customer]),
        )
        .await;
    assert_eq!(h["status"], "AVAILABLE");
    let (_, h) = app
        .get(
            &format!("/houses/{house}?date=2030-01-10"),
            &token("bob", &[Role::Customer]),
        )
        .await;
    assert!(
        h["reservedNights"][0].get("bookId").is_none(),
        "customers do not see others' booking ids"
    );
    let (_, list) = app.get("/houses?date=2030-01-13", &admin()).await;
    assert_eq!(list[0]["status"], "RENTED");
    // Issue 18: one answer holds at most 366 reserved nights, whatever date is asked;
    // a client pages on from the day after the last. Two stays of a year each, beside
    // the four nights above: 734 nights in three answers.
    let (b5, b6) = (testkit::unique("b5-"), testkit::unique("b6-"));
    world
        .publish(&paid(&b5, house, "2031-01-01", "2032-01-01"))
        .await;
    world
        .publish(&paid(&b6, house, "2032-01-01", "2032-12-31"))
        .await;
    probe
        .wait_until(20, "HouseRented b5 and b6", |e| {
            !of(e, "HouseRented", &b5).is_empty() && !of(e, "HouseRented", &b6).is_empty()
        })
        .await;
    let nights_from = |date: String| {
        let app = &app;
        async move {
            let (s, h) = app
                .get(&format!("/houses/{house}?date={date}"), &admin())
                .await;
            assert_eq!(s, StatusCode::OK, "{date}: {h}");
            h["reservedNights"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["night"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let first = nights_from("0001-01-01".into()).await;
    assert_eq!(first.len(), 366, "from the year 1: one bounded answer");
    assert_eq!(first[0], "2030-01-10");
    let mut all = Vec::new();
    let mut from = "2000-01-01".to_owned();
    loop {
        let page = nights_from(from.clone()).await;
        assert!(page.len() <= 366);
        let Some(last) = page.last() else { break };
        from = (events::parse_date(last).unwrap() + chrono::Days::new(1)).to_string();
        let full = page.len() == 366;
        all.extend(page);
        if !full {
            break;
        }
    }
    let distinct: std::collections::BTreeSet<_> = all.iter().cloned().collect();
    assert_eq!((all.len(), distinct.len()), (734, 734), "every night once");
    assert_eq!(all.last().map(String::as_str), Some("2032-12-30"));
    let (s, _) = app
        .get(&format!("/houses/{house}?date=%2B10000-01-01"), &admin())
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "a five-digit year");
    app.stop().await;
}

async fn a_duplicated_event_is_applied_once(backend: Backend) {
    let world = World::new(backend);
    let app = spawn(&world.settings("house").await).await;
    let mut probe = world.probe();
    let house = register(&app, "Busan flat", 100).await;
    let book = testkit::unique("b-");
    let env = paid(&book, house, "2030-03-01", "2030-03-04");
    world.publish(&env).await;
    world.publish(&env).await;
    // Another Paid for the same booking (a new eventId): the booking was decided already.
    world
        .publish(&paid(&book, house, "2030-03-01", "2030-03-04"))
        .await;
    eventually(20, "three Paid events handled", || async {
        let n = event_count(&app, "Paid", "applied").await
            + event_count(&app, "Paid", "duplicate").await;
        (n == 3).then_some(())
    })
    .await;
    assert_eq!(
        event_count(&app, "Paid", "duplicate").await,
        1,
        "the same eventId is skipped"
    );
    let seen = probe.settle(2).await;
    assert_eq!(
        of(&seen, "HouseRented", &book).len(),
        1,
        "one reservation, one event: {seen:#?}"
    );
    let (_, h) = app
        .get(&format!("/houses/{house}?date=2030-03-01"), &admin())
        .await;
    assert_eq!(h["reservedNights"].as_array().unwrap().len(), 3);
    app.stop().await;
}

async fn cancelling_releases_once_and_a_late_paid_reserves_nothing(backend: Backend) {
    let world = World::new(backend);
    let app = spawn(&world.settings("house").await).await;
    let mut probe = world.probe();
    let house = register(&app, "Gangneung cabin", 100).await;
    let book = testkit::unique("b-");
    world
        .publish(&paid(&book, house, "2030-05-01", "2030-05-03"))
        .await;
    probe
        .wait_until(20, "HouseRented", |e| {
            !of(e, "HouseRented", &book).is_empty()
        })
        .await;

    let refund = PaymentCanceled {
        payment_id: 1,
        book_id: book.clone(),
        house_id: house,
        house_price: 100,
        payment_cancel_date: chrono::Utc::now(),
    };
    world.publish(&Envelope::new(&refund).unwrap()).await;
    let cancel = BookCanceled {
        book_id: book.clone(),
        house_id: house,
        book_cancel_date: chrono::Utc::now(),
    };
    world.publish(&Envelope::new(&cancel).unwrap()).await;
    let seen = probe
        .wait_until(20, "HouseRentCanceled", |e| {
            !of(e, "HouseRentCanceled", &book).is_empty()
        })
        .await;
    assert_eq!(
        seen.iter()
            .find(|e| e.event_type == "HouseRentCanceled")
            .unwrap()
            .payload["checkIn"],
        "2030-05-01"
    );
    eventually(20, "both cancels handled", || async {
        let n = event_count(&app, "PaymentCanceled", "applied").await
            + event_count(&app, "BookCanceled", "applied").await;
        (n == 2).then_some(())
    })
    .await;
    let (_, h) = app
        .get(&format!("/houses/{house}?date=2030-05-01"), &admin())
        .await;
    assert_eq!(h["status"], "AVAILABLE");

    // Cancelled before its payment reached the house (house was behind): never reserved.
    let late = testkit::unique("late-");
    let cancel = BookCanceled {
        book_id: late.clone(),
        house_id: house,
        book_cancel_date: chrono::Utc::now(),
    };
    world.publish(&Envelope::new(&cancel).unwrap()).await;
    eventually(20, "early cancel handled", || async {
        (event_count(&app, "BookCanceled", "applied").await == 2).then_some(())
    })
    .await;
    world
        .publish(&paid(&late, house, "2030-05-01", "2030-05-02"))
        .await;
    eventually(20, "late Paid handled", || async {
        (event_count(&app, "Paid", "applied").await == 2).then_some(())
    })
    .await;
    let seen = probe.settle(2).await;
    assert_eq!(
        of(&seen, "HouseRentCanceled", &book).len(),
        1,
        "released once"
    );
    assert!(
        of(&seen, "HouseRented", &late).is_empty(),
        "a cancelled booking holds no nights"
    );
    let (_, h) = app
        .get(&format!("/houses/{house}?date=2030-05-01"), &admin())
        .await;
    assert_eq!(h["reservedNights"], json!([]));
    app.stop().await;
}

async fn poison_messages_are_parked_and_the_partition_moves_on(backend: Backend) {
    let world = World::new(backend);
    let app = spawn(&world.settings("house").await).await;
    let mut probe = world.probe();
    let mut dlq = EventProbe::new(&[world.dead_letter_topic()]);
    // Where payment's events travel, which house reads.
    let topic = world.topic_of("Paid");
    let house = register(&app, "Jeonju hanok", 100).await;
    let key = "same-key-same-partition";

    inject(&topic, key, b"{ this is not json").await;
    let mut bad = paid(key, house, "2030-07-01", "2030-07-02");
    bad.payload = json!({"bookId": key, "houseId": "not a number"});
    world.publish(&bad).await;
    let good = paid(key, house, "2030-07-01", "2030-07-02");
    world.publish(&good).await;

    probe
        .wait_until(30, "the good event after the poison", |e| {
            !of(e, "HouseRented", key).is_empty()
        })
        .await;
    let parked = dlq.wait_raw(20, 2).await;
    for m in &parked {
        let reason = m.header("dlq-reason").unwrap_or("");
        assert!(!reason.is_empty(), "every dead letter says why: {m:?}");
        assert_eq!(m.header("dlq-source-topic"), Some(topic.as_str()));
    }
    assert!(parked
        .iter()
        .any(|m| m.payload.as_slice() == b"{ this is not json"));
    let r = testkit::http()
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "still ready");
    app.stop().await;
}

async fn a_restarted_consumer_resumes_with_nothing_lost_or_doubled(backend: Backend) {
    let world = World::new(backend);
    let settings = world.settings("house").await;
    let app = spawn(&settings).await;
    let mut probe = world.probe();
    let house = register(&app, "Sokcho house", 100).await;

    let before: Vec<String> = (0..3)
        .map(|i| format!("before-{i}-{}", testkit::unique("")))
        .collect();
    for (i, b) in before.iter().enumerate() {
        let day = 10 + i;
        world
            .publish(&paid(
                b,
                house,
                &format!("2030-09-{day}"),
                &format!("2030-09-{}", day + 1),
            ))
            .await;
    }
    probe
        .wait_until(30, "three rentals", |e| {
            before.iter().all(|b| !of(e, "HouseRented", b).is_empty())
        })
        .await;
    app.stop().await;

    // While it is down, more bookings are paid.
    let during: Vec<String> = (0..5)
        .map(|i| format!("during-{i}-{}", testkit::unique("")))
        .collect();
    for (i, b) in during.iter().enumerate() {
        let day = 20 + i;
        world
            .publish(&paid(
                b,
                house,
                &format!("2030-09-{day}"),
                &format!("2030-09-{}", day + 1),
            ))
            .await;
    }
    let app = spawn(&settings).await;
    probe
        .wait_until(60, "rentals missed while down", |e| {
            during.iter().all(|b| !of(e, "HouseRented", b).is_empty())
        })
        .await;
    let seen = probe.settle(3).await;
    for b in before.iter().chain(&during) {
        assert_eq!(
            of(&seen, "HouseRented", b).len(),
            1,
            "{b} rented exactly once"
        );
    }
    assert_eq!(
        event_count(&app, "Paid", "applied").await,
        5,
        "only the missed events are applied after restart"
    );
    app.stop().await;
}

async fn concurrent_overlapping_reservations_have_exactly_one_winner(backend: Backend) {
    let world = World::new(backend);
    let mut settings = world.settings("house").await;
    settings.database.max_connections = Some(8);
    let db = platform::db::Db::connect(&settings.database, house::MIGRATIONS)
        .await
        .unwrap();
    let repo = Arc::new(SqlHouses::new(
        db.clone(),
        platform::outbox::Outbox::new(&settings.kafka),
    ));
    let h = repo
        .register(&house::domain::models::NewHouse::new("Race house", 10, None).unwrap())
        .await
        .unwrap();
    let service = house::domain::service::HouseService::new(repo.clone());
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let service = service.clone();
            tokio::spawn(async move {
                // Every stay includes 2030-10-15; they start on different days.
                let start = d("2030-10-10") + chrono::Duration::days(i % 6);
                let r = Reservation {
                    book_id: format!("racer-{i}"),
                    house_id: h.id,
                    stay: Some(Stay::new(start, d("2030-10-16")).unwrap()),
                };
                let key = EventKey {
                    event_id: format!("ev-{i}"),
                    event_type: "Paid".into(),
                };
                // As the consumer does: a batch that failed (here: a night it was to hold
                // was taken by a concurrent batch after it read the calendar) is tried
                // again, and decides on what is stored by then.
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    match service
                        .apply_all(&[(key.clone(), Command::Reserve(r.clone()))])
                        .await
                    {
                        Ok(mut done) => break Ok(done.pop().unwrap()),
                        Err(e) if attempts == 5 => break Err(e),
                        Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                    }
                }
            })
        })
        .collect();
    let mut rented = 0;
    let mut taken = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(Applied::Now(Decided::Reserve(ReserveOutcome::Rented))) => rented += 1,
            Ok(Applied::Now(Decided::Reserve(ReserveOutcome::Rejected(
                RejectReason::NightsTaken,
            )))) => taken += 1,
            Err(e) => panic!("reservation failed 5 times: {e:#}"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((rented, taken), (1, 23));
    let nights = repo
        .reserved_nights(h.id, d("2030-10-01"), 366)
        .await
        .unwrap();
    let holders: std::collections::HashSet<_> = nights.iter().map(|n| n.book_id.clone()).collect();
    assert_eq!(holders.len(), 1, "all held nights belong to the one winner");
    db.close().await;
}

/// A consumer hands the repository what arrived together: applied in order, in one
/// transaction, each event once, with one event each in the outbox.
async fn a_batch_is_applied_in_order_each_event_once(backend: Backend) {
    let world = World::new(backend);
    let settings = world.settings("house").await;
    let db = platform::db::Db::connect(&settings.database, house::MIGRATIONS)
        .await
        .unwrap();
    let repo = SqlHouses::new(db.clone(), platform::outbox::Outbox::new(&settings.kafka));
    let h = repo
        .register(&house::domain::models::NewHouse::new("Batch house", 10, None).unwrap())
        .await
        .unwrap();
    let service = house::domain::service::HouseService::new(Arc::new(repo.clone()));
    let key = |id: &str| EventKey {
        event_id: id.into(),
        event_type: "Paid".into(),
    };
    let stay = |id: &str, a: &str, b: &str| Reservation {
        book_id: id.into(),
        house_id: h.id,
        stay: Some(Stay::new(d(a), d(b)).unwrap()),
    };
    let first = stay("first", "2030-11-10", "2030-11-12");
    let done = service
        .apply_all(&[
            (key("e1"), Command::Reserve(first.clone())),
            (
                key("e2"),
                Command::Reserve(stay("overlap", "2030-11-11", "2030-11-13")),
            ),
            (key("e1"), Command::Reserve(first.clone())),
            (key("e3"), Command::Release(first.book_id.clone())),
            (
                key("e4"),
                Command::Reserve(stay("later", "2030-11-11", "2030-11-14")),
            ),
        ])
        .await
        .unwrap();
    assert_eq!(
        done,
        vec![
            Applied::Now(Decided::Reserve(ReserveOutcome::Rented)),
            Applied::Now(Decided::Reserve(ReserveOutcome::Rejected(
                RejectReason::NightsTaken
            ))),
            Applied::Duplicate,
            Applied::Now(Decided::Release(ReleaseOutcome::Released)),
            Applied::Now(Decided::Reserve(ReserveOutcome::Rented)),
        ]
    );
    let nights: Vec<_> = repo
        .reserved_nights(h.id, d("2030-11-01"), 366)
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.night.to_string(), n.book_id))
        .collect();
    let holder = "later".to_string();
    assert_eq!(
        nights,
        vec![
            ("2030-11-11".to_string(), holder.clone()),
            ("2030-11-12".to_string(), holder.clone()),
            ("2030-11-13".to_string(), holder),
        ],
        "released nights were taken again later in the same batch"
    );
    let events: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM outbox WHERE event_type <> 'HouseRegistered' ORDER BY id",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(
        events,
        [
            "HouseRented",
            "HouseRentRejected",
            "HouseRentCanceled",
            "HouseRented"
        ]
    );
    db.close().await;
}

on_both_backends!(
    registering_a_house_is_for_admins_and_validated,
    a_batch_is_applied_in_order_each_event_once,
    paid_reserves_the_nights_and_an_overlap_is_rejected,
    a_duplicated_event_is_applied_once,
    cancelling_releases_once_and_a_late_paid_reserves_nothing,
    poison_messages_are_parked_and_the_partition_moves_on,
    a_restarted_consumer_resumes_with_nothing_lost_or_doubled,
    concurrent_overlapping_reservations_have_exactly_one_winner,
);

async fn the_openapi_document_matches_the_routes(backend: Backend) {
    let world = World::new(backend);
    let app = spawn_for_openapi(&world).await;
    testkit::assert_documented_routes_exist(
        &app,
        include_str!("../openapi.json"),
        &token("admin", &[Role::Admin]),
    )
    .await;
    app.stop().await;
}

on_both_backends!(the_openapi_document_matches_the_routes);

async fn spawn_for_openapi(world: &World) -> TestApp {
    spawn(&world.settings("house").await).await
}

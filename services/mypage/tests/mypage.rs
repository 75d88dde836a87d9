//! Integration tests of the view: events injected on the real broker as the other
//! services publish them, on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{NaiveDate, Utc};
use events::{
    BookCanceled, BookConfirmed, Booked, Envelope, Event, HouseRegistered, HouseRentCanceled,
    HouseRented, Paid, PaymentCanceled,
};
use mypage::{Application, Settings};
use platform::auth::Role;
use platform::settings::CommonSettings;
use reqwest::StatusCode;
use serde_json::{json, Value};
use testkit::{eventually, on_both_backends, token, Backend, TestApp, World};

fn d(s: &str) -> NaiveDate {
    events::parse_date(s).unwrap()
}

fn env<E: Event>(e: &E) -> Envelope {
    Envelope::new(e).unwrap()
}

fn admin() -> String {
    token("admin", &[Role::Admin])
}

async fn spawn(common: &CommonSettings) -> TestApp {
    TestApp::spawn::<Application>(Settings {
        common: common.clone(),
    })
    .await
}

/// The life of one confirmed booking, in an order the topics may well deliver it (each
/// context's events in order, the contexts interleaved).
fn story(book: &str, house: i64) -> Vec<Envelope> {
    vec![
        env(&HouseRegistered {
            house_id: house,
            house_name: "Jeju".into(),
            house_price: 100,
        }),
        env(&Paid {
            payment_id: 7,
            book_id: book.into(),
            house_id: house,
            customer_id: "alice".into(),
            house_price: 200,
            check_in: d("2030-06-01"),
            check_out: d("2030-06-03"),
            payment_date: Utc::now(),
        }),
        env(&Booked {
            book_id: book.into(),
            customer_id: "alice".into(),
            house_id: house,
            house_name: "Jeju".into(),
            house_price: 200,
            check_in: d("2030-06-01"),
            check_out: d("2030-06-03"),
            payment_id: 7,
        }),
        env(&HouseRented {
            house_id: house,
            book_id: book.into(),
            check_in: d("2030-06-01"),
            check_out: d("2030-06-03"),
        }),
        env(&BookConfirmed {
            book_id: book.into(),
            house_id: house,
        }),
    ]
}

async fn applied(app: &TestApp) -> u64 {
    app.metrics()
        .await
        .lines()
        .filter(|l| l.starts_with("housebook_events_total{") && l.contains("outcome=\"applied\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

async fn wait_applied(app: &TestApp, n: u64) {
    eventually(30, &format!("{n} events applied"), || async {
        (applied(app).await >= n).then_some(())
    })
    .await;
}

async fn the_view_follows_every_event_of_a_booking_once(backend: Backend) {
    let world = World::new(backend);
    let app = spawn(&world.settings("mypage").await).await;
    let book = testkit::unique("b-");
    let events = story(&book, 1);
    for e in &events {
        world.publish(e).await;
    }
    wait_applied(&app, 5).await;
    let alice = token("alice", &[Role::Customer]);
    let (s, row) = app.get(&format!("/mypages/{book}"), &alice).await;
    assert_eq!(s, StatusCode::OK, "{row}");
    assert_eq!(row["status"], "CONFIRMED");
    assert_eq!(row["paymentStatus"], "PAID");
    assert_eq!(row["houseStatus"], "RENTED");
    assert_eq!(row["housePrice"], 200);
    assert_eq!(row["checkIn"], "2030-06-01");
    assert_eq!(row["refunded"], false);

    let (_, a) = app
        .get(
            "/availability?houseId=1&checkIn=2030-06-02&checkOut=2030-06-05",
            &alice,
        )
        .await;
    assert_eq!(a["available"], false);
    assert_eq!(a["takenNights"], json!(["2030-06-02"]));
    let (_, a) = app
        .get("/availability?houseId=1&date=20300603", &alice)
        .await;
    assert_eq!(a["available"], true);

    // Delivered again (the same eventIds): nothing changes.
    for e in &events {
        world.publish(e).await;
    }
    eventually(30, "duplicates skipped", || async {
        let dups: u64 = app
            .metrics()
            .await
            .lines()
            .filter(|l| {
                l.starts_with("housebook_events_total{") && l.contains("outcome=\"duplicate\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        (dups == 5).then_some(())
    })
    .await;
    let (_, again) = app.get(&format!("/mypages/{book}"), &alice).await;
    assert_eq!(again, row, "a duplicate changes nothing");

    // Cancelled: the row follows, the nights come free.
    world
        .publish(&env(&PaymentCanceled {
            payment_id: 7,
            book_id: book.clone(),
            house_id: 1,
            house_price: 200,
            payment_cancel_date: Utc::now(),
        }))
        .await;
    world
        .publish(&env(&BookCanceled {
            book_id: book.clone(),
            house_id: 1,
            book_cancel_date: Utc::now(),
        }))
        .await;
    world
        .publish(&env(&HouseRentCanceled {
            house_id: 1,
            book_id: book.clone(),
            check_in: d("2030-06-01"),
            check_out: d("2030-06-03"),
        }))
        .await;
    wait_applied(&app, 8).await;
    let (_, row) = app.get(&format!("/mypages/{book}"), &alice).await;
    assert_eq!(
        (
            row["status"].as_str(),
            row["refunded"].as_bool(),
            row["houseStatus"].as_str()
        ),
        (Some("BOOK_CANCELED"), Some(true), Some("RELEASED"))
    );
    let (_, a) = app
        .get(
            "/availability?houseId=1&checkIn=2030-06-01&checkOut=2030-06-03",
            &alice,
        )
        .await;
    assert_eq!(a["available"], true);
    app.stop().await;
}

async fn customers_see_only_their_rows_and_queries_are_validated(backend: Backend) {
    let world = World::new(backend);
    let app = spawn(&world.settings("mypage").await).await;
    let book = testkit::unique("b-");
    for e in story(&book, 1) {
        world.publish(&e).await;
    }
    wait_applied(&app, 5).await;
    let bob = token("bob", &[Role::Customer]);
    let (s, _) = app.get(&format!("/mypages/{book}"), &bob).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, mine) = app.get("/mypages", &bob).await;
    assert_eq!(mine, json!([]));
    let (_, all) = app.get("/mypages", &admin()).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    let r = testkit::http()
        .get(app.url("/mypages"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    for (q, want) in [
        (
            "/availability?houseId=999&date=2030-01-01",
            StatusCode::NOT_FOUND,
        ),
        (
            "/availability?houseId=1&checkIn=2030-01-05&checkOut=2030-01-01",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/availability?houseId=1&checkIn=2030-01-05",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("/availability?houseId=x", StatusCode::BAD_REQUEST),
        ("/availability", StatusCode::BAD_REQUEST),
        ("/mypages?limit=0", StatusCode::UNPROCESSABLE_ENTITY),
        ("/mypages/nope", StatusCode::NOT_FOUND),
    ] {
        let (s, e) = app.get(q, &bob).await;
        assert_eq!(s, want, "{q} → {e}");
        assert!(e["error"].is_string(), "{q} → {e}");
    }
    app.stop().await;
}

async fn the_view_can_be_rebuilt_from_the_topics(backend: Backend) {
    let world = World::new(backend);
    let settings = world.settings("mypage").await;
    let app = spawn(&settings).await;
    let books: Vec<String> = (0..3).map(|i| testkit::unique(&format!("b{i}-"))).collect();
    for (i, b) in books.iter().enumerate() {
        for e in story(b, 10 + i as i64) {
            world.publish(&e).await;
        }
    }
    wait_applied(&app, 15).await;
    let (_, before) = app.get("/mypages", &admin()).await;
    app.stop().await;

    let applied = mypage::rebuild(&Settings {
        common: settings.clone(),
    })
    .await
    .unwrap();
    assert_eq!(applied, 15, "every event replayed into the emptied view");
    let app = spawn(&settings).await;
    let (_, after) = app.get("/mypages", &admin()).await;
    let strip = |v: &Value| {
        let mut v = v.clone();
        for row in v.as_array_mut().unwrap() {
            row.as_object_mut().unwrap().remove("updatedAt");
        }
        v
    };
    assert_eq!(strip(&after), strip(&before));
    let (_, a) = app
        .get(
            "/availability?houseId=11&checkIn=2030-06-01&checkOut=2030-06-03",
            &admin(),
        )
        .await;
    assert_eq!(a["takenNights"], json!(["2030-06-01", "2030-06-02"]));
    app.stop().await;
}

on_both_backends!(
    the_view_follows_every_event_of_a_booking_once,
    customers_see_only_their_rows_and_queries_are_validated,
    the_view_can_be_rebuilt_from_the_topics,
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
    spawn(&world.settings("mypage").await).await
}

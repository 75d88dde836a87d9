//! End-to-end: the whole fleet as real processes, driven through the gateway with tokens,
//! as the seed's demo tells the story (F1–F8), plus the failures the seed was about.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use e2e::Fleet;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::{eventually, Backend};

async fn booking_status(fleet: &Fleet, token: &str, id: &str) -> Option<String> {
    let (_, b) = fleet.get(&format!("/books/{id}"), token).await;
    b["status"].as_str().map(str::to_owned)
}

async fn wait_booking(fleet: &Fleet, token: &str, id: &str, want: &str) {
    eventually(30, &format!("booking {id} {want}"), || async {
        (booking_status(fleet, token, id).await.as_deref() == Some(want)).then_some(())
    })
    .await;
}

/// Waits until the house shows `date` available and no night reserved at all.
async fn wait_house_free(fleet: &Fleet, token: &str, house_id: i64, date: &str) {
    eventually(
        30,
        &format!("house {house_id}'s nights released"),
        || async {
            let (_, h) = fleet
                .get(&format!("/houses/{house_id}?date={date}"), token)
                .await;
            (h["status"] == "AVAILABLE" && h["reservedNights"] == json!([])).then_some(())
        },
    )
    .await;
}

async fn wait_view(fleet: &Fleet, token: &str, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
    eventually(30, &format!("mypage row of {id}"), || async {
        let (s, row) = fleet.get(&format!("/mypages/{id}"), token).await;
        (s == StatusCode::OK && pred(&row)).then_some(row)
    })
    .await
}

async fn the_seed_story(backend: Backend) {
    let fleet = Fleet::start(backend).await;
    let admin = fleet.token("admin").await;
    let alice = fleet.token("alice").await;

    // F1: an admin registers a house (the seed's fields; id and status ignored).
    let (s, house) = fleet
        .post("/houses", &admin, json!({"id": 1, "houseName": "Jeju stone house", "housePrice": "200000", "status": "WAITING"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{house}");
    let house_id = house["id"].as_i64().unwrap();

    // F2: alice books two nights; payment happens as part of booking. Book learns the
    // listing from HouseRegistered, so the first try may race it: retry until known.
    let body = json!({"houseId": house_id, "checkIn": "2031-05-01", "checkOut": "2031-05-03", "housePrice": 1});
    let booking = eventually(30, "book to know the house", || async {
        let (s, b) = fleet.post("/books", &alice, body.clone()).await;
        (s == StatusCode::CREATED).then_some(b)
    })
    .await;
    assert_eq!(booking["status"], "BOOKED");
    assert_eq!(booking["housePrice"], 400_000);
    let id = booking["id"].as_str().unwrap().to_owned();
    let (_, payments) = fleet.get(&format!("/payments?bookId={id}"), &alice).await;
    assert_eq!(payments[0]["status"], "PAID");
    assert_eq!(payments[0]["housePrice"], 400_000);

    // F3 + F4: the house reserves the nights, the booking is confirmed.
    wait_booking(&fleet, &alice, &id, "CONFIRMED").await;
    let (_, h) = fleet
        .get(&format!("/houses/{house_id}?date=2031-05-02"), &alice)
        .await;
    assert_eq!(h["status"], "RENTED");
    // F7: the view shows it and the house is not available for those nights.
    wait_view(&fleet, &alice, &id, |r| {
        r["status"] == "CONFIRMED" && r["houseStatus"] == "RENTED"
    })
    .await;
    let (_, a) = fleet
        .get(
            &format!("/availability?houseId={house_id}&checkIn=2031-05-02&checkOut=2031-05-04"),
            &alice,
        )
        .await;
    assert_eq!(
        (a["available"].as_bool(), a["takenNights"].clone()),
        (Some(false), json!(["2031-05-02"]))
    );

    // F5 + F6: alice cancels (the seed's PATCH); the payment is refunded, the nights freed.
    let (s, c, _) = fleet
        .call(
            Method::PATCH,
            &format!("/books/{id}"),
            Some(&alice),
            Some(json!({"status": "BOOK_CANCELED"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["status"], "BOOK_CANCELED");
    let (_, payments) = fleet.get(&format!("/payments?bookId={id}"), &alice).await;
    assert_eq!(payments[0]["status"], "PAYMENT_CANCELED");
    let (s, _) = fleet
        .post(&format!("/books/{id}/cancel"), &alice, json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "cancelling twice");
    wait_house_free(&fleet, &alice, house_id, "2031-05-01").await;
    // F8: the view follows.
    let row = wait_view(&fleet, &alice, &id, |r| {
        r["status"] == "BOOK_CANCELED" && r["houseStatus"] == "RELEASED"
    })
    .await;
    assert_eq!(row["refunded"], true);
    let (_, a) = fleet
        .get(
            &format!("/availability?houseId={house_id}&checkIn=2031-05-01&checkOut=2031-05-03"),
            &alice,
        )
        .await;
    assert_eq!(a["available"], true);

    // Issue 18: a refund made straight at payment (the seed's PATCH, by an admin) cannot
    // leave a booking standing: book cancels it, house frees the nights, the view follows.
    let body = json!({"houseId": house_id, "checkIn": "2031-06-01", "checkOut": "2031-06-03"});
    let (s, b) = fleet.post("/books", &alice, body).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let id = b["id"].as_str().unwrap().to_owned();
    wait_booking(&fleet, &alice, &id, "CONFIRMED").await;
    let (_, payments) = fleet.get(&format!("/payments?bookId={id}"), &alice).await;
    let payment = payments[0]["id"].as_i64().unwrap();
    let (s, p, _) = fleet
        .call(
            Method::PATCH,
            &format!("/payments/{payment}"),
            Some(&admin),
            Some(json!({"status": "PAYMENT_CANCELED"})),
        )
        .await;
    assert_eq!(
        (s, p["status"].as_str()),
        (StatusCode::OK, Some("PAYMENT_CANCELED")),
        "{p}"
    );
    wait_booking(&fleet, &alice, &id, "BOOK_CANCELED").await;
    wait_house_free(&fleet, &alice, house_id, "2031-06-01").await;
    wait_view(&fleet, &alice, &id, |r| {
        r["status"] == "BOOK_CANCELED" && r["refunded"] == true
    })
    .await;
    // And the fleet's identity is not issued at the public port.
    let r = testkit::http()
        .post(format!("{}/oauth/token", fleet.gateway()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "book"),
            ("client_secret", "book-dev-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_story_f1_to_f8_on_sqlite() {
    the_seed_story(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_story_f1_to_f8_on_postgres() {
    the_seed_story(Backend::Postgres).await;
}

async fn registered_house(fleet: &Fleet, admin: &str, customer: &str) -> i64 {
    // Wait until book knows the listing (a probe booking far in the future, then cancel it).
    let (id, probe) = fleet
        .house_with_booking(
            admin,
            customer,
            json!({"houseName": "Seoul loft", "housePrice": 1000}),
            "2039-12-31",
            "2040-01-01",
        )
        .await;
    let (s, _) = fleet
        .post(
            &format!("/books/{}/cancel", probe["id"].as_str().unwrap()),
            customer,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_is_rejected_and_refunded_and_customers_are_kept_apart() {
    let fleet = Fleet::start(Backend::Sqlite).await;
    let (admin, alice, bob) = (
        fleet.token("admin").await,
        fleet.token("alice").await,
        fleet.token("bob").await,
    );
    let house = registered_house(&fleet, &admin, &alice).await;

    let (_, first) = fleet
        .post(
            "/books",
            &alice,
            json!({"houseId": house, "checkIn": "2031-07-01", "checkOut": "2031-07-04"}),
        )
        .await;
    let first = first["id"].as_str().unwrap().to_owned();
    wait_booking(&fleet, &alice, &first, "CONFIRMED").await;
    let (s, second) = fleet
        .post(
            "/books",
            &bob,
            json!({"houseId": house, "checkIn": "2031-07-03", "checkOut": "2031-07-05"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let second = second["id"].as_str().unwrap().to_owned();
    wait_booking(&fleet, &bob, &second, "REJECTED").await;
    eventually(30, "bob's refund", || async {
        let (_, p) = fleet.get(&format!("/payments?bookId={second}"), &bob).await;
        (p[0]["status"] == "PAYMENT_CANCELED").then_some(())
    })
    .await;
    wait_view(&fleet, &bob, &second, |r| {
        r["status"] == "REJECTED" && r["refunded"] == true
    })
    .await;

    // Bob can neither see nor cancel alice's booking; alice cannot register a house.
    let (s, _) = fleet.get(&format!("/books/{first}"), &bob).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = fleet
        .post(&format!("/books/{first}/cancel"), &bob, json!({}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = fleet.get(&format!("/mypages/{first}"), &bob).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, bobs) = fleet.get("/books", &bob).await;
    assert!(bobs
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["customerId"] == "bob"));
    let (s, _) = fleet
        .post(
            "/houses",
            &alice,
            json!({"houseName": "Mine now", "housePrice": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, e, _) = fleet.call(Method::GET, "/books", None, None).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    assert_eq!(
        booking_status(&fleet, &alice, &first).await.as_deref(),
        Some("CONFIRMED"),
        "the winner stands"
    );
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_payment_stopped_bookings_get_503_fast_then_recover_by_themselves() {
    let mut fleet = Fleet::start(Backend::Sqlite).await;
    let (admin, alice) = (fleet.token("admin").await, fleet.token("alice").await);
    let house = registered_house(&fleet, &admin, &alice).await;
    fleet.stop("payment").await;

    for night in ["2031-08-01", "2031-08-02", "2031-08-03", "2031-08-04"] {
        let (s, e, h) = fleet
            .call(
                Method::POST,
                "/books",
                Some(&alice),
                Some(json!({"houseId": house, "bookDate": night})),
            )
            .await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{e}");
        assert!(h.contains_key("retry-after"));
        assert_eq!(e["error"], "unavailable");
    }
    assert_eq!(
        fleet.metric("book", "housebook_circuit_open").await,
        1.0,
        "the circuit opened"
    );
    assert!(
        fleet
            .metric("book", "housebook_circuit_rejected_total")
            .await
            >= 1.0,
        "and answered without calling"
    );

    fleet.restart("payment").await;
    let id = eventually(30, "bookings to recover", || async {
        let (s, b) = fleet
            .post(
                "/books",
                &alice,
                json!({"houseId": house, "bookDate": "2031-08-10"}),
            )
            .await;
        (s == StatusCode::CREATED).then(|| b["id"].as_str().unwrap().to_owned())
    })
    .await;
    wait_booking(&fleet, &alice, &id, "CONFIRMED").await;
    assert_eq!(fleet.metric("book", "housebook_circuit_open").await, 0.0);
    let (_, books) = fleet.get("/books", &admin).await;
    let standing = books
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["status"] != "BOOK_CANCELED")
        .count();
    assert_eq!(standing, 1, "no booking stands from the failed attempts");
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_house_stopped_bookings_are_accepted_and_all_confirmed_on_its_return() {
    let mut fleet = Fleet::start(Backend::Sqlite).await;
    let (admin, alice) = (fleet.token("admin").await, fleet.token("alice").await);
    let house = registered_house(&fleet, &admin, &alice).await;
    fleet.stop("house").await;

    let mut ids = Vec::new();
    for day in 10..15 {
        let (s, b) = fleet.post("/books", &alice, json!({"houseId": house, "checkIn": format!("2031-09-{day}"), "checkOut": format!("2031-09-{}", day + 1)})).await;
        assert_eq!(
            s,
            StatusCode::CREATED,
            "bookings go on while house is down: {b}"
        );
        ids.push(b["id"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    for id in &ids {
        assert_eq!(
            booking_status(&fleet, &alice, id).await.as_deref(),
            Some("BOOKED"),
            "nobody confirmed them yet"
        );
    }
    fleet.restart("house").await;
    for id in &ids {
        wait_booking(&fleet, &alice, id, "CONFIRMED").await;
    }
    let (_, h) = fleet
        .get(&format!("/houses/{house}?date=2031-09-01"), &admin)
        .await;
    assert_eq!(
        h["reservedNights"].as_array().unwrap().len(),
        5,
        "each missed event applied once"
    );
    fleet.shutdown().await;
}

/// The kinds of the messages a caller sees about one booking, through the gateway.
async fn told(fleet: &Fleet, token: &str, booking: &str) -> Vec<String> {
    let (s, list) = fleet.get("/notifications", token).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let mut kinds: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["bookId"] == booking)
        .map(|m| m["kind"].as_str().unwrap().to_owned())
        .collect();
    kinds.sort();
    kinds
}

/// The seed's "open architecture": notification is deployed after the others have a
/// history, catches up on all of it, and then follows new bookings — reached through the
/// gateway, each customer seeing only their own messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_deployed_later_catches_up_on_the_history_and_follows() {
    let mut options = e2e::Options::new(Backend::Sqlite);
    options.deferred = vec!["notification"];
    let mut fleet = Fleet::start_with(options).await;
    let (admin, alice, bob) = (
        fleet.token("admin").await,
        fleet.token("alice").await,
        fleet.token("bob").await,
    );
    // History: alice's booking confirmed then cancelled; bob's overlapping one rejected.
    let (house, a) = fleet
        .house_with_booking(
            &admin,
            &alice,
            json!({"houseName": "Told house", "housePrice": 700}),
            "2034-03-01",
            "2034-03-03",
        )
        .await;
    let a = a["id"].as_str().unwrap().to_owned();
    wait_booking(&fleet, &alice, &a, "CONFIRMED").await;
    let (s, b) = fleet
        .post(
            "/books",
            &bob,
            json!({"houseId": house, "checkIn": "2034-03-02", "checkOut": "2034-03-04"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let b = b["id"].as_str().unwrap().to_owned();
    wait_booking(&fleet, &bob, &b, "REJECTED").await;
    let (s, _) = fleet
        .post(&format!("/books/{a}/cancel"), &alice, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);

    // Deployed now, onto that history.
    fleet.start_deferred("notification").await;
    let alice_told = [
        "BOOKING_CANCELED",
        "BOOKING_CONFIRMED",
        "PAYMENT_RECEIVED",
        "PAYMENT_REFUNDED",
    ];
    eventually(60, "alice told her history", || async {
        (told(&fleet, &alice, &a).await == alice_told).then_some(())
    })
    .await;
    eventually(30, "bob told his", || async {
        (told(&fleet, &bob, &b).await
            == ["BOOKING_REJECTED", "PAYMENT_RECEIVED", "PAYMENT_REFUNDED"])
        .then_some(())
    })
    .await;
    assert!(
        told(&fleet, &alice, &b).await.is_empty(),
        "alice never sees bob's"
    );
    assert!(
        told(&fleet, &bob, &a).await.is_empty(),
        "bob never sees alice's"
    );
    assert_eq!(
        told(&fleet, &admin, &a).await,
        alice_told,
        "an admin sees all"
    );
    let (s, _, _) = fleet.call(Method::GET, "/notifications", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // And it follows what happens from now on.
    let (s, c) = fleet
        .post(
            "/books",
            &alice,
            json!({"houseId": house, "checkIn": "2034-04-01", "checkOut": "2034-04-02"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let c = c["id"].as_str().unwrap().to_owned();
    eventually(30, "alice told of her new booking", || async {
        (told(&fleet, &alice, &c).await == ["BOOKING_CONFIRMED", "PAYMENT_RECEIVED"]).then_some(())
    })
    .await;
    fleet.shutdown().await;
}

/// A stand-in OTLP/HTTP collector: keeps the body of every export it is sent.
async fn otlp_collector() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
    let bodies: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>> = Default::default();
    let keep = bodies.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push(body.to_vec());
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, bodies)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// SPEC §8: one booking is one trace, from the gateway through book and payment over
/// HTTP, and through house, book again, mypage and notification over Kafka; every service
/// logs lines carrying its id, and exports spans of it to the configured OTLP endpoint.
/// The gateway runs as in a cluster (issue 18: `HTTP__TRUST_TRACE_CONTEXT=false`): the
/// client's `traceparent` does not choose the fleet's trace id — the gateway starts a new
/// trace, linked to the client's (the link is exported), and no service logs the client's
/// id; its `tracestate` and `baggage` reach no service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_booking_is_one_trace_from_the_gateway_to_every_service() {
    let (collector, exported) = otlp_collector().await;
    let mut options = e2e::Options::new(Backend::Sqlite);
    options.env.push((
        "gateway",
        "HOUSEBOOK_HTTP__TRUST_TRACE_CONTEXT".into(),
        "false".into(),
    ));
    for s in fleet::names() {
        options.env.push((
            s,
            "HOUSEBOOK_LOG__OTLP_ENDPOINT".into(),
            format!("{collector}/v1/traces"),
        ));
        // A line per applied event is logged at debug (it would cost the saga its pace).
        options.env.push((
            s,
            "HOUSEBOOK_LOG__FILTER".into(),
            "info,sqlx=warn,rdkafka=warn,platform::consumer=debug".into(),
        ));
    }
    let fleet = Fleet::start_with(options).await;
    let (admin, alice) = (fleet.token("admin").await, fleet.token("alice").await);
    let (s, h) = fleet
        .post(
            "/houses",
            &admin,
            json!({"houseName": "Traced house", "housePrice": 300}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{h}");
    let client_trace = uuid::Uuid::new_v4().simple().to_string();
    let parent = format!(
        "00-{client_trace}-{}-01",
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    );
    let http = testkit::http();
    let r = http
        .post(format!("{}/books", fleet.gateway()))
        .bearer_auth(&alice)
        .header("traceparent", &parent)
        .header("tracestate", "mallory=owned")
        .header("baggage", "userId=admin")
        .json(&json!({"houseId": h["id"], "checkIn": "2035-07-01", "checkOut": "2035-07-02"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_booking(&fleet, &alice, &id, "CONFIRMED").await;
    wait_view(&fleet, &alice, &id, |r| r["status"] == "CONFIRMED").await;

    // Every event of the booking — Paid, Booked, HouseRented, BookConfirmed, each caused
    // by the one before — carries one trace, the gateway's, in its header and in its
    // envelope.
    let mut probe = testkit::EventProbe::on(fleet.brokers(), &fleet.topics());
    let want = ["BookConfirmed", "Booked", "HouseRented", "Paid"]; // sorted
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let trace = loop {
        probe.settle(1).await;
        let mine: Vec<(String, Option<String>, Option<String>)> = probe
            .raw()
            .iter()
            .filter_map(|m| {
                let e: Value = serde_json::from_slice(&m.payload).ok()?;
                (e["correlationId"] == id.as_str()).then(|| {
                    (
                        e["eventType"].as_str().unwrap_or("").to_owned(),
                        e["traceparent"].as_str().map(str::to_owned),
                        m.header("traceparent").map(str::to_owned),
                    )
                })
            })
            .collect();
        let mut types: Vec<&str> = mine.iter().map(|(t, _, _)| t.as_str()).collect();
        types.sort();
        if types == want {
            let trace = mine[0]
                .1
                .as_deref()
                .and_then(platform::trace::trace_id)
                .unwrap_or_default()
                .to_owned();
            assert_eq!(trace.len(), 32, "{mine:?}");
            assert_ne!(trace, client_trace, "the client chose the fleet's trace id");
            for (t, envelope, header) in &mine {
                let in_trace = |tp: &Option<String>| {
                    tp.as_deref()
                        .and_then(platform::trace::trace_id)
                        .is_some_and(|x| x == trace)
                };
                assert!(in_trace(envelope), "{t}: envelope {envelope:?}");
                assert_eq!(header, envelope, "{t}: the header says the same");
            }
            break trace;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "events seen: {types:?}"
        );
    };

    // Every service logged lines of this trace: the gateway and book and payment serving
    // the request, house reserving on Paid, book confirming on HouseRented, mypage and
    // notification applying the events.
    for s in fleet::names() {
        let log = fleet.logs().join(format!("{s}.log"));
        eventually(30, &format!("{s} logs trace {trace}"), || async {
            let text = std::fs::read_to_string(&log).ok()?;
            text.lines()
                .any(|l| l.contains(&format!("\"trace_id\":\"{trace}\"")))
                .then_some(())
        })
        .await;
    }
    // No line anywhere carries the client's trace id, nor its tracestate or baggage.
    for s in fleet::names() {
        let text = std::fs::read_to_string(fleet.logs().join(format!("{s}.log"))).unwrap();
        for leaked in [client_trace.as_str(), "mallory=owned", "userId=admin"] {
            assert!(!text.contains(leaked), "{s} logged {leaked}");
        }
    }
    // And every service exported spans of it (OTLP/HTTP protobuf: the service's name and
    // the trace id's 16 bytes in one export); the gateway's export names the client's
    // trace too, as its span's link.
    let raw = unhex(&trace);
    let linked = unhex(&client_trace);
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    eventually(
        30,
        "every service's spans of the trace exported",
        || async {
            let bodies = exported.lock().unwrap().clone();
            let link_exported = bodies
                .iter()
                .any(|b| contains(b, b"gateway") && contains(b, &raw) && contains(b, &linked));
            (link_exported
                && fleet::names().all(|s| {
                    bodies
                        .iter()
                        .any(|b| contains(b, s.as_bytes()) && contains(b, &raw))
                }))
            .then_some(())
        },
    )
    .await;
    fleet.shutdown().await;
}

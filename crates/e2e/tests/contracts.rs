//! Contracts checked on the real fleet (see `crates/contracts`):
//! - every operation of every service's OpenAPI document answers, live, with a status the
//!   document lists and a body its schema accepts (the error answers are checked the same
//!   way by the abuse corpus, `abuse.rs`);
//! - every event the fleet emits — all ten types, from a booking confirmed, one rejected,
//!   one cancelled — matches its checked-in schema, and is keyed by its correlation id
//!   (the producers' side of the event contract; the consumers' side is
//!   `crates/contracts/tests/events.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

use contracts::OpenApi;
use e2e::Fleet;
use reqwest::Method;
use serde_json::{json, Value};
use testkit::{eventually, Backend, EventProbe};

/// The service whose document describes a gateway path: the one the gateway routes it to
/// (its own routing table), else the gateway's own.
fn owner(path: &str) -> &'static str {
    let path = path.split('?').next().unwrap_or(path);
    gateway::contract::upstream_of(path).unwrap_or("gateway")
}

/// Sends requests and checks every answer against the owning service's document.
struct Checker {
    docs: HashMap<&'static str, OpenApi>,
    /// (service, method, template) → statuses answered and checked.
    seen: BTreeMap<(String, String, String), BTreeSet<u16>>,
    http: reqwest::Client,
}

impl Checker {
    async fn new(fleet: &Fleet) -> Self {
        let mut docs = HashMap::new();
        for s in fleet::names() {
            docs.insert(s, OpenApi::new(fleet.openapi(s).await));
        }
        Self {
            docs,
            seen: BTreeMap::new(),
            http: testkit::http(),
        }
    }

    async fn send(
        &mut self,
        service: &'static str,
        url: &str,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method.clone(), format!("{url}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let template = self.docs[service]
            .check_answer(method.as_str(), path, status, &text)
            .unwrap_or_else(|e| panic!("{service}'s document: {e}"));
        self.seen
            .entry((service.to_owned(), method.as_str().to_lowercase(), template))
            .or_default()
            .insert(status);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Through the gateway, checked against the document of the service that owns the
    /// path; the answer must be a 2xx. Returns its body.
    async fn ok(
        &mut self,
        fleet: &Fleet,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Value {
        let what = format!("{method} {path}");
        let (status, body) = self
            .send(
                owner(path),
                &fleet.gateway(),
                method,
                path,
                Some(token),
                body,
            )
            .await;
        assert!((200..300).contains(&status), "{what}: {status} {body}");
        body
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_answers_as_its_document_says() {
    let fleet = Fleet::start(Backend::Sqlite).await;
    let admin = fleet.token("admin").await;
    let alice = fleet.token("alice").await;
    let mut c = Checker::new(&fleet).await;

    // The operational endpoints of every part, each on its own port.
    for s in fleet::names() {
        for path in ["/healthz", "/readyz", "/openapi.json"] {
            let (status, _) = c
                .send(s, &fleet.url(s), Method::GET, path, None, None)
                .await;
            assert_eq!(status, 200, "{s} {path}");
        }
        let metrics = fleet.metrics_url(s);
        if s == "gateway" {
            // On its admin port, which is not the public API's (its document has no
            // /metrics: the public port has none).
            let r = c.http.get(&metrics).send().await.unwrap();
            assert_eq!(r.status(), 200, "{s} /metrics");
            continue;
        }
        let base = metrics.trim_end_matches("/metrics").to_owned();
        let (status, _) = c.send(s, &base, Method::GET, "/metrics", None, None).await;
        assert_eq!(status, 200, "{s} /metrics");
    }
    // The gateway's own: a token (form-encoded, so sent by hand) and the key set.
    let r = c
        .http
        .post(format!("{}/oauth/token", fleet.gateway()))
        .form(&[
            ("grant_type", "password"),
            ("username", "bob"),
            ("password", "bob"),
        ])
        .send()
        .await
        .unwrap();
    let (status, text) = (r.status().as_u16(), r.text().await.unwrap());
    let t = c.docs["gateway"]
        .check_answer("POST", "/oauth/token", status, &text)
        .unwrap();
    assert_eq!(status, 200);
    c.seen
        .entry(("gateway".into(), "post".into(), t))
        .or_default()
        .insert(status);
    let (status, _) = c
        .send(
            "gateway",
            &fleet.gateway(),
            Method::GET,
            "/.well-known/jwks.json",
            None,
            None,
        )
        .await;
    assert_eq!(status, 200);

    // house
    let h = c
        .ok(
            &fleet,
            Method::POST,
            "/houses",
            &admin,
            Some(json!({"houseName": "Contract villa", "housePrice": 1000})),
        )
        .await;
    let house = h["id"].as_i64().unwrap();
    // A second house, so that the house list has an order to show.
    c.ok(
        &fleet,
        Method::POST,
        "/houses",
        &admin,
        Some(json!({"houseName": "Contract cottage", "housePrice": 500})),
    )
    .await;
    c.ok(&fleet, Method::GET, "/houses", &alice, None).await;
    c.ok(
        &fleet,
        Method::GET,
        &format!("/houses/{house}?date=2032-01-01"),
        &alice,
        None,
    )
    .await;

    // book: three bookings (cancelled the three ways below), and their mypage rows.
    let mut ids = Vec::new();
    for (night, next) in [
        ("2032-01-01", "2032-01-02"),
        ("2032-02-01", "2032-02-02"),
        ("2032-03-01", "2032-03-02"),
    ] {
        let body = json!({"houseId": house, "checkIn": night, "checkOut": next});
        let b = c
            .ok(&fleet, Method::POST, "/books", &alice, Some(body))
            .await;
        ids.push(b["id"].as_str().unwrap().to_owned());
    }
    // mypage learns of the house from HouseRegistered, on another partition than the
    // bookings' events: no order between the two is promised, so wait for both.
    let mut views: Vec<String> = vec![format!(
        "/availability?houseId={house}&checkIn=2032-05-01&checkOut=2032-05-03"
    )];
    views.extend(ids.iter().map(|id| format!("/mypages/{id}")));
    for view in &views {
        let url = format!("{}{view}", fleet.gateway());
        let (http, token) = (c.http.clone(), alice.clone());
        eventually(30, "mypage's view", || async {
            let r = http.get(&url).bearer_auth(&token).send().await.ok()?;
            (r.status() == 200).then_some(())
        })
        .await;
    }

    // payment: four payments of bookings book never made (refunded the four ways below),
    // the first asked twice.
    let mut payments = Vec::new();
    for i in 0..4 {
        let book_id = testkit::unique("contract-");
        let body = json!({"bookId": book_id, "houseId": house, "customerId": "alice", "housePrice": 1000,
                          "checkIn": "2032-06-01", "checkOut": "2032-06-02"});
        let p = c
            .ok(
                &fleet,
                Method::POST,
                "/payments",
                &admin,
                Some(body.clone()),
            )
            .await;
        if i == 0 {
            c.ok(&fleet, Method::POST, "/payments", &admin, Some(body))
                .await;
        }
        payments.push((p["id"].as_i64().unwrap(), book_id));
    }

    let (cancel, refund) = (
        json!({"status": "BOOK_CANCELED"}),
        json!({"status": "PAYMENT_CANCELED"}),
    );
    let reads: Vec<(Method, String, &str, Option<Value>)> = vec![
        (Method::GET, "/books".into(), &alice, None),
        (Method::GET, format!("/books/{}", ids[0]), &alice, None),
        (Method::GET, format!("/mypages/{}", ids[0]), &alice, None),
        (Method::GET, "/mypages".into(), &alice, None),
        (Method::GET, "/notifications".into(), &alice, None),
        (
            Method::GET,
            format!("/availability?houseId={house}&checkIn=2032-05-01&checkOut=2032-05-03"),
            &alice,
            None,
        ),
        (
            Method::PATCH,
            format!("/books/{}", ids[0]),
            &alice,
            Some(cancel.clone()),
        ),
        (
            Method::PUT,
            format!("/books/{}", ids[1]),
            &alice,
            Some(cancel),
        ),
        (
            Method::POST,
            format!("/books/{}/cancel", ids[2]),
            &alice,
            None,
        ),
        (Method::GET, "/payments".into(), &admin, None),
        (
            Method::GET,
            format!("/payments/{}", payments[0].0),
            &admin,
            None,
        ),
        (
            Method::PATCH,
            format!("/payments/{}", payments[0].0),
            &admin,
            Some(refund.clone()),
        ),
        (
            Method::PUT,
            format!("/payments/{}", payments[1].0),
            &admin,
            Some(refund),
        ),
        (
            Method::POST,
            format!("/payments/{}/cancel", payments[2].0),
            &admin,
            None,
        ),
        (
            Method::POST,
            format!("/payments/by-book/{}/cancel", payments[3].1),
            &admin,
            None,
        ),
        (Method::GET, "/faults".into(), &admin, None),
        (Method::PUT, "/faults".into(), &admin, Some(json!({}))),
    ];
    for (method, path, token, body) in reads {
        c.ok(&fleet, method, &path, token, body).await;
    }

    // Every list, newest first, is the same list backwards (so the first page of a long
    // list is the latest); each answer checked against its document as above. The
    // views may still be taking events in: read both until they agree, for at most 30 s.
    for list in [
        "/books",
        "/payments",
        "/houses",
        "/mypages",
        "/notifications",
    ] {
        let key = if list == "/mypages" { "bookId" } else { "id" };
        let ids = |v: Value| -> Vec<Value> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x[key].clone())
                .collect()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let (oldest, newest) = loop {
            let oldest = ids(c
                .ok(
                    &fleet,
                    Method::GET,
                    &format!("{list}?limit=1000"),
                    &admin,
                    None,
                )
                .await);
            let newest = ids(c
                .ok(
                    &fleet,
                    Method::GET,
                    &format!("{list}?limit=1000&order=newest"),
                    &admin,
                    None,
                )
                .await);
            let backwards: Vec<Value> = newest.iter().rev().cloned().collect();
            if backwards == oldest || std::time::Instant::now() > deadline {
                break (oldest, backwards);
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        };
        assert!(oldest.len() > 1, "{list}: a list to order: {oldest:?}");
        assert_eq!(
            newest, oldest,
            "{list}: newest first is oldest first backwards"
        );
    }

    // The live stream through the gateway, from the feed's beginning: an event stream
    // whose events carry what the document says (alice has been paid for by now).
    let res = testkit::sse::client()
        .get(format!("{}/notifications/stream", fleet.gateway()))
        .bearer_auth(&alice)
        .header("last-event-id", "0")
        .send()
        .await
        .unwrap();
    let template = "/notifications/stream".to_owned();
    c.seen
        .entry(("notification".into(), "get".into(), template))
        .or_default()
        .insert(res.status().as_u16());
    let event = testkit::sse::SseStream::new(res).next().await;
    assert_eq!(event.event, "notification");
    c.docs["notification"]
        .check_event("GET", "/notifications/stream", &event.data)
        .unwrap_or_else(|e| panic!("notification's document: {e}"));

    // Every documented operation answered a 2xx that its document accepts. The gateway's
    // document is the whole public API: the operations tagged with a service are that
    // service's, checked against it directly above.
    let public = fleet.openapi("gateway").await;
    let mut missing = Vec::new();
    for s in fleet::names() {
        for (method, path) in c.docs[s].operations() {
            if s == "gateway" && public["paths"][&path][&method]["tags"][0] != "gateway" {
                continue;
            }
            let ok = c
                .seen
                .get(&(s.to_owned(), method.clone(), path.clone()))
                .is_some_and(|statuses| statuses.iter().any(|x| (200..300).contains(x)));
            if !ok {
                missing.push(format!("{s} {method} {path}"));
            }
        }
    }
    assert!(missing.is_empty(), "never answered 2xx: {missing:?}");
    println!(
        "[contracts] {} operations, {} answers checked against their documents",
        c.seen.len(),
        c.seen.values().map(BTreeSet::len).sum::<usize>()
    );
    fleet.shutdown().await;
}

fn schema(name: &str) -> Value {
    let path = format!(
        "{}/../events/schemas/{name}.schema.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_the_fleet_emits_matches_its_schema() {
    let fleet = Fleet::start(Backend::Sqlite).await;
    let admin = fleet.token("admin").await;
    let alice = fleet.token("alice").await;
    let bob = fleet.token("bob").await;
    let mut probe = EventProbe::on(fleet.brokers(), &fleet.topics());

    // Confirmed, then cancelled (HouseRegistered, Booked, Paid, HouseRented,
    // BookConfirmed, BookCanceled, PaymentCanceled, HouseRentCanceled) ...
    let (house, first) = fleet
        .house_with_booking(
            &admin,
            &alice,
            json!({"houseName": "Schema house", "housePrice": 500}),
            "2033-01-01",
            "2033-01-03",
        )
        .await;
    let first = first["id"].as_str().unwrap().to_owned();
    eventually(30, "the first booking confirmed", || async {
        let (_, b) = fleet.get(&format!("/books/{first}"), &alice).await;
        (b["status"] == "CONFIRMED").then_some(())
    })
    .await;
    // ... and one the house refuses (HouseRentRejected, BookRejected).
    let (s, second) = fleet
        .post(
            "/books",
            &bob,
            json!({"houseId": house, "checkIn": "2033-01-02", "checkOut": "2033-01-04"}),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::CREATED, "{second}");
    let second = second["id"].as_str().unwrap().to_owned();
    eventually(30, "the second booking rejected", || async {
        let (_, b) = fleet.get(&format!("/books/{second}"), &bob).await;
        (b["status"] == "REJECTED").then_some(())
    })
    .await;
    let (s, _) = fleet
        .post(&format!("/books/{first}/cancel"), &alice, json!({}))
        .await;
    assert_eq!(s, reqwest::StatusCode::OK);

    let envelope = schema("Envelope");
    let wanted: BTreeSet<&str> = events::EVENT_TYPES.iter().copied().collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let raw = loop {
        probe.settle(1).await;
        let types: BTreeSet<String> = probe
            .raw()
            .iter()
            .filter_map(|m| serde_json::from_slice::<Value>(&m.payload).ok())
            .filter_map(|v| v["eventType"].as_str().map(str::to_owned))
            .collect();
        if wanted.iter().all(|t| types.contains(*t)) {
            break probe.raw().to_vec();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not every event type was emitted: saw {types:?}"
        );
    };
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    for m in &raw {
        let event: Value = serde_json::from_slice(&m.payload)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&m.payload)));
        contracts::check(&envelope, &event).unwrap_or_else(|e| panic!("envelope: {e}: {event}"));
        let t = event["eventType"].as_str().unwrap();
        contracts::check(&schema(t), &event["payload"])
            .unwrap_or_else(|e| panic!("{t}: {e}: {event}"));
        assert_eq!(
            m.key.as_deref(),
            event["correlationId"].as_str(),
            "{t}: keyed by its correlation id"
        );
        *checked.entry(t.to_owned()).or_default() += 1;
    }
    assert_eq!(
        checked.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        wanted
    );
    println!("[contracts] events checked against their schemas: {checked:?}");
    fleet.shutdown().await;
}

/// The public contract read strictly: what its schemas allow is taken, and what the
/// services refuse for its form the schemas refuse too. JSON Schema counts `2.0` and `1e3`
/// as integers, so every whole-number field takes them (a house's price, a booking's
/// house and one-night date, the fault knobs' delays); a house id as text is `1` or more,
/// as its pattern now says (`"0"` was schema-valid and refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_schemas_allow_is_taken_and_what_they_refuse_is_refused() {
    let fleet = Fleet::start(Backend::Sqlite).await;
    let admin = fleet.token("admin").await;
    let alice = fleet.token("alice").await;
    let public = fleet.openapi("gateway").await;
    let body_schema = |path: &str, method: &str| {
        let schema =
            &public["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"];
        match schema["$ref"].as_str() {
            Some(r) => public["components"]["schemas"]
                [r.trim_start_matches("#/components/schemas/")]
            .clone(),
            None => schema.clone(),
        }
    };
    let booking = body_schema("/books", "post");
    let valid = |schema: &Value, instance: &Value| contracts::check(schema, instance).is_ok();
    for id in [json!(7), json!(7.0), json!("7"), json!("007")] {
        let b = json!({"houseId": id, "checkIn": "2032-05-01", "checkOut": "2032-05-02"});
        assert!(valid(&booking, &b), "{b} is schema-valid");
    }
    for id in [json!("0"), json!("000"), json!(0), json!(7.5)] {
        let b = json!({"houseId": id, "checkIn": "2032-05-01", "checkOut": "2032-05-02"});
        assert!(!valid(&booking, &b), "{b} is refused by the schema itself");
    }

    let mut c = Checker::new(&fleet).await;
    let house = c
        .ok(
            &fleet,
            Method::POST,
            "/houses",
            &admin,
            Some(json!({"houseName": "Whole numbers", "housePrice": 120.0})),
        )
        .await;
    assert_eq!(house["housePrice"], 120, "{house}");
    let id = house["id"].as_i64().unwrap();
    let taken = [
        json!({"houseId": id as f64, "checkIn": "2032-06-01", "checkOut": "2032-06-03"}),
        json!({"houseId": format!("00{id}"), "bookDate": "2032-06-10"}),
        json!({"houseId": id, "bookDate": 20_320_620.0}),
    ];
    for body in taken {
        assert!(valid(&booking, &body), "{body}");
        // Book learns the house from its event: a 422 (unknown house) until then.
        let b = eventually(30, "book to take the booking", || {
            let (c, fleet, alice, body) = (&c, &fleet, &alice, body.clone());
            async move {
                let r = c
                    .http
                    .post(format!("{}/books", fleet.gateway()))
                    .bearer_auth(alice)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                if r.status() != 201 {
                    return None;
                }
                r.json::<Value>().await.ok()
            }
        })
        .await;
        assert_eq!(b["houseId"], id, "{body} → {b}");
    }
    let faults = json!({"delayMinMs": 417.0, "delayMaxMs": 4.17e2});
    assert!(valid(&body_schema("/faults", "put"), &faults));
    let set = c
        .ok(&fleet, Method::PUT, "/faults", &admin, Some(faults))
        .await;
    assert_eq!(
        (set["delayMinMs"].as_i64(), set["delayMaxMs"].as_i64()),
        (Some(417), Some(417)),
        "{set}"
    );
    c.ok(&fleet, Method::PUT, "/faults", &admin, Some(json!({})))
        .await;
    fleet.shutdown().await;
}

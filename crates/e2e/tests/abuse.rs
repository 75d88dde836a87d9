//! Abuse (SPEC §7, issue 4): a bad-input corpus against every endpoint of every service,
//! through the gateway and straight to the service, each answered with a `4xx` JSON error
//! and nothing stored; token attacks answered `401`/`403`; no internal detail anywhere.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use base64::Engine as _;
use e2e::Fleet;
use platform::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::{eventually, Backend};

/// One abusive request: the service it is for, method, path with query, body bytes and
/// content type.
#[derive(Debug, Clone)]
struct Probe {
    service: &'static str,
    method: Method,
    path: String,
    body: Option<(Vec<u8>, &'static str)>,
    /// Who sends it: a caller allowed to use the endpoint, so validation is what answers.
    who: &'static str,
}

fn probe(
    service: &'static str,
    method: Method,
    path: impl Into<String>,
    who: &'static str,
) -> Probe {
    Probe {
        service,
        method,
        path: path.into(),
        body: None,
        who,
    }
}

impl Probe {
    fn json(mut self, v: &Value) -> Self {
        self.body = Some((v.to_string().into_bytes(), "application/json"));
        self
    }
    fn raw(mut self, bytes: impl Into<Vec<u8>>, content_type: &'static str) -> Self {
        self.body = Some((bytes.into(), content_type));
        self
    }
}

/// Values that are wrong for a whole-number field.
fn bad_numbers() -> Vec<Value> {
    vec![
        json!("abc"),
        json!(1.5),
        json!(true),
        json!({}),
        json!([]),
        json!(null),
        json!("1 OR 1=1"),
        json!("99999999999999999999"),
        serde_json::from_str("99999999999999999999").unwrap(),
        serde_json::from_str("1e400").unwrap_or(json!("1e400")),
    ]
}

/// Values that are wrong for a date field.
fn bad_dates() -> Vec<Value> {
    [
        "2031-02-30",
        "2031-13-01",
        "2031-1-1x",
        "yesterday",
        "",
        "2031-01-01'; DROP TABLE books;--",
        "２０３１-01-01",
        "+275760-09-13",
    ]
    .iter()
    .map(|d| json!(d))
    .chain([json!(20310101), json!(null), json!(["2031-01-01"])])
    .collect()
}

/// Bodies that are not the JSON object an endpoint takes, whatever it is.
fn malformed(service: &'static str, method: Method, path: &str, who: &'static str) -> Vec<Probe> {
    let p = || probe(service, method.clone(), path, who);
    let deep = "[".repeat(20_000) + &"]".repeat(20_000);
    vec![
        p().raw("{\"houseId\":", "application/json"),
        p().raw("not json", "application/json"),
        p().raw("", "application/json"),
        p().raw("null", "application/json"),
        p().raw("[]", "application/json"),
        p().raw("\"text\"", "application/json"),
        p().raw("42", "application/json"),
        p().raw(vec![0xff, 0xfe, b'{', b'}'], "application/json"),
        p().raw("{\"a\":\"\\ud800\"}", "application/json"),
        p().raw(deep, "application/json"),
        p().raw(vec![b' '; 2 * 1024 * 1024], "application/json"),
        p().raw("{}", "text/plain"),
        p(),
    ]
}

/// Every field of `base` replaced, one at a time, by each value of its kind.
fn mutants(
    service: &'static str,
    method: Method,
    path: &str,
    who: &'static str,
    base: &Value,
    kinds: &[(&str, Vec<Value>)],
) -> Vec<Probe> {
    let mut out = Vec::new();
    for (field, values) in kinds {
        for v in values {
            let mut body = base.clone();
            body[*field] = v.clone();
            out.push(probe(service, method.clone(), path, who).json(&body));
        }
        let mut missing = base.clone();
        missing.as_object_mut().unwrap().remove(*field);
        out.push(probe(service, method.clone(), path, who).json(&missing));
    }
    out
}

fn corpus(house: i64, booking: &str, payment: i64) -> Vec<Probe> {
    use Method as M;
    let mut c = Vec::new();
    let long = "x".repeat(5000);
    // book
    let stay = json!({"houseId": house, "checkIn": "2035-01-01", "checkOut": "2035-01-03"});
    c.extend(malformed("book", M::POST, "/books", "alice"));
    c.extend(mutants(
        "book",
        M::POST,
        "/books",
        "alice",
        &stay,
        &[
            (
                "houseId",
                bad_numbers()
                    .into_iter()
                    .chain([json!(-1), json!(0), json!(987654321)])
                    .collect(),
            ),
            ("checkIn", bad_dates()),
            ("checkOut", bad_dates()),
        ],
    ));
    for (ci, co) in [
        ("2035-01-03", "2035-01-01"), // backwards
        ("2035-01-01", "2035-01-01"), // no night
        ("2035-01-01", "2045-01-01"), // ten years
        ("2001-01-01", "2001-01-03"), // the past
    ] {
        c.push(
            probe("book", M::POST, "/books", "alice")
                .json(&json!({"houseId": house, "checkIn": ci, "checkOut": co})),
        );
    }
    c.push(
        probe("book", M::POST, "/books", "alice")
            .json(&json!({"houseId": house, "bookDate": "2031-02-30"})),
    );
    for method in [M::PATCH, M::PUT] {
        let path = format!("/books/{booking}");
        c.extend(malformed("book", method.clone(), &path, "alice"));
        for status in [
            json!("CONFIRMED"),
            json!("PAID"),
            json!(""),
            json!(7),
            json!(null),
            json!("'; DROP TABLE books;--"),
            json!("BOOK_CANCELED\u{0000}"),
        ] {
            c.push(probe("book", method.clone(), &path, "alice").json(&json!({"status": status})));
        }
        c.push(probe("book", method.clone(), &path, "alice").json(&json!({"unknown": 1})));
    }
    for id in [
        "abc",
        "-1",
        "%27%20OR%20%271%27%3D%271",
        "..%2F..%2Fetc%2Fpasswd",
        "%F0%9F%98%80",
        "%00",
        long.as_str(),
    ] {
        c.push(probe("book", M::GET, format!("/books/{id}"), "alice"));
        c.push(probe(
            "book",
            M::POST,
            format!("/books/{id}/cancel"),
            "alice",
        ));
    }
    for q in [
        "status=PAID",
        "status=",
        "status=CONFIRMED%00",
        "status=booked&status=x",
    ] {
        c.push(probe("book", M::GET, format!("/books?{q}"), "alice"));
    }
    for q in [
        "limit=abc",
        "limit=0",
        "limit=100000",
        "offset=-1",
        "limit=99999999999999999999",
        "limit=1e3",
    ] {
        c.push(probe("book", M::GET, format!("/books?{q}"), "alice"));
        c.push(probe("mypage", M::GET, format!("/mypages?{q}"), "alice"));
        c.push(probe("payment", M::GET, format!("/payments?{q}"), "admin"));
        c.push(probe("house", M::GET, format!("/houses?{q}"), "alice"));
    }
    // house
    let listing = json!({"houseName": "Abuse", "housePrice": 100, "houseDescription": "ok"});
    c.extend(malformed("house", M::POST, "/houses", "admin"));
    c.extend(mutants(
        "house",
        M::POST,
        "/houses",
        "admin",
        &listing,
        &[
            (
                "houseName",
                vec![
                    json!(""),
                    json!("   "),
                    json!(12),
                    json!({}),
                    json!(long),
                    json!("a\u{0000}b"),
                    json!("line\nbreak"),
                ],
            ),
            (
                "housePrice",
                bad_numbers()
                    .into_iter()
                    .chain([json!(-5), json!(i64::MIN), json!("-1")])
                    .collect(),
            ),
        ],
    ));
    c.push(probe("house", M::POST, "/houses", "admin").json(
        &json!({"houseName": "Abuse", "housePrice": 100, "houseDescription": "d".repeat(20_000)}),
    ));
    c.push(
        probe("house", M::POST, "/houses", "admin")
            .json(&json!({"houseName": "Abuse", "housePrice": 100, "houseDescription": 5})),
    );
    for path in [
        "/houses/abc".to_owned(),
        "/houses/99999999999999999999".to_owned(),
        "/houses/-1".to_owned(),
        format!("/houses/{house}?date=2031-02-30"),
        format!("/houses/{house}?date=abc"),
        "/houses?date=2031-13-01".to_owned(),
    ] {
        c.push(probe("house", M::GET, path, "alice"));
    }
    // payment (the calls book makes, sent by an admin)
    let pay = json!({"bookId": "abuse-1", "houseId": house, "customerId": "alice", "housePrice": 100, "checkIn": "2035-01-01", "checkOut": "2035-01-02"});
    c.extend(malformed("payment", M::POST, "/payments", "admin"));
    c.extend(mutants(
        "payment",
        M::POST,
        "/payments",
        "admin",
        &pay,
        &[
            (
                "bookId",
                vec![
                    json!(""),
                    json!("has space"),
                    json!("x".repeat(65)),
                    json!(1.5),
                    json!(true),
                    json!({}),
                    json!("é"),
                    json!("a\u{0000}"),
                ],
            ),
            (
                "housePrice",
                bad_numbers().into_iter().chain([json!(-1)]).collect(),
            ),
            ("houseId", bad_numbers()),
            ("checkIn", bad_dates()),
        ],
    ));
    for method in [M::PATCH, M::PUT] {
        let path = format!("/payments/{payment}");
        c.extend(malformed("payment", method.clone(), &path, "admin"));
        for status in [
            json!("PAID"),
            json!(""),
            json!(3),
            json!("PAYMENT_CANCELED; DROP TABLE payments"),
        ] {
            c.push(
                probe("payment", method.clone(), &path, "admin").json(&json!({"status": status})),
            );
        }
    }
    for path in [
        "/payments/abc",
        "/payments/-1",
        "/payments/99999999999999999999",
        "/payments/abc/cancel",
    ] {
        c.push(probe("payment", M::GET, path, "admin"));
        c.push(probe("payment", M::POST, format!("{path}/cancel"), "admin"));
    }
    for id in ["has%20space", &"y".repeat(65), "%00"] {
        c.push(probe(
            "payment",
            M::POST,
            format!("/payments/by-book/{id}/cancel"),
            "admin",
        ));
    }
    c.push(probe(
        "payment",
        M::GET,
        format!("/payments?bookId={}", "z".repeat(100)),
        "admin",
    ));
    c.extend(malformed("payment", M::PUT, "/faults", "admin"));
    for f in [
        json!({"delayMinMs": -1, "delayMaxMs": 10, "failureRate": 0}),
        json!({"delayMinMs": "abc", "delayMaxMs": 10, "failureRate": 0}),
        json!({"delayMinMs": 0, "delayMaxMs": 100_000, "failureRate": 0}),
        json!({"delayMinMs": 500, "delayMaxMs": 100, "failureRate": 0}),
        json!({"delayMinMs": 0, "delayMaxMs": 0, "failureRate": 1.5}),
        json!({"delayMinMs": 0, "delayMaxMs": 0, "failureRate": -0.1}),
        json!({"delayMinMs": 0, "delayMaxMs": 0, "failureRate": "all"}),
    ] {
        c.push(probe("payment", M::PUT, "/faults", "admin").json(&f));
    }
    // mypage
    for path in [
        format!("/mypages/{}", "q".repeat(5000)),
        "/availability".to_owned(),
        "/availability?houseId=abc&checkIn=2035-01-01&checkOut=2035-01-02".to_owned(),
        format!("/availability?houseId={house}&checkIn=2031-02-30&checkOut=2031-03-02"),
        format!("/availability?houseId={house}&checkIn=2035-01-03&checkOut=2035-01-01"),
        format!("/availability?houseId={house}&checkIn=2035-01-01&checkOut=2135-01-01"),
        "/availability?houseId=99999999999999999999&checkIn=2035-01-01&checkOut=2035-01-02"
            .to_owned(),
    ] {
        c.push(probe("mypage", M::GET, path, "alice"));
    }
    c
}

/// Everything the fleet holds, as an admin reads it.
async fn snapshot(fleet: &Fleet, admin: &str, house: i64) -> Vec<Value> {
    let mut all = Vec::new();
    for path in [
        "/books?limit=1000",
        "/payments?limit=1000",
        "/houses?limit=1000",
        "/mypages?limit=1000",
        "/faults",
    ] {
        let (s, v) = fleet.get(path, admin).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
        all.push(v);
    }
    let (_, h) = fleet
        .get(&format!("/houses/{house}?date=2000-01-01"), admin)
        .await;
    all.push(h);
    all
}

async fn send(
    http: &reqwest::Client,
    base: &str,
    p: &Probe,
    token: &str,
) -> (StatusCode, String, Option<String>) {
    let mut req = http
        .request(p.method.clone(), format!("{base}{}", p.path))
        .bearer_auth(token);
    if let Some((bytes, ct)) = &p.body {
        req = req.header("content-type", *ct).body(bytes.clone());
    }
    match req.send().await {
        Ok(r) => {
            let s = r.status();
            let ct = r
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            (s, r.text().await.unwrap_or_default(), ct)
        }
        Err(e) => panic!("{} {}: no answer: {e}", p.method, p.path),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_every_endpoint_gets_a_4xx_json_error_and_changes_nothing() {
    let fleet = Fleet::start(Backend::Sqlite).await;
    let admin = fleet.token("admin").await;
    let alice = fleet.token("alice").await;
    let (house, booking) = fleet
        .house_with_booking(
            &admin,
            &alice,
            json!({"houseName": "Target", "housePrice": 100}),
            "2036-01-01",
            "2036-01-02",
        )
        .await;
    let booking_id = booking["id"].as_str().unwrap().to_owned();
    let payment = booking["paymentId"].as_i64().unwrap();
    let settled = || async {
        let (_, v) = fleet.get(&format!("/mypages/{booking_id}"), &admin).await;
        (v["status"] == "CONFIRMED").then_some(())
    };
    eventually(30, "the booking to settle", settled).await;
    let before = snapshot(&fleet, &admin, house).await;

    let corpus = corpus(house, &booking_id, payment);
    // Every documented endpoint gets abuse (a new route without a corpus fails here).
    let mut covered = BTreeSet::new();
    for p in &corpus {
        covered.insert((
            p.service,
            p.method.to_string().to_lowercase(),
            template(&p.path),
        ));
    }
    for service in ["book", "payment", "house", "mypage"] {
        let doc: Value = reqwest::get(format!("{}/openapi.json", fleet.url(service)))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for (path, methods) in doc["paths"].as_object().unwrap() {
            if ["/healthz", "/readyz", "/metrics", "/openapi.json"].contains(&path.as_str()) {
                continue;
            }
            for method in methods.as_object().unwrap().keys() {
                if (service, method.as_str(), path.as_str()) == ("payment", "get", "/faults") {
                    continue; // takes no input at all
                }
                assert!(
                    covered.contains(&(service, method.clone(), path.clone())),
                    "no abuse for {service} {method} {path}"
                );
            }
        }
    }

    let tokens = |who: &str| {
        if who == "admin" {
            admin.clone()
        } else {
            alice.clone()
        }
    };
    let http = reqwest::Client::new();
    let mut sent = 0;
    for p in &corpus {
        for base in [fleet.gateway(), fleet.url(p.service)] {
            let (s, body, ct) = send(&http, &base, p, &tokens(p.who)).await;
            sent += 1;
            let what = format!(
                "{} {}{} {:?} → {s} {body}",
                p.method,
                base,
                short(&p.path),
                p.body
                    .as_ref()
                    .map(|(b, _)| short(&String::from_utf8_lossy(b)))
            );
            assert!(s.is_client_error(), "{what}");
            assert!(
                ct.as_deref()
                    .is_some_and(|c| c.starts_with("application/json")),
                "{what}: content type {ct:?}"
            );
            let e: Value =
                serde_json::from_str(&body).unwrap_or_else(|_| panic!("{what}: not JSON"));
            assert!(e["error"].is_string() && e["message"].is_string(), "{what}");
        }
    }
    println!(
        "[abuse] {} probes, {sent} requests: every one 4xx JSON",
        corpus.len()
    );
    assert_eq!(
        snapshot(&fleet, &admin, house).await,
        before,
        "nothing changed"
    );
    fleet.shutdown().await;
}

/// `/books/abc/cancel?x=1` → `/books/{id}/cancel`, as the OpenAPI documents name paths.
fn template(path: &str) -> String {
    const WORDS: [&str; 8] = [
        "books",
        "payments",
        "houses",
        "mypages",
        "availability",
        "faults",
        "cancel",
        "by-book",
    ];
    let path = path.split('?').next().unwrap_or(path);
    let mut prev = "";
    let mut out = Vec::new();
    for seg in path.split('/') {
        let named = if seg.is_empty() || WORDS.contains(&seg) {
            seg.to_owned()
        } else if matches!(prev, "by-book" | "mypages") {
            "{bookId}".to_owned()
        } else {
            "{id}".to_owned()
        };
        prev = seg;
        out.push(named);
    }
    out.join("/")
}

fn short(s: &str) -> String {
    if s.len() > 120 {
        format!(
            "{}…({} bytes)",
            s.chars().take(60).collect::<String>(),
            s.len()
        )
    } else {
        s.to_owned()
    }
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_attacks_get_401_or_403_at_the_gateway_and_at_the_service() {
    let fleet = Fleet::start(Backend::Sqlite).await;
    let admin = fleet.token("admin").await;
    let alice = fleet.token("alice").await;
    let bob = fleet.token("bob").await;
    let (house, booking) = fleet
        .house_with_booking(
            &admin,
            &alice,
            json!({"houseName": "Guarded", "housePrice": 10}),
            "2036-02-01",
            "2036-02-02",
        )
        .await;
    let id = booking["id"].as_str().unwrap();
    eventually(30, "the view of the booking", || async {
        let (s, _) = fleet.get(&format!("/mypages/{id}"), &admin).await;
        (s == StatusCode::OK).then_some(())
    })
    .await;

    let issuer = testkit::issuer();
    let signed = |f: &dyn Fn(&mut platform::auth::Claims)| {
        let mut c = issuer.claims("alice", &[Role::Customer], 600);
        f(&mut c);
        issuer.sign(&c).unwrap()
    };
    let parts: Vec<&str> = alice.split('.').collect();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    let mut as_admin = claims.clone();
    as_admin["roles"] = json!(["ADMIN"]);
    let mut flipped = parts[2].to_owned().into_bytes();
    flipped[5] = if flipped[5] == b'A' { b'B' } else { b'A' };
    let public = platform::settings::AuthSettings::default().public_key_pem;
    let confused = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(public.as_bytes()),
    )
    .unwrap();
    let other_issuer = platform::auth::TokenIssuer::from_pem(
        platform::settings::DEV_SIGNING_KEY_PEM,
        "evil",
        "housebook",
    )
    .unwrap();
    let other_audience = platform::auth::TokenIssuer::from_pem(
        platform::settings::DEV_SIGNING_KEY_PEM,
        "housebook-gateway",
        "elsewhere",
    )
    .unwrap();
    let attacks: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("garbage", Some("not-a-token".into())),
        ("empty", Some(String::new())),
        (
            "expired",
            Some(signed(&|c| {
                c.exp = c.iat - 120;
                c.iat -= 700;
                c.nbf -= 700;
            })),
        ),
        (
            "not yet valid",
            Some(signed(&|c| {
                c.nbf += 3600;
                c.exp += 3600;
            })),
        ),
        (
            "wrong signature",
            Some(format!(
                "{}.{}.{}",
                parts[0],
                parts[1],
                String::from_utf8(flipped).unwrap()
            )),
        ),
        (
            "alg=none",
            Some(format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT"})),
                parts[1]
            )),
        ),
        ("HS256 with the public key", Some(confused)),
        (
            "wrong issuer",
            Some(other_issuer.issue("alice", &[Role::Customer], 600).unwrap()),
        ),
        (
            "wrong audience",
            Some(
                other_audience
                    .issue("alice", &[Role::Customer], 600)
                    .unwrap(),
            ),
        ),
        (
            "roles tampered",
            Some(format!("{}.{}.{}", parts[0], b64(&as_admin), parts[2])),
        ),
    ];
    let http = reqwest::Client::new();
    for (name, token) in &attacks {
        for (base, path) in [
            (fleet.gateway(), format!("/books/{id}")),
            (fleet.url("book"), format!("/books/{id}")),
            (fleet.url("house"), "/houses".to_owned()),
            (fleet.url("payment"), "/payments".to_owned()),
            (fleet.url("mypage"), "/mypages".to_owned()),
        ] {
            let mut req = http.get(format!("{base}{path}"));
            if let Some(t) = token {
                req = req.header("authorization", format!("Bearer {t}"));
            }
            let r = req.send().await.unwrap();
            let s = r.status();
            let e: Value = r.json().await.unwrap_or(Value::Null);
            assert_eq!(
                (s, e["error"].as_str()),
                (StatusCode::UNAUTHORIZED, Some("unauthorized")),
                "{name} at {base}{path}: {e}"
            );
        }
    }
    // Real tokens, wrong person or role: 403, and nothing is done.
    for (token, method, path, body) in [
        (&bob, Method::GET, format!("/books/{id}"), None),
        (&bob, Method::POST, format!("/books/{id}/cancel"), None),
        (&bob, Method::GET, format!("/mypages/{id}"), None),
        (
            &alice,
            Method::POST,
            "/houses".to_owned(),
            Some(json!({"houseName": "Mine now", "housePrice": 1})),
        ),
        (
            &alice,
            Method::PUT,
            "/faults".to_owned(),
            Some(json!({"delayMinMs": 0, "delayMaxMs": 0, "failureRate": 1})),
        ),
        (
            &alice,
            Method::POST,
            "/payments".to_owned(),
            Some(json!({"bookId": "x", "houseId": house, "housePrice": 1})),
        ),
    ] {
        let (s, e, _) = fleet.call(method.clone(), &path, Some(token), body).await;
        assert_eq!(
            (s, e["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "{method} {path}: {e}"
        );
    }
    let (_, b) = fleet.get(&format!("/books/{id}"), &alice).await;
    assert_ne!(
        b["status"], "BOOK_CANCELED",
        "bob could not cancel alice's booking"
    );
    fleet.shutdown().await;
}

//! The gateway in front of real services: token issuance, edge checks, routing, failures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use gateway::settings::Upstreams;
use gateway::{Application, Settings};
use platform::auth::{Role, TokenVerifier};
use platform::settings::AuthSettings;
use reqwest::StatusCode;
use serde_json::{json, Value};
use testkit::{Backend, TestApp, World};

struct Edge {
    gateway: TestApp,
    house: TestApp,
    /// The gateway's internal port: the fleet's client-credentials tokens.
    internal: String,
}

/// A closed port: nothing listens there.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start() -> Edge {
    start_with(|_| {}).await
}

/// A gateway in front of one real `house`; every other service is down. `tweak` changes
/// the gateway's settings; `house` in its upstreams is replaced by the running one.
async fn start_with(tweak: impl FnOnce(&mut Settings)) -> Edge {
    let world = World::new(Backend::Sqlite);
    let house = TestApp::spawn::<house::Application>(house::Settings {
        common: world.settings("house").await,
    })
    .await;
    let down = format!("http://127.0.0.1:{}", closed_port());
    let mut settings = Settings {
        upstreams: Upstreams {
            house: "{house}".into(),
            book: down.clone(),
            payment: down.clone(),
            mypage: down.clone(),
            notification: down,
            timeout_ms: 5000,
            health_interval_ms: 100,
        },
        ..Default::default()
    };
    tweak(&mut settings);
    settings.upstreams.house = settings.upstreams.house.replace("{house}", &house.base);
    settings.http.port = 0;
    settings.internal.port = closed_port();
    let internal = format!("http://127.0.0.1:{}", settings.internal.port);
    let gateway = TestApp::spawn::<Application>(settings).await;
    Edge {
        gateway,
        house,
        internal,
    }
}

/// A password-grant token (the local users' passwords are their names).
async fn token(edge: &Edge, user: &str) -> String {
    let (s, t) = token_request(
        edge,
        &[
            ("grant_type", "password"),
            ("username", user),
            ("password", user),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    t["access_token"].as_str().unwrap().to_owned()
}

async fn token_request(edge: &Edge, form: &[(&str, &str)]) -> (StatusCode, Value) {
    token_request_at(&edge.gateway.url("/oauth/token"), form).await
}

/// Book's client-credentials request (the local development secret).
const BOOK_CLIENT: [(&str, &str); 3] = [
    ("grant_type", "client_credentials"),
    ("client_id", "book"),
    ("client_secret", "book-dev-secret"),
];

/// The same on the internal port, where the fleet's services get their tokens.
async fn fleet_token_request(edge: &Edge, form: &[(&str, &str)]) -> (StatusCode, Value) {
    token_request_at(&format!("{}/oauth/token", edge.internal), form).await
}

async fn token_request_at(url: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let r = testkit::http().post(url).form(form).send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap())
}

fn verify(token: &str) -> platform::auth::Claims {
    TokenVerifier::new(&AuthSettings::default())
        .unwrap()
        .verify(token)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_issued_for_users_and_clients_and_refused_otherwise() {
    let edge = start().await;
    let (s, t) = token_request(
        &edge,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "alice"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["token_type"], "Bearer");
    let claims = verify(t["access_token"].as_str().unwrap());
    assert_eq!(
        (claims.sub.as_str(), claims.roles.clone()),
        ("alice", vec![Role::Customer])
    );
    assert!(claims.exp > claims.iat);

    let (_, t) = token_request(
        &edge,
        &[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", "admin"),
        ],
    )
    .await;
    assert_eq!(
        verify(t["access_token"].as_str().unwrap()).roles,
        vec![Role::Admin]
    );

    // The fleet's identity is issued on the internal port only; the public port refuses
    // that grant even with the right secret, and the internal one refuses users.
    let (s, e) = token_request(&edge, &BOOK_CLIENT).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client")),
        "{e}"
    );
    assert!(e.get("access_token").is_none());
    let (s, t) = fleet_token_request(&edge, &BOOK_CLIENT).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(
        verify(t["access_token"].as_str().unwrap()).roles,
        vec![Role::Service]
    );
    let (s, e) = fleet_token_request(
        &edge,
        &[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", "admin"),
        ],
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unsupported_grant_type")),
        "{e}"
    );
    // HTTP Basic client authentication, and a JSON body.
    for base in [edge.gateway.url(""), edge.internal.clone()] {
        let r = testkit::http()
            .post(format!("{base}/oauth/token"))
            .basic_auth("book", Some("book-dev-secret"))
            .json(&json!({"grant_type": "client_credentials"}))
            .send()
            .await
            .unwrap();
        let want = if base == edge.internal {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        };
        assert_eq!(r.status(), want, "{base}");
    }

    for (form, want, code) in [
        (
            vec![
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "bob"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("username", "mallory"),
                ("password", "x"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            vec![("grant_type", "password"), ("username", "alice")],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![("grant_type", "implicit")],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (vec![], StatusCode::BAD_REQUEST, "invalid_request"),
    ] {
        let (s, e) = token_request(&edge, &form).await;
        assert_eq!(
            (s, e["error"].as_str()),
            (want, Some(code)),
            "{form:?} → {e}"
        );
    }

    for form in [
        [
            ("grant_type", "client_credentials"),
            ("client_id", "book"),
            ("client_secret", "nope"),
        ],
        [
            ("grant_type", "client_credentials"),
            ("client_id", "alice"),
            ("client_secret", "alice"),
        ],
    ] {
        let (s, e) = fleet_token_request(&edge, &form).await;
        assert_eq!(
            (s, e["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_client")),
            "{form:?} → {e}"
        );
    }

    let jwks: Value = testkit::http()
        .get(edge.gateway.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
    );
    assert_eq!(key["x"].as_str().unwrap().len(), 43, "32 bytes, base64url");
    edge.gateway.stop().await;
    edge.house.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_checked_at_the_edge_and_routed() {
    let edge = start().await;
    let admin = token(&edge, "admin").await;
    let alice = token(&edge, "alice").await;

    let (s, h) = edge
        .gateway
        .post(
            "/houses",
            &admin,
            json!({"houseName": "Via gateway", "housePrice": 5}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{h}");
    let (s, _) = edge
        .gateway
        .post(
            "/houses",
            &alice,
            json!({"houseName": "Not mine", "housePrice": 5}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "the service checks the role itself"
    );
    let r = testkit::http()
        .get(
            edge.gateway
                .url(&format!("/houses/{}?date=2030-01-01", h["id"])),
        )
        .bearer_auth(&alice)
        .header("x-request-id", "trace-me-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-request-id"], "trace-me-1");
    // A request id the client should not choose (issue 18: 16 KiB ids were echoed and
    // logged twice per line; the whole head is bounded at 16 KiB, so 4 KiB here) is
    // replaced by a fresh one, echoed and passed on instead.
    let tab = reqwest::header::HeaderValue::from_bytes(b"id\twith-a-tab").unwrap();
    let high = reqwest::header::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap();
    let long = reqwest::header::HeaderValue::from_str(&"x".repeat(4 * 1024)).unwrap();
    for bad in [
        tab,
        high,
        long,
        reqwest::header::HeaderValue::from_static("a b"),
    ] {
        let r = testkit::http()
            .get(edge.gateway.url("/houses"))
            .bearer_auth(&alice)
            .header("x-request-id", bad.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let echoed = r.headers()["x-request-id"].to_str().unwrap();
        assert_ne!(echoed.as_bytes(), bad.as_bytes());
        assert!(
            echoed.len() == 36 && echoed.chars().all(|c| c.is_ascii_hexdigit() || c == '-'),
            "a fresh UUID: {echoed}"
        );
    }
    let longest = testkit::http()
        .get(edge.gateway.url("/houses"))
        .bearer_auth(&alice)
        .header("x-request-id", "y".repeat(128))
        .send()
        .await
        .unwrap();
    assert_eq!(
        longest.headers()["x-request-id"],
        "y".repeat(128).as_str(),
        "128 is kept"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["date"], "2030-01-01", "the query string is passed on");

    let r = testkit::http()
        .get(edge.gateway.url("/houses"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "unauthorized");
    let (s, _) = edge.gateway.get("/houses", "forged.token.value").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // A genuine service token (leaked, or minted with a leaked client secret) buys
    // nothing at the public edge: refused before anything is forwarded.
    let (_, t) = fleet_token_request(&edge, &BOOK_CLIENT).await;
    let service = t["access_token"].as_str().unwrap().to_owned();
    let houses_before = edge.house.get("/houses", &admin).await.1;
    for (method, path) in [
        (reqwest::Method::GET, "/houses"),
        (reqwest::Method::POST, "/houses"),
        (reqwest::Method::GET, "/payments?limit=1000"),
        (reqwest::Method::POST, "/payments/1/cancel"),
        (reqwest::Method::POST, "/payments"),
        (reqwest::Method::GET, "/books"),
        (reqwest::Method::GET, "/mypages"),
    ] {
        let r = testkit::http()
            .request(method.clone(), edge.gateway.url(path))
            .bearer_auth(&service)
            .json(&json!({"houseName": "By a service", "housePrice": 5}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method} {path}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], "forbidden", "{method} {path}: {e}");
    }
    assert_eq!(
        edge.house.get("/houses", &admin).await.1,
        houses_before,
        "nothing forwarded"
    );

    // A service that is down: JSON 503 with Retry-After, nothing internal.
    let r = testkit::http()
        .get(edge.gateway.url("/mypages"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    let e: Value = r.json().await.unwrap();
    assert_eq!(
        e,
        json!({"error": "unavailable", "message": "mypage is unavailable"})
    );
    let (s, e) = edge.gateway.get("/nowhere", &alice).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    edge.gateway.stop().await;
    edge.house.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_refuses_connections_is_skipped() {
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let edge = start_with(|s| s.upstreams.house = format!("{dead},{{house}},{dead}/")).await;
    let alice = token(&edge, "alice").await;
    for i in 0..12 {
        let (s, b) = edge.gateway.get("/houses", &alice).await;
        assert_eq!(s, StatusCode::OK, "call {i}: {b}");
    }
    edge.gateway.stop().await;
    edge.house.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_over_their_rate_get_429_with_retry_after_and_nothing_forwarded() {
    // One token every 50 s: the calls below must see the bursts spent whatever the
    // machine's load (at one every 5 s, a loaded machine could take that long between a
    // burst's first call and the one that must be refused).
    let edge = start_with(|s| {
        s.rate_limit.api = gateway::limit::Rate {
            per_second: 0.02,
            burst: 3.0,
        };
        s.rate_limit.token = gateway::limit::Rate {
            per_second: 0.02,
            burst: 1.0,
        };
    })
    .await;
    let admin = token(&edge, "admin").await;
    // Signing in with the right password costs a name nothing ...
    token(&edge, "alice").await;
    let alice = token(&edge, "alice").await;
    // ... a wrong one spends its burst of one ...
    let guess = |password: &'static str| {
        [
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", password),
        ]
    };
    let (s, e) = token_request(&edge, &guess("guess")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    // ... and then even the right one waits (the check is not even made).
    let (s, e) = token_request(&edge, &guess("alice")).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")),
        "a token request for alice after a failure, within a burst of one"
    );
    token(&edge, "bob").await; // bob's requests are counted apart

    for i in 0..3 {
        let (s, b) = edge
            .gateway
            .post(
                "/houses",
                &admin,
                json!({"houseName": format!("House {i}"), "housePrice": 5}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let r = testkit::http()
        .post(edge.gateway.url("/houses"))
        .bearer_auth(&admin)
        .json(&json!({"houseName": "One too many", "housePrice": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=50).contains(&after),
        "Retry-After {after}: when the next token comes"
    );
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "rate_limited");
    // alice has her own budget; what she sees proves the fourth house was never forwarded.
    let (s, houses) = edge.gateway.get("/houses", &alice).await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<_> = houses
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["houseName"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["House 0", "House 1", "House 2"]);
    edge.gateway.stop().await;
    edge.house.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_routes() {
    let edge = start().await;
    // What it serves is the whole public API — its own routes and every service's, each
    // operation tagged with the service that answers it — and every route in it is one
    // the gateway serves or forwards.
    let public = gateway::contract::public_document().unwrap();
    testkit::assert_documented_routes_exist(&edge.gateway, &public.to_string(), "no-token-needed")
        .await;
    let served = public;
    assert_eq!(served["info"]["title"], "housebook public API");
    for (path, method, tag) in [
        ("/oauth/token", "post", "gateway"),
        ("/books", "post", "book"),
        ("/payments/{id}", "get", "payment"),
        ("/houses/{id}", "get", "house"),
        ("/availability", "get", "mypage"),
        ("/notifications", "get", "notification"),
    ] {
        assert_eq!(
            served["paths"][path][method]["tags"][0], tag,
            "{method} {path}"
        );
    }
    edge.gateway.stop().await;
    edge.house.stop().await;
}

/// Issue 18: where TLS ends at the load balancer (the EKS overlay), every public answer —
/// an error included — tells browsers to use HTTPS only; by default none does (a local
/// gateway on plain HTTP must not pin `localhost` to HTTPS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_is_sent_where_it_is_set_and_only_there() {
    let hsts = |r: &reqwest::Response| {
        r.headers()
            .get("strict-transport-security")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let edge = start_with(|s| s.hsts_max_age_secs = 31_536_000).await;
    let http = testkit::http();
    for path in ["/.well-known/jwks.json", "/books", "/houses"] {
        let r = http.get(edge.gateway.url(path)).send().await.unwrap();
        assert_eq!(
            hsts(&r).as_deref(),
            Some("max-age=31536000; includeSubDomains"),
            "{path} answered {}",
            r.status()
        );
    }
    edge.gateway.stop().await;
    edge.house.stop().await;
    let edge = start().await;
    let r = http
        .get(edge.gateway.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(hsts(&r), None);
    edge.gateway.stop().await;
    edge.house.stop().await;
}

/// `GET /notifications/stream` through the gateway, in front of a real notification
/// service: an event reaches the reader as it is stored (nothing buffered), an open stream
/// holds no in-flight place, its places are bounded per caller and in all, the fleet's
/// identities are refused, and the gateway's stop ends the streams it carries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_passes_through_live_and_bounded() {
    let world = World::new(Backend::Sqlite);
    let common = world.settings("notification").await;
    platform::kafka::ensure_topics(&common.kafka).await.unwrap();
    let notification = TestApp::spawn::<notification::Application>(notification::Settings {
        common,
        ..Default::default()
    })
    .await;
    let notification_url = notification.base.clone();
    let edge = start_with(|s| {
        s.upstreams.notification = notification_url;
        s.streams = platform::stream::StreamBounds {
            per_subject: 1,
            total: 2,
        };
        // One request at a time: an open stream must not be holding it.
        s.http.max_in_flight = 1;
    })
    .await;
    let open = |tok: Option<String>| {
        let req = testkit::sse::client().get(edge.gateway.url("/notifications/stream"));
        async move {
            match tok {
                Some(t) => req.bearer_auth(t),
                None => req,
            }
            .send()
            .await
            .unwrap()
        }
    };
    assert_eq!(open(None).await.status(), StatusCode::UNAUTHORIZED);
    let (_, service) = fleet_token_request(&edge, &BOOK_CLIENT).await;
    let refused = open(Some(service["access_token"].as_str().unwrap().to_owned())).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let alice = token(&edge, "alice").await;
    let opened = open(Some(alice.clone())).await;
    assert_eq!(
        opened.headers()["x-accel-buffering"],
        "no",
        "a proxy in front is told not to buffer it"
    );
    assert_eq!(opened.headers()["cache-control"], "no-cache");
    let mut hers = testkit::sse::SseStream::new(opened);
    // The stream holds no in-flight place: another call is served while it is open.
    let (s, _) = edge.gateway.get("/houses", &alice).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "the API is not held up by an open stream"
    );

    let book = testkit::unique("b-");
    let night = events::parse_date("2031-03-01").unwrap();
    world
        .publish(
            &events::Envelope::new(&events::Paid {
                payment_id: 1,
                book_id: book.clone(),
                house_id: 1,
                customer_id: "alice".into(),
                house_price: 120,
                check_in: night,
                check_out: night.succ_opt().unwrap(),
                payment_date: chrono::Utc::now(),
            })
            .unwrap(),
        )
        .await;
    let got = hers.next().await;
    assert_eq!(got.event, "notification");
    assert_eq!(got.json()["bookId"], book.as_str());
    assert_eq!(got.json()["kind"], "PAYMENT_RECEIVED");

    // Bounds: alice's one place is taken; bob takes the last of two; then none is left.
    let again = open(Some(alice.clone())).await;
    assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(again.headers().contains_key("retry-after"));
    let bob = token(&edge, "bob").await;
    let _his = testkit::sse::SseStream::new(open(Some(bob)).await);
    let full = open(Some(token(&edge, "admin").await)).await;
    assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(full.headers().contains_key("retry-after"));
    let e: Value = full.json().await.unwrap();
    assert!(e["message"].as_str().unwrap().contains("streams"), "{e}");

    // Stopping the gateway ends the streams it carries.
    edge.gateway.stop().await;
    hers.ends_within(
        std::time::Duration::from_secs(30),
        "the stream ended with the gateway",
    )
    .await;
    notification.stop().await;
    edge.house.stop().await;
}

/// A caller's share and the gateway's capacity: with every in-flight place taken by calls
/// waiting on an upstream that never answers, `/readyz` says "at capacity" (a load balancer
/// then sends to the other replicas) and new calls get `503` at once; one address may have
/// only its share in progress (`429` beyond) while another is still served; once the
/// places free, the gateway is ready again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_gateway_is_not_ready_and_one_address_holds_only_its_share() {
    // Never accepts: a request sent there waits for the upstream timeout.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hole = format!("http://{}", black_hole.local_addr().unwrap());
    let edge = start_with(|s| {
        s.upstreams.book = hole.clone();
        s.upstreams.timeout_ms = 3000;
        s.http.max_in_flight = 2;
        s.http.max_in_flight_per_address = 0;
    })
    .await;
    let alice = token(&edge, "alice").await;
    let readyz = |url: String| async move {
        let r = testkit::http().get(url).send().await.unwrap();
        let s = r.status();
        (s, r.json::<Value>().await.unwrap())
    };
    let ready_url = edge.gateway.url("/readyz");
    assert_eq!(readyz(ready_url.clone()).await.0, StatusCode::OK);
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let (url, alice) = (edge.gateway.url("/books"), alice.clone());
            tokio::spawn(async move {
                testkit::http()
                    .get(url)
                    .bearer_auth(alice)
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    let why = testkit::eventually(5, "the gateway to say it is full", || async {
        let (s, body) = readyz(ready_url.clone()).await;
        (s == StatusCode::SERVICE_UNAVAILABLE).then_some(body)
    })
    .await;
    assert_eq!(why["reason"], "at capacity: every in-flight place is taken");
    let r = testkit::http()
        .get(edge.gateway.url("/houses"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    for w in waiting {
        assert_eq!(w.await.unwrap(), StatusCode::GATEWAY_TIMEOUT);
    }
    assert_eq!(readyz(ready_url).await.0, StatusCode::OK, "ready again");
    let (s, _) = edge.gateway.get("/houses", &alice).await;
    assert_eq!(s, StatusCode::OK);
    edge.gateway.stop().await;
    edge.house.stop().await;

    // One address's share: two in progress from 127.0.0.1; its third is refused at once,
    // another address is served.
    let edge = start_with(|s| {
        s.upstreams.book = hole.clone();
        s.upstreams.timeout_ms = 3000;
        s.http.max_in_flight_per_address = 2;
    })
    .await;
    let alice = token(&edge, "alice").await;
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let (url, alice) = (edge.gateway.url("/books"), alice.clone());
            tokio::spawn(async move {
                let r = testkit::http().get(url).bearer_auth(alice).send().await;
                r.unwrap().status()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = testkit::http()
        .get(edge.gateway.url("/houses"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "too_many_in_progress", "{body}");
    let elsewhere = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let r = elsewhere
        .get(edge.gateway.url("/houses"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "another address is served");
    let (s, _) = readyz(edge.gateway.url("/readyz")).await;
    assert_eq!(s, StatusCode::OK, "not full: others have room");
    for w in waiting {
        assert_eq!(w.await.unwrap(), StatusCode::GATEWAY_TIMEOUT);
    }
    edge.gateway.stop().await;
    edge.house.stop().await;
    drop(black_hole);
}

/// Every API answer — the gateway's own (a token, a refusal, an unknown path) and those
/// it passes on (a list, a service's 404) — says `Cache-Control: no-store` (none is for a
/// shared cache) and `X-Content-Type-Options: nosniff`; the key set keeps its own caching.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_answer_says_no_store_and_nosniff() {
    let edge = start().await;
    let alice = token(&edge, "alice").await;
    let http = testkit::http();
    let answers = [
        (
            "a list",
            http.get(edge.gateway.url("/houses")).bearer_auth(&alice),
        ),
        (
            "a service's 404",
            http.get(edge.gateway.url("/houses/987654"))
                .bearer_auth(&alice),
        ),
        ("a refusal", http.get(edge.gateway.url("/houses"))),
        ("an unknown path", http.get(edge.gateway.url("/nowhere"))),
        (
            "a token",
            http.post(edge.gateway.url("/oauth/token")).form(&[
                ("grant_type", "password"),
                ("username", "bob"),
                ("password", "bob"),
            ]),
        ),
        (
            "a wrong password",
            http.post(edge.gateway.url("/oauth/token")).form(&[
                ("grant_type", "password"),
                ("username", "bob"),
                ("password", "nope"),
            ]),
        ),
    ];
    for (what, req) in answers {
        let r = req.send().await.unwrap();
        let h = r.headers();
        assert_eq!(h["cache-control"], "no-store", "{what}: {h:?}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}: {h:?}");
    }
    let r = http
        .get(edge.gateway.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "public, max-age=300");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    edge.gateway.stop().await;
    edge.house.stop().await;
}

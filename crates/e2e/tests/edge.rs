//! The edge under floods from one address, as an attacker would send them, on a real
//! fleet: one source cannot take the gateway (or a service's port) from everyone else.
//! The flood comes from 127.0.0.1; the witness, another client, from 127.0.0.2.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use e2e::{client_from, Fleet};
use reqwest::StatusCode;
use serde_json::Value;
use testkit::Backend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where the witness's connections come from.
const WITNESS: &str = "127.0.0.2";

/// How the flood's connections ended: the status line's code, `closed` (no answer), or
/// `held` (still open when the flood stopped).
type Outcomes = BTreeMap<String, usize>;

/// `n` connections from 127.0.0.1 to `addr`, each sending `head` (and nothing more), then
/// waiting for an answer until `hold` has passed.
fn flood(addr: &str, n: usize, head: Vec<u8>, hold: Duration) -> tokio::task::JoinHandle<Outcomes> {
    let addr = addr.to_owned();
    tokio::spawn(async move {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let (addr, head) = (addr.clone(), head.clone());
                tokio::spawn(async move {
                    let Ok(mut s) = tokio::net::TcpStream::connect(&addr).await else {
                        return "refused".to_owned();
                    };
                    if s.write_all(&head).await.is_err() {
                        return "closed".to_owned();
                    }
                    let mut answer = Vec::new();
                    // Still open when the flood stops: held (whatever the server sent
                    // first, such as an HTTP/2 server's SETTINGS); else its answer's status,
                    // or closed without one.
                    match tokio::time::timeout(hold, s.read_to_end(&mut answer)).await {
                        Err(_) => "held".to_owned(),
                        Ok(_) if answer.starts_with(b"HTTP/1.1 ") => {
                            String::from_utf8_lossy(&answer[9..12]).into_owned()
                        }
                        Ok(_) => "closed".to_owned(),
                    }
                })
            })
            .collect();
        let mut out = Outcomes::new();
        for t in tasks {
            *out.entry(t.await.unwrap()).or_default() += 1;
        }
        out
    })
}

/// What another client sees meanwhile: `rounds` rounds of its everyday requests (the
/// houses with its token, a sign-in, the storefront, the key set), 100 ms apart, each
/// answer's status.
async fn witness(base: &str, token: &str, rounds: usize) -> Vec<(&'static str, u16)> {
    let http = client_from(WITNESS);
    let mut seen = Vec::new();
    for _ in 0..rounds {
        let calls: [(&str, reqwest::RequestBuilder); 4] = [
            (
                "GET /houses",
                http.get(format!("{base}/houses")).bearer_auth(token),
            ),
            (
                "POST /oauth/token",
                http.post(format!("{base}/oauth/token")).form(&[
                    ("grant_type", "password"),
                    ("username", "alice"),
                    ("password", "alice"),
                ]),
            ),
            ("GET /app/", http.get(format!("{base}/app/"))),
            (
                "GET /.well-known/jwks.json",
                http.get(format!("{base}/.well-known/jwks.json")),
            ),
        ];
        for (what, req) in calls {
            let status = match req.send().await {
                Ok(r) => r.status().as_u16(),
                Err(_) => 0,
            };
            seen.push((what, status));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen
}

fn share_served(seen: &[(&str, u16)]) -> f64 {
    seen.iter().filter(|(_, s)| (200..300).contains(s)).count() as f64 / seen.len() as f64
}

/// The gateway's readiness, on its admin port.
async fn gateway_ready(fleet: &Fleet) -> (u16, Value) {
    let url = fleet.metrics_url("gateway").replace("/metrics", "/readyz");
    let r = testkit::http().get(url).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Floods from one address, with the gateway's default settings: 515 sign-ins that send
/// `Content-Length: 60000` and a few bytes, then wait; the same as a customer booking with
/// a slow body; 1,100 connections that never finish their head. Each could take every
/// in-flight place (or connection) for the request timeout if places were taken before
/// bodies were read and nothing were counted per address. Another client is served
/// throughout (at least 90 % of its requests 2xx; all of them, on a quiet machine), the
/// flood's excess is refused at once, and readiness stays true because the gateway still
/// has places for others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_the_gateway_from_everyone_else() {
    let fleet = Fleet::start(Backend::Sqlite).await;
    let base = fleet.gateway();
    let addr = base.trim_start_matches("http://").to_owned();
    let alice = fleet.token("alice").await;
    let bob = fleet.token("bob").await;
    let house = {
        let admin = fleet.token("admin").await;
        let (s, h) = fleet
            .post(
                "/houses",
                &admin,
                serde_json::json!({"houseName": "Flood House", "housePrice": 100}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{h}");
        h["id"].as_i64().unwrap()
    };
    let slow_body = |head: String| {
        format!("{head}Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n{{\"a\":")
            .into_bytes()
    };
    let floods: [(&str, usize, Vec<u8>); 3] = [
        (
            "sign-ins with slow bodies",
            515,
            slow_body("POST /oauth/token HTTP/1.1\r\nHost: x\r\n".into()),
        ),
        (
            "bookings with slow bodies",
            515,
            slow_body(format!(
                "POST /books HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {bob}\r\n"
            )),
        ),
        (
            "heads that never end",
            1100,
            format!("GET /houses/{house} HTTP/1.1\r\nHost: x\r\n").into_bytes(),
        ),
    ];
    for (what, n, head) in floods {
        let started = Instant::now();
        let flooding = flood(&addr, n, head, Duration::from_secs(8));
        // Let the flood take what it can, then look.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (ready, why) = gateway_ready(&fleet).await;
        let seen = witness(&base, &alice, 10).await;
        let outcomes = flooding.await.unwrap();
        let served = share_served(&seen);
        let refused: Vec<_> = seen
            .iter()
            .filter(|(_, s)| !(200..300).contains(s))
            .collect();
        eprintln!(
            "flood of {n} {what} from one address: its connections ended {outcomes:?} within {:?}; \
             the witness got {:.0} % of {} requests 2xx (refused: {refused:?}); /readyz {ready} {why}",
            started.elapsed(),
            served * 100.0,
            seen.len()
        );
        assert!(
            served >= 0.9,
            "{what}: the witness was served {:.0} %: {refused:?}",
            served * 100.0
        );
        assert_eq!(ready, 200, "{what}: places were left for others: {why}");
        let cut: usize = outcomes
            .iter()
            .filter(|(k, _)| k.as_str() != "held")
            .map(|(_, n)| n)
            .sum();
        assert!(
            cut > 0,
            "{what}: the flood's excess was refused or closed: {outcomes:?}"
        );
    }
    fleet.shutdown().await;
}

/// A password grant for `user` from `http`; its status.
async fn sign_in(http: &reqwest::Client, base: &str, user: &str, password: &str) -> u16 {
    let r = http
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
        ])
        .send()
        .await;
    r.map_or(0, |r| r.status().as_u16())
}

/// `n` wrong sign-ins as `name` from `address`, sent at once: every connection opened
/// first, then every request written back to back, so that all of them arrive within the
/// time of one check however loaded the machine is. (Through a client's pool each request
/// connects as it goes; beside a running benchmark that spread one burst over longer than
/// a check, and the address's share let a fifth try in.) The answers' statuses, counted.
async fn sign_in_burst(address: &str, base: &str, name: &str, n: usize) -> BTreeMap<u16, usize> {
    let host = base.trim_start_matches("http://");
    let gateway: std::net::SocketAddr = host.parse().expect("the gateway's address");
    let local: std::net::IpAddr = address.parse().expect("a loopback address");
    let mut connections = Vec::new();
    for _ in 0..n {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket
            .bind((local, 0).into())
            .expect("bound to the address");
        connections.push(socket.connect(gateway).await.expect("connected"));
    }
    let body = format!("grant_type=password&username={name}&password=wrong");
    let request = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    for c in &mut connections {
        c.write_all(request.as_bytes()).await.expect("sent");
    }
    let mut answers = BTreeMap::<u16, usize>::new();
    for mut c in connections {
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut answer)).await;
        let status = std::str::from_utf8(&answer)
            .ok()
            .and_then(|a| a.strip_prefix("HTTP/1.1 "))
            .and_then(|a| a.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        assert!(read.is_ok(), "a sign-in of the burst answered within 10 s");
        *answers.entry(status).or_default() += 1;
    }
    answers
}

/// Mann-Whitney's z for two samples (ties ranked by position: continuous times).
fn mann_whitney_z(a: &[f64], b: &[f64]) -> f64 {
    let mut all: Vec<(f64, bool)> = a.iter().map(|&x| (x, true)).collect();
    all.extend(b.iter().map(|&x| (x, false)));
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let rank_a: f64 = all
        .iter()
        .enumerate()
        .filter(|(_, (_, from_a))| *from_a)
        .map(|(i, _)| (i + 1) as f64)
        .sum();
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let u = rank_a - n1 * (n1 + 1.0) / 2.0;
    (u - n1 * n2 / 2.0) / (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Which names exist does not show: a burst of eight wrong sign-ins at once from one
/// address gets the same answers for a real name as for a made-up one (the per-address
/// check slots refuse the same share of either), and their times have the same
/// distribution (Mann-Whitney over interleaved tries; an attack round had told them apart
/// at z = −8.8). The rate limits are raised here so that the answers and times are the
/// checks', not the limits'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_tell_nothing_of_which_names_exist() {
    let mut options = e2e::Options::new(Backend::Sqlite);
    for (k, v) in [
        ("HOUSEBOOK_RATE_LIMIT__TOKEN__PER_SECOND", "1000"),
        ("HOUSEBOOK_RATE_LIMIT__TOKEN__BURST", "1000"),
        ("HOUSEBOOK_RATE_LIMIT__TOKEN_NAME__PER_SECOND", "1000"),
        ("HOUSEBOOK_RATE_LIMIT__TOKEN_NAME__BURST", "1000"),
        ("HOUSEBOOK_RATE_LIMIT__TOKEN_ADDRESS__PER_SECOND", "1000"),
        ("HOUSEBOOK_RATE_LIMIT__TOKEN_ADDRESS__BURST", "1000"),
    ] {
        options.env.push(("gateway", k.into(), v.into()));
    }
    let fleet = Fleet::start_with(options).await;
    let base = fleet.gateway();
    // Real checks first, so that the stand-ins have times to follow.
    let http = client_from(WITNESS);
    for _ in 0..8 {
        assert_eq!(sign_in(&http, &base, "bob", "wrong").await, 400);
    }
    for (round, address) in ["127.0.4.1", "127.0.4.2", "127.0.4.3"].iter().enumerate() {
        let real = sign_in_burst(address, &base, "bob", 8).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let made_up = sign_in_burst(address, &base, &format!("nobody-{round}"), 8).await;
        eprintln!("a burst of 8 from {address}: bob {real:?}, a made-up name {made_up:?}");
        assert_eq!(real, made_up, "the same burst, the same answers");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Times, interleaved so that the machine's load falls on both alike.
    let (mut real, mut made_up) = (Vec::new(), Vec::new());
    for i in 0..120 {
        for (name, times) in [
            ("bob".to_owned(), &mut real),
            (format!("ghost-{i}"), &mut made_up),
        ] {
            let started = Instant::now();
            assert_eq!(sign_in(&http, &base, &name, "wrong").await, 400);
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let z = mann_whitney_z(&real, &made_up);
    let (r, m) = (median(&mut real), median(&mut made_up));
    eprintln!("120 wrong sign-ins each: bob median {r:.2} ms, made-up names {m:.2} ms; Mann-Whitney z = {z:.2}");
    assert!(
        z.abs() < 4.0,
        "the times tell real names from made-up ones: z = {z:.2} (medians {r:.2} / {m:.2} ms)"
    );
    fleet.shutdown().await;
}

/// Nobody is locked out by others: during six addresses guessing bob's password at 5/s
/// each, and during forty addresses sending made-up names three connections each, bob,
/// alice and admin signing in from fresh addresses throughout, from the flood's first
/// moment, are never refused. The guessers themselves are slowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_is_locked_out_by_others_guesses() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let fleet = Fleet::start(Backend::Sqlite).await;
    let base = fleet.gateway();
    // (what, addresses, connections per address, the name sent: None is a made-up one
    // each time, pause between one connection's tries). A flood of guesses at bob lasts
    // until the guessers are slowed (at least 5 s, at most 120): on a loaded machine 5 s of
    // guessing at 5/s was once only 43 guesses in all, fewer than the limits let through,
    // and the test proved nothing about slowing.
    let floods: [(&str, usize, usize, Option<&str>, u64); 2] = [
        (
            "bob's password guessed from 6 addresses at 5/s each",
            6,
            1,
            Some("bob"),
            200,
        ),
        (
            "made-up names from 40 addresses, 3 connections each",
            40,
            3,
            None,
            0,
        ),
    ];
    let mut fresh = 0;
    for (what, addresses, per_address, name, pause) in floods {
        let stop = Arc::new(AtomicBool::new(false));
        let slowed = Arc::new(AtomicBool::new(false));
        let senders: Vec<_> = (0..addresses * per_address)
            .map(|i| {
                let http = client_from(&format!("127.0.5.{}", i % addresses + 1));
                let (base, stop, slowed, name) = (
                    base.clone(),
                    stop.clone(),
                    slowed.clone(),
                    name.map(str::to_owned),
                );
                tokio::spawn(async move {
                    let mut answers = BTreeMap::<u16, usize>::new();
                    let mut k = 0;
                    while !stop.load(Ordering::Relaxed) {
                        k += 1;
                        let name = name.clone().unwrap_or_else(|| format!("nobody-{i}-{k}"));
                        let status = sign_in(&http, &base, &name, "guess").await;
                        *answers.entry(status).or_default() += 1;
                        if status == 429 {
                            slowed.store(true, Ordering::Relaxed);
                        }
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                    }
                    answers
                })
            })
            .collect();
        // From the flood's first moment to its last, real users sign in from addresses
        // of their own.
        let mut refused = Vec::new();
        let mut tries = 0;
        let started = Instant::now();
        let until_slowed = name.is_some();
        while started.elapsed() < Duration::from_secs(5)
            || (until_slowed
                && !slowed.load(Ordering::Relaxed)
                && started.elapsed() < Duration::from_secs(120))
        {
            for user in ["bob", "alice", "admin"] {
                fresh += 1;
                let http = client_from(&format!("127.0.6.{fresh}"));
                let at = started.elapsed();
                let status = sign_in(&http, &base, user, user).await;
                tries += 1;
                if status != 200 {
                    refused.push(format!("{user} at {at:?}: {status}"));
                }
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        stop.store(true, Ordering::Relaxed);
        let mut answers = BTreeMap::<u16, usize>::new();
        for s in senders {
            for (k, v) in s.await.unwrap() {
                *answers.entry(k).or_default() += v;
            }
        }
        eprintln!("{what}: the flood got {answers:?}; real users signed in {tries} times, refused {refused:?}");
        assert!(refused.is_empty(), "{what}: {refused:?}");
        assert!(
            answers.keys().all(|s| [400, 429, 503].contains(s)),
            "{what}: only refusals: {answers:?}"
        );
        if name.is_some() {
            assert!(
                answers.get(&429).copied().unwrap_or(0) > 0,
                "{what}: the guessers were slowed: {answers:?}"
            );
        }
    }
    fleet.shutdown().await;
}

/// The same fairness on a service's own port and on book's gRPC port: 1,100 connections
/// from one address that never finish their head at book's HTTP port hold at most its
/// share (256), the rest turned away at once (answered `429 too_many_connections`, as
/// many at a time as the server answers, the others closed); 100 silent
/// connections at book's gRPC port at most its share (64), the rest closed at once; a
/// client from another address lists its bookings over both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_port_and_grpc_hold_one_address_to_its_share() {
    use book::inbound::grpc::pb::bookings_client::BookingsClient;
    use book::inbound::grpc::pb::ListBookingsRequest;

    let fleet = Fleet::start(Backend::Sqlite).await;
    let alice = testkit::token("alice", &[platform::auth::Role::Customer]);
    let book = fleet.url("book");
    let http_flood = flood(
        book.trim_start_matches("http://"),
        1100,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n".to_vec(),
        Duration::from_secs(6),
    );
    let grpc = fleet.grpc_url("book");
    let grpc_flood = flood(
        grpc.trim_start_matches("http://"),
        100,
        Vec::new(),
        Duration::from_secs(6),
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let http = client_from(WITNESS);
    let mut served = 0;
    for _ in 0..10 {
        let r = http
            .get(format!("{book}/books"))
            .bearer_auth(&alice)
            .send()
            .await;
        served += usize::from(r.is_ok_and(|r| r.status() == StatusCode::OK));
    }
    let channel = tonic::transport::Endpoint::from_shared(grpc.clone())
        .unwrap()
        .local_address(Some(WITNESS.parse().unwrap()))
        .connect()
        .await
        .expect("a connection from another address");
    let mut client = BookingsClient::new(channel);
    let mut request = tonic::Request::new(ListBookingsRequest {
        status: String::new(),
        limit: 1,
        offset: 0,
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {alice}").parse().unwrap());
    let listed = client.list_bookings(request).await;
    let (http_outcomes, grpc_outcomes) = (http_flood.await.unwrap(), grpc_flood.await.unwrap());
    eprintln!(
        "book's HTTP port: flood {http_outcomes:?}, the witness served {served} of 10; gRPC: flood {grpc_outcomes:?}, the witness's call {:?}",
        listed.as_ref().map(|_| "ok")
    );
    assert_eq!(served, 10, "another address is served at book's port");
    assert!(
        listed.is_ok(),
        "another address is served over gRPC: {listed:?}"
    );
    // The flood's address is also the fleet's own (the gateway's pool to book comes from
    // 127.0.0.1 too): it holds at most its share, and the rest is turned away at once —
    // over HTTP answered `429` (as many at a time as the server answers; the others
    // closed), over gRPC closed.
    for (what, outcomes, share) in [("HTTP", &http_outcomes, 256), ("gRPC", &grpc_outcomes, 64)] {
        let held = outcomes.get("held").copied().unwrap_or(0);
        assert!(held <= share, "{what}: {outcomes:?}");
    }
    assert!(
        http_outcomes.get("429").is_some_and(|n| *n > 0),
        "{http_outcomes:?}"
    );
    assert_eq!(
        grpc_outcomes.get("held").copied().unwrap_or(0)
            + grpc_outcomes.get("closed").copied().unwrap_or(0),
        100,
        "{grpc_outcomes:?}"
    );
    fleet.shutdown().await;
}

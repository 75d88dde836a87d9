//! The edge under floods from one address, as an attacker would send them, on a real
//! fleet: one source cannot take the gateway (or a service's port) from everyone else.
//! The flood comes from 127.0.0.1; the witness, another client, from 127.0.0.2.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use e2e::Fleet;
use reqwest::StatusCode;
use serde_json::Value;
use testkit::Backend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where the witness's connections come from.
const WITNESS: &str = "127.0.0.2";

/// A client whose connections come from `address` (a loopback address of its own).
fn client_from(address: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(address.parse::<std::net::IpAddr>().unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

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
                    match tokio::time::timeout(hold, s.read_to_end(&mut answer)).await {
                        Err(_) if answer.is_empty() => "held".to_owned(),
                        _ if answer.starts_with(b"HTTP/1.1 ") => {
                            String::from_utf8_lossy(&answer[9..12]).into_owned()
                        }
                        _ => "closed".to_owned(),
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

/// The attack round's floods, each from one address with the gateway's default settings:
/// 515 sign-ins that send `Content-Length: 60000` and a few bytes, then wait; the same as
/// a customer booking with a slow body; 1,100 connections that never finish their head.
/// Before, each took every in-flight place (or connection) for up to 30 s and every public
/// route answered `503` to everyone, while `/readyz` said ready. Now another client is
/// served throughout (at least 90 % of its requests 2xx; all of them, on a quiet
/// machine), the flood's excess is refused at once, and readiness stays true because the
/// gateway still has places for others.
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

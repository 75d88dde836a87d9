#![allow(clippy::unwrap_used, clippy::expect_used)]
use e2e::{Fleet, Options};
use reqwest::StatusCode;
use serde_json::json;
use testkit::Backend;

async fn book(f: &Fleet, alice: &str, id: i64, d: u32) -> String {
    loop {
        let (s, b) = f.post("/books", alice, json!({"houseId": id, "checkIn": format!("2035-01-{d:02}"), "checkOut": format!("2035-01-{:02}", d+1)})).await;
        if s == StatusCode::CREATED { return b["id"].as_str().unwrap().to_owned(); }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn experiment_kill_house() {
    let mut o = Options::new(Backend::Sqlite);
    o.private_broker = true;
    if std::env::var("STATIC").is_ok() {
        for s in ["house", "mypage", "book"] {
            o.env.push((s, "HOUSEBOOK_KAFKA__GROUP_INSTANCE_ID".into(), s.into()));
        }
    }
    let mut fleet = Fleet::start_with(o).await;
    println!("logs {}", fleet.logs().display());
    let admin = fleet.token("admin").await;
    let alice = fleet.token("alice").await;
    let (_, h) = fleet.post("/houses", &admin, json!({"houseName": "x", "housePrice": 5})).await;
    let id = h["id"].as_i64().unwrap();
    let b1 = book(&fleet, &alice, id, 1).await;
    let t = std::time::Instant::now();
    loop { let (_, b) = fleet.get(&format!("/books/{b1}"), &admin).await; if b["status"] == "CONFIRMED" { break; } tokio::time::sleep(std::time::Duration::from_millis(100)).await; }
    println!("first confirmed after {:?}", t.elapsed());
    fleet.kill("house").await;
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    fleet.restart("house").await;
    let b2 = book(&fleet, &alice, id, 2).await;
    let t = std::time::Instant::now();
    loop { let (_, b) = fleet.get(&format!("/books/{b2}"), &admin).await; if b["status"] == "CONFIRMED" { break; } assert!(t.elapsed().as_secs() < 90, "never confirmed"); tokio::time::sleep(std::time::Duration::from_millis(200)).await; }
    println!("after kill -9 + restart, confirmed after {:?}", t.elapsed());
}

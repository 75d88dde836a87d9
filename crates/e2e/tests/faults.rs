//! The fault suite (SPEC §6, I1–I10): real processes under a stream of bookings and
//! cancels while one thing breaks, each scenario ending with every invariant checked
//! against what the services hold (`e2e::invariants`). Each test prints its figures
//! (requests, statuses, the final ledger); `docs/guarantees.md` records them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::NaiveDate;
use e2e::invariants::{converge, Report};
use e2e::load::{Created, Load, Plan, Tally};
use e2e::{Fleet, Options};
use reqwest::StatusCode;
use serde_json::json;
use testkit::{eventually, Backend};

/// A fleet with three houses that `book` already knows.
struct Scene {
    fleet: Fleet,
    admin: String,
    houses: Vec<i64>,
    /// The bookings made to learn that book knows each house.
    seeded: Vec<Created>,
}

async fn scene(mut options: Options, houses: usize) -> Scene {
    // A broker of its own: a fault in one scenario cannot reach the others.
    options.private_broker = true;
    let fleet = Fleet::start_with(options).await;
    let admin = fleet.token("admin").await;
    let alice = fleet.token("alice").await;
    let mut ids = Vec::new();
    let mut seeded = Vec::new();
    for i in 0..houses {
        let listing =
            json!({"houseName": format!("Fault house {i}"), "housePrice": 1000 * (i as i64 + 1)});
        let (id, b) = fleet
            .house_with_booking(&admin, &alice, listing, "2040-01-01", "2040-01-02")
            .await;
        seeded.push(Created {
            id: b["id"].as_str().unwrap().to_owned(),
            price: b["housePrice"].as_i64().unwrap(),
        });
        ids.push(id);
    }
    Scene {
        fleet,
        admin,
        houses: ids,
        seeded,
    }
}

fn plan(scene: &Scene) -> Plan {
    Plan {
        houses: scene.houses.clone(),
        customers: vec!["alice".into(), "bob".into()],
        workers: 4,
        first_night: NaiveDate::from_ymd_opt(2033, 1, 1).unwrap(),
        spread_days: 60,
        cancel_percent: 20,
        pause: Duration::from_millis(20),
    }
}

async fn start_load(scene: &Scene, plan: Plan) -> Load {
    Load::start(&scene.fleet.gateway(), plan).await
}

/// Waits until the load has had `more` bookings answered `201` since `since`.
async fn bookings_flow(load: &Load, since: usize, more: usize, what: &str) {
    eventually(60, what, || async {
        (load.tally().created.len() >= since + more).then_some(())
    })
    .await;
}

/// Waits until the load has had `more` bookings answered `201` from now on.
async fn more_bookings(load: &Load, more: usize, what: &str) {
    bookings_flow(load, load.tally().created.len(), more, what).await;
}

/// Every request of the load answered `2xx`. A failure's message shows what book logged
/// when it refused a booking: its answer says "payment is unavailable", its log says why
/// (a timeout, an open circuit, a refused connection, a commit past the grace).
fn assert_no_failures(scene: &Scene, tally: &Tally, why: &str) {
    if tally.failed() == 0 {
        return;
    }
    let mut logged = Vec::new();
    if let Ok(dir) = std::fs::read_dir(scene.fleet.logs()) {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("book") && name.ends_with(".log") {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                logged.extend(
                    text.lines()
                        .filter(|l| l.contains("nothing booked") || l.contains("\"WARN\""))
                        .map(|l| format!("{name}: {l}")),
                );
            }
        }
    }
    panic!(
        "{why}: {}: {:?}\nbook's warnings:\n{}",
        tally.summary(),
        tally
            .failures
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        logged.join("\n")
    );
}

/// Stops the load, waits for the invariants, prints the figures.
async fn settle(scene: &Scene, load: Load, name: &str) -> (Tally, Report) {
    let tally = load.stop().await;
    let mut created = scene.seeded.clone();
    created.extend(tally.created.iter().cloned());
    let report = converge(
        &scene.fleet.gateway(),
        &scene.admin,
        &scene.houses,
        &created,
        120,
    )
    .await;
    println!("[{name}] load: {}", tally.summary());
    // Refusals under failure are JSON errors that say nothing of the inside.
    for f in tally.failures.iter().filter(|f| f.status != 0) {
        let e: serde_json::Value =
            serde_json::from_str(&f.body).unwrap_or_else(|_| panic!("not JSON: {f}"));
        let message = e["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no message: {f}"));
        assert!(e["error"].is_string(), "{f}");
        for leak in [
            "sqlx", "panick", "database", "/src/", "rdkafka", "SQL", "reqwest",
        ] {
            assert!(!message.contains(leak), "internal detail in {f}");
        }
    }
    println!("[{name}] invariants hold: {report}");
    if !tally.failures.is_empty() {
        println!(
            "[{name}] first failures: {:#?}",
            &tally.failures[..tally.failures.len().min(5)]
        );
    }
    (tally, report)
}

async fn pause(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn i1_i2_kill_9_of_each_service_in_turn_loses_no_accepted_booking() {
    let mut scene = scene(Options::new(Backend::Sqlite), 3).await;
    let load = start_load(&scene, plan(&scene)).await;
    for service in ["payment", "house", "mypage", "book", "gateway"] {
        more_bookings(&load, 5, "bookings before the kill").await;
        scene.fleet.kill(service).await;
        pause(700).await;
        scene.fleet.restart(service).await;
        more_bookings(&load, 5, &format!("bookings after {service} came back")).await;
    }
    let (tally, report) = settle(&scene, load, "kill -9").await;
    assert!(tally.created.len() >= 50, "{}", tally.summary());
    assert!(report.count("CONFIRMED") > 0);
    scene.fleet.shutdown().await;
}

async fn broker_scene() -> (Scene, Load) {
    let scene = scene(Options::new(Backend::Sqlite), 3).await;
    let load = start_load(&scene, plan(&scene)).await;
    bookings_flow(&load, 0, 10, "bookings before the broker fault").await;
    (scene, load)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn i4_the_broker_restarted_under_load_loses_nothing() {
    let (mut scene, load) = broker_scene().await;
    scene.fleet.restart_broker().await;
    more_bookings(&load, 20, "bookings after the broker restart").await;
    let (tally, report) = settle(&scene, load, "broker restarted").await;
    assert_no_failures(&scene, &tally, "no request needs the broker");
    assert!(report.count("CONFIRMED") > 0);
    scene.fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn i4_the_broker_frozen_then_thawed_loses_nothing() {
    let (scene, load) = broker_scene().await;
    scene.fleet.pause_broker();
    let frozen_at = load.tally().created.len();
    // Bookings do not wait for Kafka: the outbox holds their events.
    bookings_flow(&load, frozen_at, 10, "bookings while the broker is frozen").await;
    pause(5000).await; // long enough for clients' requests to the broker to time out
    scene.fleet.resume_broker();
    more_bookings(&load, 10, "bookings after the thaw").await;
    let (tally, report) = settle(&scene, load, "broker frozen").await;
    assert_no_failures(&scene, &tally, "no request needs the broker");
    assert!(report.count("CONFIRMED") > 0);
    scene.fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn i8_payment_slow_then_stopped_opens_the_circuit_which_closes_by_itself() {
    let mut scene = scene(Options::new(Backend::Postgres), 3).await;
    let load = start_load(&scene, plan(&scene)).await;
    // The seed's scenario: payment answers in 400–620 ms against a 610 ms timeout.
    let (s, f, _) = scene
        .fleet
        .call(
            reqwest::Method::PUT,
            "/faults",
            Some(&scene.admin),
            Some(json!({"delayMinMs": 400, "delayMaxMs": 620})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{f}");
    more_bookings(&load, 20, "bookings while payment is slow").await;
    assert_eq!(
        scene.fleet.metric("book", "housebook_circuit_open").await,
        0.0,
        "slow but mostly in time: the circuit stays closed"
    );

    scene.fleet.stop("payment").await;
    eventually(30, "the circuit to open", || async {
        (scene.fleet.metric("book", "housebook_circuit_open").await == 1.0).then_some(())
    })
    .await;
    let rejected = scene
        .fleet
        .metric("book", "housebook_circuit_rejected_total")
        .await;
    let alice = scene.fleet.token("alice").await;
    let (s, e, h) = scene
        .fleet
        .call(
            reqwest::Method::POST,
            "/books",
            Some(&alice),
            Some(json!({"houseId": scene.houses[0], "checkIn": "2039-01-01", "checkOut": "2039-01-02"})),
        )
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{e}");
    assert!(h.contains_key("retry-after"));
    assert!(
        scene
            .fleet
            .metric("book", "housebook_circuit_rejected_total")
            .await
            > rejected,
        "answered by the open circuit, without calling payment"
    );

    scene.fleet.restart("payment").await; // fault knobs are back to their defaults
    eventually(30, "the circuit to close", || async {
        (scene.fleet.metric("book", "housebook_circuit_open").await == 0.0).then_some(())
    })
    .await;
    more_bookings(&load, 10, "bookings after payment came back").await;
    let (tally, _) = settle(&scene, load, "payment slow, stopped, back").await;
    assert!(
        tally.statuses.get(&503).copied().unwrap_or(0) > 0,
        "{}",
        tally.summary()
    );
    scene.fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn i7_with_house_down_bookings_go_on_and_it_catches_up_once() {
    let mut scene = scene(Options::new(Backend::Sqlite), 3).await;
    let load = start_load(&scene, plan(&scene)).await;
    bookings_flow(&load, 0, 10, "bookings before house stops").await;
    scene.fleet.stop("house").await;
    let stopped_at = load.tally().created.len();
    bookings_flow(&load, stopped_at, 30, "bookings while house is down").await;
    let missed = load.tally().created.len() - stopped_at;
    scene.fleet.restart("house").await;
    more_bookings(&load, 10, "bookings after house came back").await;
    let (tally, report) = settle(&scene, load, "house down").await;
    assert_no_failures(&scene, &tally, "house is not on the booking path");
    assert!(missed >= 30);
    assert_eq!(report.bookings.get("BOOKED"), None);
    scene.fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn i4_every_event_delivered_twice_is_applied_once() {
    let scene = scene(Options::new(Backend::Sqlite), 2).await;
    let load = start_load(&scene, plan(&scene)).await;
    bookings_flow(&load, 0, 20, "bookings").await;
    let (_, before) = settle(&scene, load, "before the replay").await;

    let topics = scene.fleet.topic_names();
    let mut probe = testkit::EventProbe::on(scene.fleet.brokers(), &topics.events());
    let events = probe.settle(3).await;
    assert!(events.len() > 40, "saw {} events", events.len());
    let dups_before = scene
        .fleet
        .metric_sum(
            "mypage",
            "housebook_events_total",
            &["outcome=\"duplicate\""],
        )
        .await;
    for e in &events {
        testkit::inject_to(
            scene.fleet.brokers(),
            &topics.of(&e.event_type),
            &e.correlation_id,
            &e.to_vec().unwrap(),
        )
        .await;
    }
    eventually(60, "mypage to see every event again", || async {
        let dups = scene
            .fleet
            .metric_sum(
                "mypage",
                "housebook_events_total",
                &["outcome=\"duplicate\""],
            )
            .await;
        (dups - dups_before >= events.len() as f64).then_some(())
    })
    .await;
    let after = converge(
        &scene.fleet.gateway(),
        &scene.admin,
        &scene.houses,
        &scene.seeded,
        60,
    )
    .await;
    println!(
        "[replay] {} events delivered again; invariants hold: {after}",
        events.len()
    );
    assert_eq!(after, before, "a second delivery changed nothing");
    scene.fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn i9_two_house_replicas_share_the_work_and_one_leaving_changes_nothing() {
    let mut options = Options::new(Backend::Postgres);
    options.replicas = vec![("house", 2)];
    let mut scene = scene(options, 3).await;
    let load = start_load(&scene, plan(&scene)).await;
    let applied = |instance: &'static str| {
        let fleet = &scene.fleet;
        async move {
            fleet
                .metric_sum(instance, "housebook_events_total", &["outcome=\"applied\""])
                .await
        }
    };
    eventually(60, "both replicas to apply events", || async {
        (applied("house").await > 0.0 && applied("house-2").await > 0.0).then_some(())
    })
    .await;
    scene.fleet.stop("house-2").await;
    let alone = load.tally().created.len();
    bookings_flow(&load, alone, 20, "bookings with one replica").await;
    // The survivor took over every partition: what was booked meanwhile gets decided.
    let meanwhile: Vec<String> = load.tally().created[alone..]
        .iter()
        .map(|c| c.id.clone())
        .collect();
    let admin = scene.admin.clone();
    eventually(
        60,
        "bookings made while house-2 was away to be decided",
        || async {
            for id in &meanwhile {
                let (_, b) = scene.fleet.get(&format!("/books/{id}"), &admin).await;
                if b["status"] == "BOOKED" {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    scene.fleet.restart("house-2").await;
    more_bookings(&load, 20, "bookings after it rejoined").await;
    let (tally, _) = settle(&scene, load, "two house replicas").await;
    assert_no_failures(&scene, &tally, "the survivor took over");
    scene.fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn i10_rolling_restart_of_two_replicas_each_loses_no_request() {
    let mut options = Options::new(Backend::Postgres);
    options.replicas = vec![("book", 2), ("payment", 2), ("house", 2)];
    let mut scene = scene(options, 3).await;
    let load = start_load(&scene, plan(&scene)).await;
    bookings_flow(&load, 0, 10, "bookings before the rollout").await;
    for service in ["book", "payment", "house"] {
        for instance in scene.fleet.replicas(service) {
            scene.fleet.stop(&instance).await;
            scene.fleet.restart(&instance).await;
            // The gateway polls readiness every 100 ms: let it see the new replica.
            pause(500).await;
            more_bookings(&load, 3, &format!("bookings after {instance}")).await;
        }
    }
    let (tally, _) = settle(&scene, load, "rolling restart").await;
    assert_no_failures(
        &scene,
        &tally,
        "readiness drops before a replica stops taking calls",
    );
    scene.fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn i3_customers_racing_for_the_same_nights_never_share_one() {
    let scene = scene(Options::new(Backend::Postgres), 1).await;
    let mut p = plan(&scene);
    p.workers = 12;
    p.spread_days = 4;
    p.cancel_percent = 10;
    p.pause = Duration::ZERO;
    let load = start_load(&scene, p).await;
    bookings_flow(&load, 0, 60, "racing bookings").await;
    let (_, report) = settle(&scene, load, "racing").await;
    assert!(report.count("REJECTED") > 0, "{report}");
    assert!(report.count("CONFIRMED") > 0, "{report}");
    scene.fleet.shutdown().await;
}

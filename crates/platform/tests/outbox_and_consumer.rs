//! The outbox relay and the consumer loop on the real broker and real databases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use events::{Envelope, HouseRegistered};
use platform::consumer::{ConsumerLoop, EventHandler, HandleError, Handled};
use platform::db::Db;
use platform::health::Health;
use platform::metrics::{EventOutcome, Metrics};
use platform::outbox::{relay, Outbox};
use platform::settings::KafkaSettings;
use platform::shutdown::CancellationToken;
use testkit::{inject, on_both_backends, Backend, EventProbe, World};

fn registered(id: i64) -> HouseRegistered {
    HouseRegistered {
        house_id: id,
        house_name: format!("house {id}"),
        house_price: 10,
    }
}

async fn unpublished(db: &Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(db.pool())
        .await
        .unwrap()
}

async fn the_outbox_publishes_what_commits_and_nothing_that_rolled_back(backend: Backend) {
    let world = World::new(backend);
    let settings = world.settings("outbox").await;
    platform::kafka::ensure_topics(&settings.kafka)
        .await
        .unwrap();
    let db = Db::connect(&settings.database, &[]).await.unwrap();
    let outbox = Outbox::new(&settings.kafka);

    let mut tx = db.pool().begin().await.unwrap();
    outbox.enqueue(&mut tx, &registered(1)).await.unwrap();
    tx.rollback().await.unwrap();
    let mut tx = db.pool().begin().await.unwrap();
    outbox.enqueue(&mut tx, &registered(2)).await.unwrap();
    tx.commit().await.unwrap();
    // Committed while no relay runs (a crash before publishing): it waits in the table.
    assert_eq!(unpublished(&db).await, 1);

    let stop = CancellationToken::new();
    let producer = platform::kafka::producer(&settings.kafka).unwrap();
    let metrics = Metrics::new("outbox").unwrap();
    let task = tokio::spawn(relay(
        db.clone(),
        outbox.clone(),
        producer,
        metrics,
        KafkaSettings {
            relay_poll_ms: 100,
            ..settings.kafka.clone()
        },
        stop.clone(),
    ));
    let mut tx = db.pool().begin().await.unwrap();
    outbox.enqueue(&mut tx, &registered(3)).await.unwrap();
    // An event of another context in the same transaction travels on that context's topic.
    outbox
        .enqueue(
            &mut tx,
            &events::BookConfirmed {
                book_id: "b-4".into(),
                house_id: 3,
            },
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    outbox.notify();

    let mut probe = world.probe();
    probe
        .wait_until(20, "houses 2 and 3, booking 4", |e| e.len() >= 3)
        .await;
    let seen = probe.settle(2).await;
    // Different keys land on different partitions: only the set is guaranteed, not the order.
    let mut ids: Vec<_> = seen.iter().map(|e| e.correlation_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        vec!["b-4", "house-2", "house-3"],
        "each committed event once, never the rolled-back one"
    );
    for m in probe.raw() {
        let event_type = m.header("eventType").unwrap();
        assert_eq!(m.topic, world.topic_of(event_type), "{event_type}");
    }
    assert_eq!(
        probe.raw()[..]
            .iter()
            .filter(|m| m.topic.ends_with("housebook.booking.events"))
            .count(),
        1
    );
    testkit::eventually(10, "rows marked published", || async {
        (unpublished(&db).await == 0).then_some(())
    })
    .await;
    stop.cancel();
    task.await.unwrap();
}

/// Fails transiently `fail_first` times per event, then applies it.
struct Flaky {
    fail_first: u32,
    calls: AtomicU32,
}

#[async_trait]
impl EventHandler for Flaky {
    fn handles(&self) -> &'static [&'static str] {
        &["HouseRegistered"]
    }
    async fn handle(&self, _: &Envelope) -> Result<Handled, HandleError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n < self.fail_first {
            Err(HandleError::Transient(anyhow::anyhow!(
                "database unavailable (attempt {n})"
            )))
        } else {
            Ok(Handled::Applied)
        }
    }
}

async fn run_loop(
    world: &World,
    handler: Arc<Flaky>,
    db: &Db,
    metrics: &Metrics,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let settings = world.settings("consumer").await;
    let mut kafka = settings.kafka.clone();
    kafka.group_id = format!("{}consumer", world.topic_prefix);
    kafka.max_attempts = 4;
    platform::kafka::ensure_topics(&kafka).await.unwrap();
    let lp = ConsumerLoop {
        producer: platform::kafka::producer(&kafka).unwrap(),
        settings: kafka,
        handler,
        metrics: metrics.clone(),
        health: Health::new(Some(std::sync::Arc::new(db.clone()))),
    };
    let stop = CancellationToken::new();
    let task = tokio::spawn(lp.run(stop.clone()));
    (stop, task)
}

async fn transient_failures_are_retried_then_parked_and_offsets_survive_a_restart(
    backend: Backend,
) {
    let world = World::new(backend);
    let db = Db::connect(&world.settings("consumer").await.database, &[])
        .await
        .unwrap();
    platform::kafka::ensure_topics(&world.settings("x").await.kafka)
        .await
        .unwrap();
    let metrics = Metrics::new("consumer").unwrap();

    // Fails twice, then succeeds: applied once, nothing parked.
    let handler = Arc::new(Flaky {
        fail_first: 2,
        calls: AtomicU32::new(0),
    });
    let (stop, task) = run_loop(&world, handler.clone(), &db, &metrics).await;
    world.publish(&Envelope::new(&registered(1)).unwrap()).await;
    testkit::eventually(30, "applied after retries", || async {
        (metrics.event_count("HouseRegistered", EventOutcome::Applied) == 1).then_some(())
    })
    .await;
    assert_eq!(handler.calls.load(Ordering::SeqCst), 3);
    stop.cancel();
    task.await.unwrap().unwrap();

    // A restarted loop in the same group does not see it again: its offset was committed.
    let always = Arc::new(Flaky {
        fail_first: u32::MAX,
        calls: AtomicU32::new(0),
    });
    let (stop, task) = run_loop(&world, always.clone(), &db, &metrics).await;
    let mut dlq = EventProbe::new(&[world.dead_letter_topic()]);
    world.publish(&Envelope::new(&registered(2)).unwrap()).await;
    let parked = dlq.wait_raw(30, 1).await;
    assert_eq!(
        always.calls.load(Ordering::SeqCst),
        4,
        "bounded: max_attempts calls, then parked (the first event was not redelivered)"
    );
    let reason = parked[0].header("dlq-reason").unwrap();
    assert!(reason.contains("gave up after 4 attempts"), "{reason}");
    let original = Envelope::from_slice(&parked[0].payload).unwrap();
    assert_eq!(
        original.correlation_id, "house-2",
        "the original event is kept"
    );
    assert_eq!(
        metrics.event_count("HouseRegistered", EventOutcome::DeadLettered),
        1
    );

    // It reads only the topics of the contexts whose events it handles: an unreadable
    // message on the booking topic never reaches it, one on the house topic is parked.
    let (booking, house) = (world.topic_of("Booked"), world.topic_of("HouseRegistered"));
    inject(&booking, "k", b"not for this consumer").await;
    inject(&house, "k", b"unreadable").await;
    dlq.wait_raw(30, 2).await;
    let parked = dlq.settle(3).await;
    assert!(parked.len() <= 1, "only the first one is an envelope");
    let sources: Vec<_> = dlq
        .raw()
        .iter()
        .map(|m| m.header("dlq-source-topic"))
        .collect();
    assert_eq!(sources, [Some(house.as_str()), Some(house.as_str())]);
    stop.cancel();
    task.await.unwrap().unwrap();
    db.close().await;
}

/// A caller dropped while its `BEGIN` is in flight (a client that hung up mid-request)
/// leaves no transaction open on the pooled connection: the next statements on it are
/// their own transactions, committed at once, and the next `BEGIN` works (sqlx 0.8.6
/// leaks one on both backends; see `Db::begin`).
async fn a_begin_cancelled_in_flight_leaves_no_transaction_open(backend: Backend) {
    const CUTS: u64 = 600;
    let world = World::new(backend);
    let mut settings = world.settings("begin").await;
    settings.database.max_connections = Some(1); // every call gets the same connection
    let db = Db::connect(&settings.database, &[]).await.unwrap();
    let mut leaks = 0;
    for i in 0..CUTS {
        // Cut short at every point of the round trip, from before the send to after it.
        let cut = Duration::from_micros(i % 150 * 2);
        let _ = tokio::time::timeout(cut, db.begin()).await;
        let leaked = match backend {
            // Two statements in autocommit are two transactions, with two ids; inside
            // one transaction left open they share it.
            Backend::Postgres => {
                let xid = || async {
                    sqlx::query_scalar::<_, i64>("SELECT CAST(txid_current() AS BIGINT)")
                        .fetch_one(db.pool())
                        .await
                        .unwrap()
                };
                xid().await == xid().await
            }
            // A connection left counting a transaction refuses the next BEGIN.
            Backend::Sqlite => match db.begin().await {
                Ok(tx) => {
                    tx.commit().await.unwrap();
                    false
                }
                Err(_) => true,
            },
        };
        if leaked {
            leaks += 1;
        }
    }
    println!("[begin] {leaks} of {CUTS} cancelled BEGINs left a transaction open");
    assert_eq!(leaks, 0, "statements ran inside a transaction left open");
    db.close().await;
}

/// Two replicas' relays on one PostgreSQL outbox (a rolling restart, or two book pods):
/// every booking's events still reach the topic in the order they were committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_on_one_outbox_keep_each_bookings_events_in_order() {
    let world = World::new(Backend::Postgres);
    let settings = world.settings("outbox").await;
    platform::kafka::ensure_topics(&settings.kafka)
        .await
        .unwrap();
    let db = Db::connect(&settings.database, &[]).await.unwrap();
    let outbox = Outbox::new(&settings.kafka);
    let stop = CancellationToken::new();
    let relays: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(relay(
                db.clone(),
                outbox.clone(),
                platform::kafka::producer(&settings.kafka).unwrap(),
                Metrics::new("outbox").unwrap(),
                KafkaSettings {
                    relay_poll_ms: 5,
                    ..settings.kafka.clone()
                },
                stop.clone(),
            ))
        })
        .collect();
    const BOOKINGS: i64 = 6;
    const EACH: i64 = 60;
    for seq in 0..EACH {
        for b in 0..BOOKINGS {
            let mut tx = db.pool().begin().await.unwrap();
            let event = events::BookConfirmed {
                book_id: format!("b-{b}"),
                house_id: seq, // the order it was committed in
            };
            outbox.enqueue(&mut tx, &event).await.unwrap();
            tx.commit().await.unwrap();
            outbox.notify();
        }
    }
    let mut probe = world.probe();
    let seen = probe
        .wait_until(60, "every event", |e| e.len() >= (BOOKINGS * EACH) as usize)
        .await;
    for b in 0..BOOKINGS {
        let order: Vec<i64> = seen
            .iter()
            .filter(|e| e.correlation_id == format!("b-{b}"))
            .map(|e| e.payload["houseId"].as_i64().unwrap())
            .collect();
        assert_eq!(order, (0..EACH).collect::<Vec<_>>(), "booking b-{b}");
    }
    stop.cancel();
    for r in relays {
        r.await.unwrap();
    }
}

on_both_backends!(
    a_begin_cancelled_in_flight_leaves_no_transaction_open,
    the_outbox_publishes_what_commits_and_nothing_that_rolled_back,
    transient_failures_are_retried_then_parked_and_offsets_survive_a_restart,
);

/// Issue 18: a service reaches a managed PostgreSQL over TLS when its URL asks
/// (`sslmode=require`, or `verify-full` with `sslrootcert`), and only then. The test server either
/// speaks TLS — then the session is encrypted — or it does not, and then the client
/// refuses to go on in the clear; a build without TLS would fail either way.
#[tokio::test]
async fn the_database_is_reached_over_tls_when_the_url_asks() {
    use secrecy::SecretString;
    let url = testkit::fresh_database(Backend::Postgres).await;
    let plain = platform::settings::DatabaseSettings {
        url: SecretString::from(url.clone()),
        max_connections: Some(1),
    };
    let db = Db::connect(&plain, &[]).await.unwrap();
    let server_tls: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(db.pool())
        .await
        .unwrap();
    // Without an sslmode, no TLS (sqlx alone would try it: `prefer`).
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert!(!encrypted, "a URL without sslmode was encrypted");
    db.close().await;
    let tls = platform::settings::DatabaseSettings {
        url: SecretString::from(format!("{url}?sslmode=require")),
        max_connections: Some(1),
    };
    match (server_tls.as_str(), Db::connect(&tls, &[]).await) {
        ("on", Ok(db)) => {
            let encrypted: bool =
                sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                    .fetch_one(db.pool())
                    .await
                    .unwrap();
            assert!(
                encrypted,
                "sslmode=require, yet the session is in the clear"
            );
            db.close().await;
        }
        ("off", Err(e)) => {
            let e = format!("{e:#}").to_lowercase();
            assert!(e.contains("tls") || e.contains("ssl"), "{e}");
        }
        (server, other) => panic!("server ssl={server}: {:?}", other.map(|_| "connected")),
    }
}

//! The outbox relay alone: `n` events committed into a fresh outbox while no relay runs
//! (a backlog, as after a burst), then one relay publishes them to the broker; the figure
//! is events published per second until the outbox is empty.

use std::time::{Duration, Instant};

use events::HouseRegistered;
use platform::db::Db;
use platform::metrics::Metrics;
use platform::outbox::{relay, Outbox};
use platform::settings::{DatabaseSettings, KafkaSettings};
use platform::shutdown::CancellationToken;
use testkit::Backend;

/// Publishes a backlog of `n` events; returns events per second.
pub async fn run(backend: Backend, brokers: &str, n: usize) -> anyhow::Result<f64> {
    let kafka = KafkaSettings {
        brokers: brokers.to_owned(),
        topic_prefix: testkit::unique("relay-bench") + ".",
        ..Default::default()
    };
    platform::kafka::ensure_topics(&kafka).await?;
    let db = Db::connect(
        &DatabaseSettings {
            url: platform::db::url(testkit::fresh_database(backend).await),
            max_connections: None,
        },
        &[],
    )
    .await?;
    let outbox = Outbox::new(&kafka);
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut tx = db.begin().await?;
        for i in chunk {
            let e = HouseRegistered {
                house_id: *i as i64 + 1,
                house_name: format!("house {i}"),
                house_price: 100_000,
            };
            outbox.enqueue(&mut tx, &e).await?;
        }
        tx.commit().await?;
    }
    let stop = CancellationToken::new();
    let producer = platform::kafka::producer(&kafka)?;
    let started = Instant::now();
    let task = tokio::spawn(relay(
        db.clone(),
        outbox,
        producer,
        Metrics::new("relay-bench")?,
        KafkaSettings {
            relay_poll_ms: 100,
            ..kafka.clone()
        },
        stop.clone(),
    ));
    loop {
        let left: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(db.pool())
                .await?;
        if left == 0 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "relay stalled with {left} left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    stop.cancel();
    task.await?;
    Ok(rate)
}

//! The transactional outbox.
//!
//! A service writes its event with [`Outbox::enqueue`] inside the transaction that makes the
//! state change, so the event exists if and only if the change committed (I4). The
//! [`relay`] publishes unpublished rows in order, a batch at a time (one produce request per
//! partition), and marks the batch published in one statement only after the broker
//! acknowledged it; a crash in between publishes it again, which consumers absorb by
//! deduplicating on `eventId`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use events::{Envelope, Event};
use futures::future::join_all;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use sqlx::{AnyConnection, Row};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::db::{now_text, Backend, Db};
use crate::metrics::Metrics;
use crate::settings::KafkaSettings;

/// Writes events into the outbox and wakes the relay.
#[derive(Clone, Debug)]
pub struct Outbox {
    /// Put in front of each context's topic name (tests give each run its own).
    topic_prefix: String,
    wake: Arc<Notify>,
}

const BATCH: i64 = 256;

/// A transaction whose events go into the outbox: they commit with the state it writes,
/// and committing wakes the relay when it published any. A unit of work's transaction in
/// every service that publishes.
pub struct OutboxTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    outbox: Outbox,
    published: bool,
}

impl OutboxTx {
    /// Begins a transaction on `db` publishing into `outbox`.
    pub async fn begin(db: &Db, outbox: &Outbox) -> anyhow::Result<Self> {
        Ok(Self {
            tx: db.begin().await?,
            outbox: outbox.clone(),
            published: false,
        })
    }

    /// The transaction's connection, for the state it writes.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// Adds events of the catalog, in order, with one statement.
    pub async fn publish<'a>(
        &mut self,
        events: impl IntoIterator<Item = &'a events::DomainEvent>,
    ) -> anyhow::Result<()> {
        let envelopes = events
            .into_iter()
            .map(Outbox::envelope_of)
            .collect::<anyhow::Result<Vec<_>>>()?;
        self.outbox.insert(&mut self.tx, &envelopes).await?;
        self.published |= !envelopes.is_empty();
        Ok(())
    }

    /// Commits, then wakes the relay if anything was published.
    pub async fn commit(self) -> anyhow::Result<()> {
        self.tx.commit().await?;
        if self.published {
            self.outbox.notify();
        }
        Ok(())
    }
}

impl Outbox {
    /// An outbox that publishes each event on the topic of the context that produces it
    /// ([`KafkaSettings::topic_of`]).
    pub fn new(settings: &KafkaSettings) -> Self {
        Self {
            topic_prefix: settings.topic_prefix.clone(),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Adds an event in the caller's transaction; returns its envelope.
    pub async fn enqueue<E: Event>(
        &self,
        conn: &mut AnyConnection,
        event: &E,
    ) -> anyhow::Result<Envelope> {
        let env = Self::envelope(event)?;
        self.insert(conn, std::slice::from_ref(&env)).await?;
        Ok(env)
    }

    /// An event's envelope, in the trace of the event being applied (if any): what
    /// [`Outbox::insert`] writes.
    pub fn envelope<E: Event>(event: &E) -> anyhow::Result<Envelope> {
        Ok(Self::traced(Envelope::new(event)?))
    }

    /// [`Self::envelope`] of any event of the catalog.
    pub fn envelope_of(event: &events::DomainEvent) -> anyhow::Result<Envelope> {
        Ok(Self::traced(event.envelope()?))
    }

    fn traced(mut env: Envelope) -> Envelope {
        env.traceparent = crate::trace::for_event(&env.correlation_id);
        env
    }

    /// Adds events in the caller's transaction, in order, with one statement (a batch of
    /// consumed events that causes many writes them in one round trip).
    pub async fn insert(
        &self,
        conn: &mut AnyConnection,
        envelopes: &[Envelope],
    ) -> anyhow::Result<()> {
        for chunk in envelopes.chunks(crate::db::rows_per_statement(6)) {
            let values = crate::db::values(chunk.len(), 6);
            let sql = format!(
                "INSERT INTO outbox (event_id, event_type, topic, msg_key, payload, created_at) VALUES {values}"
            );
            let mut q = sqlx::query(&sql);
            let now = now_text();
            for env in chunk {
                let payload = String::from_utf8(env.to_vec()?)?;
                let context = events::Context::of(&env.event_type).ok_or_else(|| {
                    anyhow::anyhow!("{} is not an event of the catalog", env.event_type)
                })?;
                q = q
                    .bind(env.event_id.to_string())
                    .bind(env.event_type.clone())
                    .bind(format!("{}{}", self.topic_prefix, context.topic()))
                    .bind(env.correlation_id.clone())
                    .bind(payload)
                    .bind(now.clone());
            }
            q.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Tells the relay there is something to publish (call after commit).
    pub fn notify(&self) {
        self.wake.notify_one();
    }
}

struct Row_ {
    id: i64,
    event_type: String,
    topic: String,
    key: String,
    payload: String,
}

/// Publishes the outbox until `stop` is cancelled, then publishes what is left. Looks for
/// rows every `kafka.relay_poll_ms` when nothing woke it. A producer that reports a fatal
/// error (the idempotent producer's state is lost for good, e.g. a sequence gap the broker
/// refuses) is replaced by a new one from `kafka`: the rows it did not publish go out again.
pub async fn relay(
    db: Db,
    outbox: Outbox,
    mut producer: FutureProducer,
    metrics: Metrics,
    kafka: KafkaSettings,
    stop: CancellationToken,
) {
    let poll = Duration::from_millis(kafka.relay_poll_ms);
    let mut counted = Instant::now();
    loop {
        // A batch waits for the broker's acknowledgements (up to the message timeout);
        // shutdown does not wait for a slow broker: unmarked rows go out again later.
        let published = tokio::select! {
            () = stop.cancelled() => break,
            r = publish_batch(&db, &producer, &metrics, &mut counted) => r,
        };
        match published {
            Ok(Some(n)) if n as i64 == BATCH => continue,
            Ok(Some(_)) => {}
            Ok(None) => {
                // Another replica is relaying: its batch is short; try again soon.
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(25)) => continue,
                }
            }
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "outbox relay: publish failed, will retry"
                );
                if let Some((code, reason)) = producer.client().fatal_error() {
                    tracing::error!(
                        ?code,
                        reason,
                        "outbox relay: the producer failed for good; starting a new one"
                    );
                    match crate::kafka::producer(&kafka) {
                        Ok(p) => producer = p,
                        Err(e) => tracing::error!(
                            error = format!("{e:#}"),
                            "outbox relay: no new producer"
                        ),
                    }
                }
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(500)) => continue,
                }
            }
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = outbox.wake.notified() => {}
            () = tokio::time::sleep(poll) => {}
        }
    }
    // Final pass, bounded: what committed before shutdown goes out now rather than at the
    // next start (or from another replica), unless the broker is too slow to take it.
    let final_pass = async {
        loop {
            match publish_batch(&db, &producer, &metrics, &mut counted).await {
                // Nothing left, or another replica is publishing it.
                Ok(Some(0) | None) => break,
                Ok(Some(_)) => {}
                Err(e) => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "outbox relay: final publish failed"
                    );
                    break;
                }
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(3), final_pass)
        .await
        .is_err()
    {
        tracing::warn!("outbox relay: the broker is slow; what is left goes out at the next start");
    }
}

/// Which advisory lock makes one relay at a time publish a PostgreSQL outbox.
const RELAY_LOCK: i64 = 0x686f_7573_6562;

/// Publishes one batch; returns how many rows were published, or `None` when another
/// replica's relay is publishing this outbox now.
async fn publish_batch(
    db: &Db,
    producer: &FutureProducer,
    metrics: &Metrics,
    counted: &mut Instant,
) -> anyhow::Result<Option<usize>> {
    // On PostgreSQL, replicas share the outbox and one relay at a time publishes it (a
    // transaction-scoped advisory lock, held until the rows are marked published). When
    // replicas claimed disjoint rows and published them side by side, a booking's later
    // event could overtake its earlier one (found by the rolling-restart fault test: a
    // BookCanceled before its BookConfirmed left mypage saying CONFIRMED). A SQLite file
    // has one writer at a time anyway, and a row sent twice is dropped by its consumers.
    let mut tx = match db.backend() {
        Backend::Postgres => {
            let mut tx = db.begin().await?;
            let ours: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                .bind(RELAY_LOCK)
                .fetch_one(&mut *tx)
                .await?;
            if !ours {
                return Ok(None);
            }
            Some(tx)
        }
        Backend::Sqlite => None,
    };
    let select = sqlx::query(
        "SELECT id, event_type, topic, msg_key, payload FROM outbox \
         WHERE published_at IS NULL ORDER BY id LIMIT $1",
    )
    .bind(BATCH);
    let rows: Vec<Row_> = match tx.as_mut() {
        Some(tx) => select.fetch_all(&mut **tx).await?,
        None => select.fetch_all(db.pool()).await?,
    }
    .into_iter()
    .map(|r| {
        Ok(Row_ {
            id: r.try_get("id")?,
            event_type: r.try_get("event_type")?,
            topic: r.try_get("topic")?,
            key: r.try_get("msg_key")?,
            payload: r.try_get("payload")?,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;
    if rows.is_empty() {
        metrics.set_outbox_backlog(0);
        return Ok(Some(0));
    }
    let traces: Vec<Option<String>> = rows.iter().map(|r| traceparent_in(&r.payload)).collect();
    let sends = rows.iter().zip(&traces).map(|(row, trace)| {
        let mut headers = OwnedHeaders::new().insert(Header {
            key: "eventType",
            value: Some(&row.event_type),
        });
        if let Some(tp) = trace {
            headers = headers.insert(Header {
                key: crate::trace::TRACEPARENT,
                value: Some(tp),
            });
        }
        let record = FutureRecord::to(&row.topic)
            .key(&row.key)
            .payload(&row.payload)
            .headers(headers);
        producer.send(record, Duration::from_secs(15))
    });
    let results = join_all(sends).await;
    let mut published = Vec::with_capacity(rows.len());
    // How many went to each topic (a batch holds few: one per context at most).
    let mut per_topic: Vec<(&str, u64)> = Vec::new();
    let mut failure = None;
    for (row, result) in rows.iter().zip(results) {
        match result {
            Ok(_) => {
                published.push(row.id);
                match per_topic.iter_mut().find(|(t, _)| *t == row.topic) {
                    Some((_, n)) => *n += 1,
                    None => per_topic.push((&row.topic, 1)),
                }
            }
            Err((e, _)) => failure = Some(e),
        }
    }
    if !published.is_empty() {
        let placeholders = crate::db::placeholders(2, published.len());
        let sql = format!("UPDATE outbox SET published_at = $1 WHERE id IN ({placeholders})");
        let mut q = sqlx::query(&sql).bind(now_text());
        for id in &published {
            q = q.bind(*id);
        }
        match tx.as_mut() {
            Some(tx) => q.execute(&mut **tx).await?,
            None => q.execute(db.pool()).await?,
        };
        for (topic, n) in per_topic {
            metrics.outbox_published(topic, n);
        }
    }
    if let Some(tx) = tx {
        tx.commit().await?;
    }
    // Counting is a query of its own on the service's busy connection: after a full batch
    // (a backlog worth knowing), else at most once a second.
    if rows.len() as i64 == BATCH || counted.elapsed() >= Duration::from_secs(1) {
        let backlog: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(db.pool())
                .await?;
        metrics.set_outbox_backlog(backlog);
        *counted = Instant::now();
    }
    match failure {
        Some(e) => Err(anyhow::Error::new(e).context("broker did not acknowledge")),
        None => Ok(Some(published.len())),
    }
}

/// The trace context an outbox row's envelope carries, for the Kafka header.
fn traceparent_in(payload: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Trace {
        traceparent: Option<String>,
    }
    serde_json::from_str::<Trace>(payload).ok()?.traceparent
}

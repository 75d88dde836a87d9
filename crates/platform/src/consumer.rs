//! The idempotent consumer loop.
//!
//! One consumer group per service, subscribed to the topics of the contexts whose events
//! it handles ([`KafkaSettings::topics_for`]). For each message: read the envelope; skip
//! types the service does not handle; otherwise call the handler, which applies its change and
//! [`claim`]s the `eventId` in the inbox in one transaction (a duplicate is skipped). The
//! messages that have already arrived are taken together, and a handler that can apply a
//! batch in one transaction does ([`EventHandler::handle_batch`]). Only then are the
//! offsets stored; stored offsets are committed in the background and
//! synchronously on shutdown, so the broker never holds an offset past work that is not
//! durable. A failing event is retried with backoff a bounded number of times and then
//! parked on the dead-letter topic with the reason; an unreadable one is parked at once.
//! Nothing here panics, and no message can stall its partition forever.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use events::{Envelope, EventKey};
use futures::FutureExt as _;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Message};
use sqlx::AnyConnection;
use tokio_util::sync::CancellationToken;

use crate::db::now_text;
use crate::health::Health;
use crate::metrics::{EventOutcome, Metrics};
use crate::settings::KafkaSettings;

/// What a handler did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Its change committed.
    Applied,
    /// Its `eventId` was already in the inbox; nothing changed.
    Duplicate,
}

/// Why a handler failed.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Retrying cannot help (the payload does not fit the contract): park it now.
    #[error("permanent: {0}")]
    Permanent(String),
    /// Retrying may help (the database was unavailable).
    #[error("transient: {0:#}")]
    Transient(#[from] anyhow::Error),
}

/// A service's inbound event adapter.
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// The event types it consumes; every other type is skipped.
    fn handles(&self) -> &'static [&'static str];
    /// Applies one event effectively once.
    async fn handle(&self, envelope: &Envelope) -> Result<Handled, HandleError>;
    /// Applies several events (all of a type it handles) in order, effectively once each,
    /// all or none — one transaction instead of one each. `None`: this adapter applies one
    /// event at a time. On an error nothing of the batch may have been applied; the loop
    /// then handles its events one by one, with the usual retries and dead-lettering.
    async fn handle_batch(
        &self,
        _envelopes: &[Envelope],
    ) -> Option<Result<Vec<Handled>, HandleError>> {
        None
    }
}

/// An inbound event adapter whose store applies a batch of events in one transaction: it
/// reads each envelope into what its domain consumes, and applies a slice of those, all
/// or none. Every `BatchHandler` is an [`EventHandler`] (one event is a batch of one).
#[async_trait]
pub trait BatchHandler: Send + Sync + 'static {
    /// What one event means to the domain.
    type Item: Send + Sync + 'static;
    /// The event types it consumes; every other type is skipped.
    fn handles(&self) -> &'static [&'static str];
    /// Reads one envelope; an event that does not fit the contract is [`HandleError::Permanent`].
    fn read(&self, envelope: &Envelope) -> Result<Self::Item, HandleError>;
    /// Applies items in order, effectively once each, in one transaction; one outcome each.
    async fn apply(&self, items: &[Self::Item]) -> anyhow::Result<Vec<Handled>>;
}

#[async_trait]
impl<B: BatchHandler> EventHandler for B {
    fn handles(&self) -> &'static [&'static str] {
        BatchHandler::handles(self)
    }

    async fn handle(&self, envelope: &Envelope) -> Result<Handled, HandleError> {
        let one = [self.read(envelope)?];
        self.apply(&one)
            .await?
            .pop()
            .ok_or_else(|| HandleError::Transient(anyhow::anyhow!("the store applied nothing")))
    }

    async fn handle_batch(
        &self,
        envelopes: &[Envelope],
    ) -> Option<Result<Vec<Handled>, HandleError>> {
        let items: Result<Vec<_>, _> = envelopes.iter().map(|e| self.read(e)).collect();
        Some(match items {
            Ok(items) => self.apply(&items).await.map_err(HandleError::Transient),
            Err(e) => Err(e),
        })
    }
}

/// The most messages handed to [`EventHandler::handle_batch`] at once: what has already
/// arrived, never waiting for more.
pub const MAX_BATCH: usize = 256;

/// Records `eventId` in the inbox inside the handler's transaction. Returns `false` if it
/// was already there: the caller must then roll back and report [`Handled::Duplicate`].
pub async fn claim(conn: &mut AnyConnection, key: &EventKey) -> Result<bool, sqlx::Error> {
    Ok(claim_all(conn, &[key])
        .await?
        .first()
        .copied()
        .unwrap_or(false))
}

/// [`claim`] for many events in one statement: records each `eventId` not yet in the inbox
/// and returns, for each key in order, whether it was claimed now. A key that occurs twice
/// is claimed at most once (its first occurrence).
pub async fn claim_all(
    conn: &mut AnyConnection,
    keys: &[&EventKey],
) -> Result<Vec<bool>, sqlx::Error> {
    let mut first = std::collections::HashSet::new();
    let fresh: Vec<&EventKey> = keys
        .iter()
        .copied()
        .filter(|k| first.insert(k.event_id.as_str()))
        .collect();
    let mut claimed = std::collections::HashSet::new();
    let now = now_text();
    for chunk in fresh.chunks(crate::db::rows_per_statement(3)) {
        let values = crate::db::values(chunk.len(), 3);
        let sql = format!(
            "INSERT INTO inbox (event_id, event_type, handled_at) VALUES {values} \
             ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        );
        let mut q = sqlx::query_scalar::<_, String>(&sql);
        for k in chunk {
            q = q
                .bind(k.event_id.clone())
                .bind(k.event_type.clone())
                .bind(now.clone());
        }
        claimed.extend(q.fetch_all(&mut *conn).await?);
    }
    // The first occurrence of a claimed id takes the claim; removing it leaves the rest
    // duplicates.
    Ok(keys
        .iter()
        .map(|k| claimed.remove(k.event_id.as_str()))
        .collect())
}

/// Feeds consumer lag from librdkafka's statistics into the metrics, and notes when the
/// group first gives this member partitions.
struct LagContext {
    metrics: Metrics,
    assigned: Arc<AtomicBool>,
}

impl ClientContext for LagContext {
    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    self.metrics
                        .set_consumer_lag(topic, *partition, p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for LagContext {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            if partitions.count() > 0 {
                self.assigned.store(true, Ordering::Relaxed);
            }
        }
    }
}

/// How one membership of the group ended.
enum Ended {
    /// Shutdown: stop for good.
    Stop,
    /// Never given a partition: leave and join again.
    Rejoin,
}

/// Everything the loop needs.
pub struct ConsumerLoop {
    /// Broker, group and retry settings.
    pub settings: KafkaSettings,
    /// The service's adapter.
    pub handler: Arc<dyn EventHandler>,
    /// Where dead letters are sent.
    pub producer: FutureProducer,
    /// Metrics.
    pub metrics: Metrics,
    /// Readiness.
    pub health: Health,
}

impl ConsumerLoop {
    /// Consumes until `stop` is cancelled, then commits the stored offsets and leaves.
    ///
    /// With `rejoin_unassigned_ms` set, a member that the group has not given a single
    /// partition that long after joining leaves and joins again as a new member (Tansu
    /// 0.6.0 can leave a newcomer unassigned for good after a member was killed; a fresh
    /// join is assigned). Off by default: with more replicas than partitions, an idle
    /// member is normal.
    pub async fn run(self, stop: CancellationToken) -> anyhow::Result<()> {
        loop {
            let assigned = Arc::new(AtomicBool::new(false));
            let mut config = crate::kafka::client_config(&self.settings)?;
            config
                .set("group.id", &self.settings.group_id)
                .set("enable.auto.commit", "true")
                .set("auto.commit.interval.ms", "500")
                .set("enable.auto.offset.store", "false")
                .set("auto.offset.reset", "earliest")
                .set("session.timeout.ms", "10000")
                .set("heartbeat.interval.ms", "1000")
                .set("statistics.interval.ms", "5000");
            if let Some(ms) = self.settings.fetch_wait_ms {
                config.set("fetch.wait.max.ms", ms.to_string());
            }
            let consumer: StreamConsumer<LagContext> = config.create_with_context(LagContext {
                metrics: self.metrics.clone(),
                assigned: assigned.clone(),
            })?;
            // Only the topics of the contexts whose events it handles.
            let topics = self.settings.topics_for(self.handler.handles());
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            consumer.subscribe(&names)?;
            self.health.set_consumer_running(true);
            tracing::info!(topics = %names.join(","), group = %self.settings.group_id, "consumer started");
            let ended = self.consume(&consumer, &assigned, &stop).await;
            if let Ended::Rejoin = ended {
                tracing::warn!(
                    after_ms = self.settings.rejoin_unassigned_ms,
                    "consumer: no partition assigned; joining the group again"
                );
            }
            Self::leave(consumer).await;
            if let Ended::Stop = ended {
                break;
            }
        }
        self.health.set_consumer_running(false);
        Ok(())
    }

    async fn consume(
        &self,
        consumer: &StreamConsumer<LagContext>,
        assigned: &AtomicBool,
        stop: &CancellationToken,
    ) -> Ended {
        let joined = tokio::time::Instant::now();
        let patience = Duration::from_millis(self.settings.rejoin_unassigned_ms);
        let mut check = tokio::time::interval(Duration::from_secs(1));
        loop {
            let message = tokio::select! {
                () = stop.cancelled() => return Ended::Stop,
                _ = check.tick(), if !patience.is_zero() => {
                    if !assigned.load(Ordering::Relaxed) && joined.elapsed() > patience {
                        return Ended::Rejoin;
                    }
                    continue;
                }
                m = consumer.recv() => m,
            };
            match message {
                Err(e) => {
                    tracing::warn!(error = %e, "consumer: receive failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(m) => {
                    // With it, whatever else has arrived already (never waiting for more).
                    let mut batch = vec![m];
                    while batch.len() < MAX_BATCH {
                        match consumer.recv().now_or_never() {
                            Some(Ok(m)) => batch.push(m),
                            Some(Err(e)) => {
                                tracing::warn!(error = %e, "consumer: receive failed");
                                break;
                            }
                            None => break,
                        }
                    }
                    if !self.process_batch(&batch, stop).await {
                        return Ended::Stop; // interrupted by shutdown before the work was done
                    }
                    for m in &batch {
                        if let Err(e) = consumer.store_offset_from_message(m) {
                            tracing::warn!(error = %e, "consumer: could not store offset");
                        }
                    }
                }
            }
        }
    }

    /// Commits what was stored and leaves the group.
    async fn leave(consumer: StreamConsumer<LagContext>) {
        // The final commit and leaving the group block on the broker: off the async
        // threads, and bounded, so that a broken broker cannot hold shutdown past the
        // grace period (what is not committed is redelivered and deduplicated).
        let leave = tokio::task::spawn_blocking(move || {
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) => tracing::info!("consumer: offsets committed"),
                Err(e) => {
                    tracing::info!(detail = %e, "consumer: no new offsets to commit on shutdown")
                }
            }
            consumer.unsubscribe();
            drop(consumer);
        });
        if tokio::time::timeout(Duration::from_secs(5), leave)
            .await
            .is_err()
        {
            tracing::warn!(
                "consumer: the broker did not answer the final commit in 5 s; leaving anyway"
            );
        }
    }

    /// Handles messages in order to a final outcome: in one call of the handler's
    /// [`EventHandler::handle_batch`] when it has one and every message is a readable
    /// envelope, else (or when that fails) one at a time. Returns `false` only if shutdown
    /// interrupted it, in which case no offset of the batch may be stored.
    async fn process_batch(&self, batch: &[BorrowedMessage<'_>], stop: &CancellationToken) -> bool {
        if batch.len() > 1 {
            let readable: Option<Vec<(Envelope, Option<String>)>> = batch
                .iter()
                .map(|m| {
                    let env = m.payload().and_then(|b| Envelope::from_slice(b).ok())?;
                    let tp = traceparent(m, Some(&env));
                    Some((env, tp))
                })
                .collect();
            if let Some(all) = readable {
                let handles = self.handler.handles();
                let (wanted, ignored): (Vec<_>, Vec<_>) = all
                    .into_iter()
                    .partition(|(e, _)| handles.contains(&e.event_type.as_str()));
                let (wanted, traces): (Vec<Envelope>, Vec<Option<String>>) =
                    wanted.into_iter().unzip();
                let outcome = if wanted.is_empty() {
                    Some(Ok(Vec::new()))
                } else {
                    let causes = causes(wanted.iter().zip(traces.iter().cloned()));
                    crate::trace::scope(causes, self.handler.handle_batch(&wanted)).await
                };
                match outcome {
                    Some(Ok(handled)) if handled.len() == wanted.len() => {
                        for ((e, h), tp) in wanted.iter().zip(handled).zip(&traces) {
                            let outcome = match h {
                                Handled::Applied => EventOutcome::Applied,
                                Handled::Duplicate => EventOutcome::Duplicate,
                            };
                            applied(e, tp.as_deref(), outcome);
                            self.metrics.event(&e.event_type, outcome);
                        }
                        for (e, _) in &ignored {
                            self.metrics.event(&e.event_type, EventOutcome::Ignored);
                        }
                        return true;
                    }
                    None => {}
                    Some(Ok(_)) => {
                        tracing::warn!(
                            "consumer: a batch answered for a different count; one at a time"
                        )
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "consumer: batch failed; one at a time")
                    }
                }
            }
        }
        for m in batch {
            if !self.process(m, stop).await {
                return false;
            }
        }
        true
    }

    /// Handles one message to a final outcome. Returns `false` only if shutdown interrupted
    /// it, in which case its offset must not be stored.
    async fn process(&self, m: &BorrowedMessage<'_>, stop: &CancellationToken) -> bool {
        let Some(bytes) = m.payload() else {
            return self.dead_letter(m, "UNKNOWN", "empty message", stop).await;
        };
        let envelope = match Envelope::from_slice(bytes) {
            Ok(e) => e,
            Err(e) => return self.dead_letter(m, "UNKNOWN", &e.to_string(), stop).await,
        };
        let event_type = envelope.event_type.as_str();
        if !self.handler.handles().contains(&event_type) {
            self.metrics.event(event_type, EventOutcome::Ignored);
            return true;
        }
        let mut backoff = Duration::from_millis(self.settings.retry_backoff_ms);
        let attempts = self.settings.max_attempts.max(1);
        let tp = traceparent(m, Some(&envelope));
        for attempt in 1..=attempts {
            let causes = causes([(&envelope, tp.clone())].into_iter());
            match crate::trace::scope(causes, self.handler.handle(&envelope)).await {
                Ok(Handled::Applied) => {
                    applied(&envelope, tp.as_deref(), EventOutcome::Applied);
                    self.metrics.event(event_type, EventOutcome::Applied);
                    return true;
                }
                Ok(Handled::Duplicate) => {
                    applied(&envelope, tp.as_deref(), EventOutcome::Duplicate);
                    self.metrics.event(event_type, EventOutcome::Duplicate);
                    return true;
                }
                Err(HandleError::Permanent(reason)) => {
                    self.metrics.event(event_type, EventOutcome::Failed);
                    return self.dead_letter(m, event_type, &reason, stop).await;
                }
                Err(HandleError::Transient(e)) => {
                    self.metrics.event(event_type, EventOutcome::Failed);
                    tracing::warn!(
                        event_id = %envelope.event_id, event_type, attempt,
                        error = format!("{e:#}"), "consumer: handler failed"
                    );
                    if attempt == attempts {
                        let reason = format!("gave up after {attempts} attempts: {e:#}");
                        return self.dead_letter(m, event_type, &reason, stop).await;
                    }
                    tokio::select! {
                        () = stop.cancelled() => return false,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = backoff.saturating_mul(2);
                }
            }
        }
        true
    }

    /// Parks a message on the dead-letter topic with its origin and the reason, retrying
    /// the send until it is acknowledged or shutdown begins.
    async fn dead_letter(
        &self,
        m: &BorrowedMessage<'_>,
        event_type: &str,
        reason: &str,
        stop: &CancellationToken,
    ) -> bool {
        let topic = self.settings.dead_letter_topic();
        let partition = m.partition().to_string();
        let offset = m.offset().to_string();
        tracing::error!(
            event_type,
            reason,
            source_partition = m.partition(),
            source_offset = m.offset(),
            "consumer: parking event on the dead-letter topic"
        );
        loop {
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "dlq-reason",
                    value: Some(reason),
                })
                .insert(Header {
                    key: "dlq-source-topic",
                    value: Some(m.topic()),
                })
                .insert(Header {
                    key: "dlq-source-partition",
                    value: Some(&partition),
                })
                .insert(Header {
                    key: "dlq-source-offset",
                    value: Some(&offset),
                })
                .insert(Header {
                    key: "dlq-consumer-group",
                    value: Some(&self.settings.group_id),
                });
            let mut record = FutureRecord::<[u8], [u8]>::to(&topic).headers(headers);
            if let Some(k) = m.key() {
                record = record.key(k);
            }
            if let Some(p) = m.payload() {
                record = record.payload(p);
            }
            match self.producer.send(record, Duration::from_secs(10)).await {
                Ok(_) => {
                    self.metrics.event(event_type, EventOutcome::DeadLettered);
                    return true;
                }
                Err((e, _)) => {
                    tracing::warn!(error = %e, "consumer: dead-letter send failed, retrying");
                    tokio::select! {
                        () = stop.cancelled() => return false,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }
}

/// Replays the topics that carry what `handler` handles, from their beginnings up to their
/// current ends, through it, with a throwaway consumer group (nothing is committed). Used
/// to rebuild a read model from scratch; the handler's inbox keeps events it already
/// applied from being applied twice.
/// Returns how many events were applied.
pub async fn replay(
    settings: &KafkaSettings,
    handler: Arc<dyn EventHandler>,
) -> anyhow::Result<u64> {
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: StreamConsumer = crate::kafka::client_config(settings)?
        .set(
            "group.id",
            format!(
                "{}-replay-{}",
                settings.group_id,
                uuid::Uuid::new_v4().simple()
            ),
        )
        .set("enable.auto.commit", "false")
        .create()?;
    let timeout = Duration::from_secs(10);
    let mut ends = std::collections::HashMap::new();
    let mut assignment = TopicPartitionList::new();
    for topic in settings.topics_for(handler.handles()) {
        let metadata = consumer.fetch_metadata(Some(&topic), timeout)?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        for p in partitions {
            let (low, high) = consumer.fetch_watermarks(&topic, p, timeout)?;
            if high > low {
                assignment.add_partition_offset(&topic, p, Offset::Offset(low))?;
                ends.insert((topic.clone(), p), high);
            }
        }
    }
    consumer.assign(&assignment)?;
    let mut applied = 0;
    while !ends.is_empty() {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .map_err(|_| {
                anyhow::anyhow!("replay stalled with {} partitions unfinished", ends.len())
            })??;
        let at = (m.topic().to_owned(), m.partition());
        if let Some(&end) = ends.get(&at) {
            if m.offset() + 1 >= end {
                ends.remove(&at);
            }
        }
        let Some(envelope) = m.payload().and_then(|b| Envelope::from_slice(b).ok()) else {
            continue;
        };
        if !handler.handles().contains(&envelope.event_type.as_str()) {
            continue;
        }
        let mut attempt = 0;
        loop {
            match handler.handle(&envelope).await {
                Ok(Handled::Applied) => {
                    applied += 1;
                    break;
                }
                Ok(Handled::Duplicate) => break,
                Err(HandleError::Permanent(reason)) => {
                    tracing::warn!(event_id = %envelope.event_id, reason, "replay: skipping an event the handler refuses");
                    break;
                }
                Err(HandleError::Transient(e)) if attempt < settings.max_attempts => {
                    attempt += 1;
                    tracing::warn!(error = format!("{e:#}"), attempt, "replay: retrying");
                    tokio::time::sleep(Duration::from_millis(
                        settings.retry_backoff_ms << attempt.min(10),
                    ))
                    .await;
                }
                Err(HandleError::Transient(e)) => return Err(e.context("replay gave up")),
            }
        }
    }
    Ok(applied)
}

/// The trace context a message carries: its `traceparent` header, else its envelope's.
fn traceparent(m: &BorrowedMessage<'_>, envelope: Option<&Envelope>) -> Option<String> {
    use rdkafka::message::Headers;
    m.headers()
        .and_then(|h| {
            h.iter()
                .find(|x| x.key == crate::trace::TRACEPARENT)
                .and_then(|x| x.value)
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(str::to_owned)
        })
        .or_else(|| envelope.and_then(|e| e.traceparent.clone()))
}

/// The trace contexts of events being applied, by correlation id: what the events they
/// cause belong to.
fn causes<'a>(
    events: impl Iterator<Item = (&'a Envelope, Option<String>)>,
) -> HashMap<String, String> {
    events
        .filter_map(|(e, tp)| Some((e.correlation_id.clone(), tp?)))
        .collect()
}

/// Records an applied event as a span of its own trace (exported with the rest of the
/// trace) and logs it there at `debug` (a line per event is noise at `info`).
fn applied(envelope: &Envelope, traceparent: Option<&str>, outcome: EventOutcome) {
    let span = tracing::info_span!(
        "event",
        event_type = %envelope.event_type,
        event_id = %envelope.event_id,
        correlation_id = %envelope.correlation_id,
        trace_id = tracing::field::Empty,
    );
    crate::trace::adopt(&span, traceparent);
    let _entered = span.enter();
    match outcome {
        EventOutcome::Duplicate => tracing::debug!("event already applied"),
        _ => tracing::debug!("event applied"),
    }
}

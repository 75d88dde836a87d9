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
//!
//! Parts: the handler traits (`handler.rs`), the inbox claim (`inbox.rs`), this loop with its
//! retries (here), the dead-letter topic (`dead_letter.rs`), and the replay that rebuilds a
//! read model (`replay.rs`).

mod dead_letter;
mod handler;
mod inbox;
mod replay;

pub use handler::{BatchHandler, EventHandler, HandleError, Handled, MAX_BATCH};
pub use inbox::{claim, claim_all};
pub use replay::replay;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use events::Envelope;
use futures::FutureExt as _;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::BorrowedMessage;
use rdkafka::producer::FutureProducer;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Message};
use tokio_util::sync::CancellationToken;

use crate::health::Health;
use crate::metrics::{EventOutcome, Metrics};
use crate::settings::KafkaSettings;

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

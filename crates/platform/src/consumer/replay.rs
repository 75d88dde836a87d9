//! Rebuilding a read model: every event of its topics through its handler again.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;

use events::Envelope;

use super::{EventHandler, HandleError, Handled};
use crate::settings::KafkaSettings;

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

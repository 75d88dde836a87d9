//! The dead-letter topic: where a message that cannot be applied (undecodable, refused
//! for good, or failing past its retries) is parked with where it came from and why, so
//! that its partition moves on and an operator can look at it and replay it.

use std::time::Duration;

use rdkafka::message::{BorrowedMessage, Header, Message as _, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use tokio_util::sync::CancellationToken;

use super::ConsumerLoop;
use crate::metrics::EventOutcome;

impl ConsumerLoop {
    /// Parks a message on the dead-letter topic with its origin and the reason, retrying
    /// the send until it is acknowledged or shutdown begins.
    pub(super) async fn dead_letter(
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

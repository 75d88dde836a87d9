//! Kafka clients and topics. The local broker does not create topics on demand, so every
//! service creates the ones it uses at start-up (an existing topic is left as it is).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::FutureProducer;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use crate::settings::KafkaSettings;

/// The relay's producer: `acks=all`, batching, one request in flight per connection so that a
/// retried batch cannot overtake the next one (each partition keeps the outbox's order).
/// Not Kafka's idempotent producer (see below): a retry after a lost acknowledgement can
/// publish a record twice, which consumers drop by `eventId` (I4).
pub fn producer(settings: &KafkaSettings) -> anyhow::Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        // Not the idempotent producer: Tansu 0.6.0 panics (`more or less than one row` in
        // its idempotence check) when a producer it knew sends again after a broker
        // restart, and the broker is useless from then on. Nothing is lost without it:
        // the outbox resends until acknowledged, consumers drop duplicates by event id,
        // and one request in flight keeps each partition in order across retries.
        .set("enable.idempotence", "false")
        .set("max.in.flight.requests.per.connection", "1")
        .set("acks", "all")
        // The relay hands over a whole outbox batch at once: a short linger packs it into
        // few requests without delaying a lone event noticeably. (Fetches that start
        // inside a batch work on Tansu's sqlite storage: tests/broker.rs.)
        .set("linger.ms", "2")
        .set("message.timeout.ms", "15000")
        .set("broker.address.family", "v4")
        .create()?)
}

/// Creates the events topic and its dead-letter topic if missing.
pub async fn ensure_topics(settings: &KafkaSettings) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .set("broker.address.family", "v4")
        .create()?;
    let names = [settings.events_topic(), settings.dead_letter_topic()];
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|n| {
            NewTopic::new(
                n,
                settings.partitions,
                TopicReplication::Fixed(settings.replication),
            )
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&topics, &opts).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("could not create topic {name}: {code}"),
        }
    }
    Ok(())
}

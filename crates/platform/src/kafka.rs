//! Kafka clients and topics. The local broker does not create topics on demand, so every
//! service creates the ones it uses at start-up (an existing topic is left as it is).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::FutureProducer;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use crate::settings::KafkaSettings;

/// The relay's producer: Kafka's idempotent producer with its defaults — `acks=all`, up
/// to 5 requests in flight per connection, retries that keep each partition in order and
/// never write a record twice — the same against the local broker and Apache Kafka
/// (docs/broker.md: verified on nisshi, including across broker restarts). Only batching is
/// tuned: the relay hands over a whole outbox batch at once, and a short linger packs it
/// into few requests without delaying a lone event noticeably.
pub fn producer(settings: &KafkaSettings) -> anyhow::Result<FutureProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("max.in.flight.requests.per.connection", "5")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "15000")
        .create()?)
}

/// Creates every context's events topic and the dead-letter topic if missing (a consumer
/// subscribes to topics it may read before their producer ever started).
pub async fn ensure_topics(settings: &KafkaSettings) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .create()?;
    let mut names = settings.event_topics();
    names.push(settings.dead_letter_topic());
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

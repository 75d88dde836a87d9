//! Kafka clients and topics. The local broker does not create topics on demand, so every
//! service creates the ones it uses at start-up (an existing topic is left as it is).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::FutureProducer;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use crate::settings::{KafkaProtocol, KafkaSettings};

/// A client configuration that reaches the brokers as `settings` say: their address, and
/// TLS with the service's certificate where set. Every client of the fleet starts here.
/// Refuses a half-given client identity (a certificate without its key, or a key without
/// its certificate), and TLS files on a plaintext connection, rather than ignore them.
pub fn client_config(settings: &KafkaSettings) -> anyhow::Result<ClientConfig> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &settings.brokers);
    let s = &settings.security;
    match s.protocol {
        KafkaProtocol::Plaintext => {
            anyhow::ensure!(
                s.ca_location.is_none()
                    && s.certificate_location.is_none()
                    && s.key_location.is_none(),
                "kafka.security: TLS files are set but the protocol is plaintext (set kafka.security.protocol = ssl)"
            );
            config.set("security.protocol", "plaintext");
        }
        KafkaProtocol::Ssl => {
            config
                .set("security.protocol", "ssl")
                .set("ssl.endpoint.identification.algorithm", "https");
            if let Some(ca) = &s.ca_location {
                config.set("ssl.ca.location", ca);
            }
            match (&s.certificate_location, &s.key_location) {
                (Some(cert), Some(key)) => {
                    config
                        .set("ssl.certificate.location", cert)
                        .set("ssl.key.location", key);
                }
                (None, None) => {}
                _ => anyhow::bail!(
                    "kafka.security: a client certificate needs its key, and a key its certificate"
                ),
            }
        }
    }
    Ok(config)
}

/// The relay's producer: Kafka's idempotent producer with its defaults — `acks=all`, up
/// to 5 requests in flight per connection, retries that keep each partition in order and
/// never write a record twice — the same against the local broker and Apache Kafka
/// (docs/broker.md: verified on nisshi, including across broker restarts). Only batching is
/// tuned: the relay hands over a whole outbox batch at once, and a short linger packs it
/// into few requests without delaying a lone event noticeably.
pub fn producer(settings: &KafkaSettings) -> anyhow::Result<FutureProducer> {
    Ok(client_config(settings)?
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("max.in.flight.requests.per.connection", "5")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "15000")
        .create()?)
}

/// Whether the brokers answer: a metadata request, waited for at most `within`.
pub async fn reachable(settings: &KafkaSettings, within: Duration) -> anyhow::Result<()> {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    let client: BaseConsumer = client_config(settings)?.create()?;
    tokio::task::spawn_blocking(move || client.fetch_metadata(None, within)).await??;
    Ok(())
}

/// The topics the brokers have, by a metadata request waited for at most `within`.
async fn existing_topics(
    settings: &KafkaSettings,
    within: Duration,
) -> anyhow::Result<std::collections::HashSet<String>> {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    let client: BaseConsumer = client_config(settings)?.create()?;
    let names = tokio::task::spawn_blocking(move || {
        client.fetch_metadata(None, within).map(|m| {
            m.topics()
                .iter()
                .map(|t| t.name().to_owned())
                .collect::<std::collections::HashSet<_>>()
        })
    })
    .await??;
    Ok(names)
}

/// Creates every context's events topic and the dead-letter topic that is missing (a
/// consumer subscribes to topics it may read before their producer ever started). Only
/// the missing ones are asked for: a broker takes a request to create one that exists as
/// an error (nisshi logged 24 `TopicAlreadyExists` errors at each start of the fleet);
/// two services creating one at once is still fine.
pub async fn ensure_topics(settings: &KafkaSettings) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = client_config(settings)?.create()?;
    let mut names = settings.event_topics();
    names.push(settings.dead_letter_topic());
    let existing = existing_topics(settings, Duration::from_secs(10)).await?;
    names.retain(|n| !existing.contains(n));
    if names.is_empty() {
        return Ok(());
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::KafkaSecurity;
    use rdkafka::producer::BaseProducer;

    fn with(security: KafkaSecurity) -> KafkaSettings {
        KafkaSettings {
            security,
            ..Default::default()
        }
    }

    fn ssl() -> KafkaSecurity {
        KafkaSecurity {
            protocol: KafkaProtocol::Ssl,
            ..Default::default()
        }
    }

    #[test]
    fn plaintext_by_default_and_tls_files_refused_there() {
        let c = client_config(&KafkaSettings::default()).unwrap();
        assert_eq!(c.get("security.protocol"), Some("plaintext"));
        assert_eq!(c.get("ssl.ca.location"), None);
        let e = client_config(&with(KafkaSecurity {
            ca_location: Some("/etc/ca.crt".into()),
            ..Default::default()
        }))
        .unwrap_err();
        assert!(e.to_string().contains("protocol is plaintext"), "{e}");
    }

    /// The build speaks TLS to Kafka: librdkafka refuses `security.protocol=ssl` at
    /// creation when it was built without it. Creating a client connects to nothing.
    #[test]
    fn the_clients_can_speak_tls_with_the_services_own_certificate() {
        let c = client_config(&with(ssl())).unwrap();
        assert_eq!(c.get("security.protocol"), Some("ssl"));
        assert_eq!(
            c.get("ssl.endpoint.identification.algorithm"),
            Some("https")
        );
        let made: Result<BaseProducer, _> = c.create();
        assert!(made.is_ok(), "{:?}", made.err());

        let e = client_config(&with(KafkaSecurity {
            certificate_location: Some("/etc/kafka/user.crt".into()),
            ..ssl()
        }))
        .unwrap_err();
        assert!(e.to_string().contains("needs its key"), "{e}");

        // Files that are not there fail at start, not at the first event.
        let c = client_config(&with(KafkaSecurity {
            ca_location: Some("/nonexistent/ca.crt".into()),
            certificate_location: Some("/nonexistent/user.crt".into()),
            key_location: Some("/nonexistent/user.key".into()),
            ..ssl()
        }))
        .unwrap();
        assert_eq!(c.get("ssl.key.location"), Some("/nonexistent/user.key"));
        let made: Result<BaseProducer, _> = c.create();
        assert!(made.is_err(), "a missing CA file was accepted");
    }
}

//! The housebook event contract (SPEC §5).
//!
//! Every event travels in one [`Envelope`]: a unique `eventId` for deduplication, the
//! `eventType`, a schema `version`, `occurredAt`, and a `correlationId` — the booking id for
//! every event of a booking — which is also the Kafka message key. Each producing
//! [`Context`] publishes on a topic of its own, so a consumer reads only the contexts it
//! listens to, and one context's events of a booking stay in order on one partition of its
//! topic. Events of different contexts have no order between them (they never had one
//! that a consumer could rely on: two services publish them independently). The payloads
//! are the structs of [`catalog`].
//!
//! Producers build envelopes with [`Envelope::new`]; consumers read the envelope first
//! (cheap, and it never fails on an event type they do not know) and decode the payload
//! only for the types they handle, with [`Envelope::decode`].

pub mod catalog;
pub mod money;
pub mod schema;
pub mod stay;

pub use catalog::*;
pub use money::{Money, MoneyError, MAX_AMOUNT};
pub use stay::{parse_date, Stay, StayError};

/// The identity of an event for deduplication: consumers record it in their inbox in the
/// transaction that applies the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventKey {
    /// The envelope's `eventId`.
    pub event_id: String,
    /// The envelope's `eventType`.
    pub event_type: String,
}

impl EventKey {
    /// The key of an envelope.
    pub fn of(envelope: &Envelope) -> Self {
        Self {
            event_id: envelope.event_id.to_string(),
            event_type: envelope.event_type.clone(),
        }
    }
}

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The current schema version of every payload in the catalog.
pub const SCHEMA_VERSION: u32 = 1;

/// The bounded context that publishes an event, and so the topic it travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    /// `book`: `Booked`, `BookConfirmed`, `BookRejected`, `BookCanceled`.
    Booking,
    /// `payment`: `Paid`, `PaymentCanceled`.
    Payment,
    /// `house`: `HouseRegistered`, `HouseRented`, `HouseRentRejected`, `HouseRentCanceled`.
    House,
}

impl Context {
    /// Every context, in topic order.
    pub const ALL: [Context; 3] = [Context::Booking, Context::Payment, Context::House];

    /// The topic its events travel on (a deployment may put a prefix in front).
    pub const fn topic(self) -> &'static str {
        match self {
            Context::Booking => "housebook.booking.events",
            Context::Payment => "housebook.payment.events",
            Context::House => "housebook.house.events",
        }
    }

    /// The contexts that publish `event_types`, each once, in topic order; types not in
    /// the catalog are left out.
    pub fn publishing(event_types: &[&str]) -> Vec<Context> {
        let mut contexts: Vec<Context> =
            event_types.iter().filter_map(|t| Context::of(t)).collect();
        contexts.sort();
        contexts.dedup();
        contexts
    }
}

/// A payload of the catalog: knows its `eventType` and its correlation key (who publishes
/// it: [`Context::of`]).
pub trait Event: Serialize + for<'de> Deserialize<'de> + JsonSchema {
    /// The `eventType` written into the envelope.
    const TYPE: &'static str;
    /// The correlation id (and Kafka key): the booking id for booking events.
    fn correlation_id(&self) -> String;
}

/// The envelope every event travels in, with its payload kept as raw JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Unique per event; consumers deduplicate on it.
    pub event_id: Uuid,
    /// One of the catalog's type names, e.g. `Paid`.
    pub event_type: String,
    /// Schema version of the payload.
    pub version: u32,
    /// When the state change that this event reports was committed.
    pub occurred_at: DateTime<Utc>,
    /// The booking id for booking events; the Kafka message key.
    pub correlation_id: String,
    /// The event's payload; its shape is given by `eventType`.
    pub payload: serde_json::Value,
    /// The W3C trace context of the change that produced it (also a Kafka header), so a
    /// consumer continues the same trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// Why an envelope or payload could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not a JSON envelope.
    #[error("not an event envelope: {0}")]
    Envelope(#[source] serde_json::Error),
    /// The payload does not match the schema of its `eventType`.
    #[error("payload of {event_type} does not match its schema: {source}")]
    Payload {
        /// The envelope's event type.
        event_type: String,
        /// What serde reported.
        #[source]
        source: serde_json::Error,
    },
    /// The event type is not in the catalog.
    #[error("unknown event type {0}")]
    UnknownType(String),
    /// The payload was written by a newer, incompatible schema.
    #[error("unsupported version {version} of {event_type}")]
    UnsupportedVersion {
        /// The envelope's event type.
        event_type: String,
        /// The envelope's version.
        version: u32,
    },
}

impl Envelope {
    /// Wraps a payload in a new envelope with a fresh, time-ordered `eventId`.
    pub fn new<E: Event>(payload: &E) -> Result<Self, serde_json::Error> {
        Ok(Self {
            event_id: Uuid::now_v7(),
            event_type: E::TYPE.to_owned(),
            version: SCHEMA_VERSION,
            occurred_at: Utc::now(),
            correlation_id: payload.correlation_id(),
            payload: serde_json::to_value(payload)?,
            traceparent: None,
        })
    }

    /// Reads an envelope from the bytes of a Kafka message.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DecodeError> {
        serde_json::from_slice(bytes).map_err(DecodeError::Envelope)
    }

    /// The JSON bytes written to Kafka.
    pub fn to_vec(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Decodes the payload into the catalog's typed event.
    pub fn decode(&self) -> Result<DomainEvent, DecodeError> {
        if self.version > SCHEMA_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                event_type: self.event_type.clone(),
                version: self.version,
            });
        }
        DomainEvent::from_parts(&self.event_type, self.payload.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn every_event_type_has_the_topic_of_the_context_that_publishes_it() {
        for t in EVENT_TYPES {
            assert!(Context::of(t).is_some(), "{t} has no context");
        }
        assert_eq!(Context::of(Paid::TYPE), Some(Context::Payment));
        assert_eq!(Context::Payment.topic(), "housebook.payment.events");
        assert_eq!(Context::of("Booked"), Some(Context::Booking));
        assert_eq!(Context::of("HouseRentCanceled"), Some(Context::House));
        assert_eq!(Context::of("Refunded"), None);
        // What book reads: the payment's and the house's topics, never its own.
        assert_eq!(
            Context::publishing(&["Paid", "HouseRented", "HouseRegistered", "Nope"]),
            vec![Context::Payment, Context::House]
        );
        let topics: std::collections::HashSet<_> = Context::ALL.iter().map(|c| c.topic()).collect();
        assert_eq!(topics.len(), 3, "one topic per context");
    }

    #[test]
    fn the_cluster_declares_every_contexts_topic() {
        let read = |path: &str| {
            std::fs::read_to_string(format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
        };
        let (manifest, policy) = (read("k8s/base/kafka.yaml"), read("k8s/check.py"));
        for c in Context::ALL {
            let name = c.topic();
            assert!(
                manifest.contains(&format!("  name: {name}\n")),
                "KafkaTopic {name}"
            );
            assert!(
                policy.contains(&format!("\"{name}\"")),
                "check.py requires {name}"
            );
        }
    }

    fn paid() -> Paid {
        Paid {
            payment_id: 7,
            book_id: "0190d7a4-0000-7000-8000-000000000001".into(),
            house_id: 3,
            customer_id: "alice".into(),
            house_price: 200_000,
            check_in: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            check_out: NaiveDate::from_ymd_opt(2026, 12, 3).unwrap(),
            payment_date: Utc::now(),
        }
    }

    #[test]
    fn envelope_round_trips_and_uses_the_booking_as_key() {
        let original = paid();
        let env = Envelope::new(&original).unwrap();
        assert_eq!(env.event_type, "Paid");
        assert_eq!(env.correlation_id, "0190d7a4-0000-7000-8000-000000000001");
        let back = Envelope::from_slice(&env.to_vec().unwrap()).unwrap();
        assert_eq!(back, env);
        match back.decode().unwrap() {
            DomainEvent::Paid(p) => assert_eq!(p, original),
            other => panic!("decoded the wrong type: {other:?}"),
        }
    }

    #[test]
    fn wire_names_are_camel_case() {
        let env = Envelope::new(&paid()).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&env.to_vec().unwrap()).unwrap();
        for key in [
            "eventId",
            "eventType",
            "version",
            "occurredAt",
            "correlationId",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        assert_eq!(
            json["payload"]["bookId"],
            "0190d7a4-0000-7000-8000-000000000001"
        );
        assert_eq!(json["payload"]["checkIn"], "2026-12-01");
    }

    #[test]
    fn unknown_types_newer_versions_and_bad_payloads_are_refused() {
        let mut env = Envelope::new(&paid()).unwrap();
        env.event_type = "Teleported".into();
        assert!(matches!(env.decode(), Err(DecodeError::UnknownType(_))));

        let mut env = Envelope::new(&paid()).unwrap();
        env.version = SCHEMA_VERSION + 1;
        assert!(matches!(
            env.decode(),
            Err(DecodeError::UnsupportedVersion { .. })
        ));

        let mut env = Envelope::new(&paid()).unwrap();
        env.payload = serde_json::json!({"bookId": 5});
        assert!(matches!(env.decode(), Err(DecodeError::Payload { .. })));

        assert!(matches!(
            Envelope::from_slice(b"{not json"),
            Err(DecodeError::Envelope(_))
        ));
    }
}

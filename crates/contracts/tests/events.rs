//! The consumers' side of the event contract: what the checked-in schemas
//! (`crates/events/schemas`) promise is exactly what the consumers can read. Every
//! consumer (book, house, mypage) reads an event through `Envelope::from_slice` and
//! `Envelope::decode`; the producers' side (every event the real fleet emits matches its
//! schema) is `crates/e2e/tests/contracts.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};

fn schema(name: &str) -> Value {
    let path = format!(
        "{}/../events/schemas/{name}.schema.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn envelope(event_type: &str, payload: Value) -> Value {
    json!({
        "eventId": "00000000-0000-4000-8000-000000000009",
        "eventType": event_type,
        "version": events::SCHEMA_VERSION,
        "occurredAt": "2031-01-01T00:00:00Z",
        "correlationId": "b-1",
        "payload": payload,
    })
}

fn decodes(event: &Value) -> Result<(), String> {
    let bytes = serde_json::to_vec(event).unwrap();
    let envelope = events::Envelope::from_slice(&bytes).map_err(|e| e.to_string())?;
    envelope.decode().map(|_| ()).map_err(|e| e.to_string())
}

#[test]
fn the_least_each_schema_allows_is_read_by_every_consumer_and_nothing_it_refuses() {
    let envelope_schema = schema("Envelope");
    for t in events::EVENT_TYPES {
        let s = schema(t);
        let payload = contracts::minimal(&s, &s).unwrap();
        contracts::check(&s, &payload).unwrap_or_else(|e| panic!("{t}: {e}"));
        let event = envelope(t, payload);
        contracts::check(&envelope_schema, &event).unwrap_or_else(|e| panic!("{t}: {e}"));
        decodes(&event).unwrap_or_else(|e| {
            panic!("{t}: consumers cannot read the least its schema allows ({event}): {e}")
        });
        // A field the schema does not know: payloads are strict (`additionalProperties:
        // false`; a new field is a new `version`), and the consumers refuse it as the
        // schema does. On the envelope, schema and consumers agree whichever way it goes.
        let mut more = event.clone();
        more["payload"]["addedLater"] = json!("x");
        assert!(
            contracts::check(&s, &more["payload"]).is_err(),
            "{t}: the schema is strict"
        );
        assert!(
            decodes(&more).is_err(),
            "{t}: consumers read a field the schema refuses"
        );
        let mut wider = event.clone();
        wider["addedLater"] = json!(1);
        assert_eq!(
            contracts::check(&envelope_schema, &wider).is_ok(),
            decodes(&wider).is_ok(),
            "{t}: schema and consumers disagree on an unknown envelope field"
        );
    }
}

#[test]
fn every_required_field_is_one_consumers_need() {
    // Dropping any field a schema requires fails the schema (the producers' check) and
    // the consumers' decoding alike: the schema requires neither more nor less than the
    // consumers read.
    let mut fields = 0;
    for t in events::EVENT_TYPES {
        let s = schema(t);
        let payload = contracts::minimal(&s, &s).unwrap();
        for field in s["required"].as_array().into_iter().flatten() {
            let field = field.as_str().unwrap();
            let mut dropped = payload.clone();
            dropped.as_object_mut().unwrap().remove(field);
            assert!(
                contracts::check(&s, &dropped).is_err(),
                "{t} without {field}: the schema lets it through"
            );
            assert!(
                decodes(&envelope(t, dropped)).is_err(),
                "{t} without {field}: consumers read it anyway, so the schema over-requires"
            );
            fields += 1;
        }
    }
    assert!(fields >= 30, "only {fields} required fields in the catalog");
}

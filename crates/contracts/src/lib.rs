//! The fleet's contracts, and the checks both sides of each run (SPEC §4–5).
//!
//! - **book → payment** ([`BOOK_PAYMENT`], `book-payment.json`): what book's payment client
//!   sends and what it needs back, written from book's side (consumer-driven). Book's unit
//!   tests prove its client sends exactly these requests and copes with these answers;
//!   payment's integration tests replay them against the real service and check every
//!   answer against the contract's schemas. A change on either side that breaks the other
//!   fails that side's own tests.
//! - **Events**: the checked-in JSON Schemas of `crates/events/schemas`. Producers: every
//!   event the real fleet emits must match its schema (`crates/e2e/tests/contracts.rs`).
//!   Consumers: the smallest event each schema allows ([`minimal`]) must decode through
//!   `Envelope::decode`, the one path book, house and mypage read events by
//!   (`tests/events.rs`).
//! - **OpenAPI**: every live answer the end-to-end tests see is checked against the
//!   service's own document ([`OpenApi::check_answer`]): its status is documented for that
//!   operation and its body matches the documented schema.
//!
//! Checks return `Err` with every violation spelled out; nothing here panics.

use serde_json::{Map, Value};

/// The book → payment contract (JSON): see `book-payment.json`.
pub const BOOK_PAYMENT: &str = include_str!("../book-payment.json");

/// The interactions of the book → payment contract, in the order a provider replays them
/// (each one's state is what the ones before left).
pub fn book_payment() -> Result<Vec<Value>, String> {
    let doc: Value =
        serde_json::from_str(BOOK_PAYMENT).map_err(|e| format!("book-payment.json: {e}"))?;
    doc["interactions"]
        .as_array()
        .cloned()
        .ok_or_else(|| "book-payment.json: no interactions".to_owned())
}

/// `template` with every `{name}` inside its strings replaced by the value `vars` gives.
pub fn fill(template: &Value, vars: &[(&str, &str)]) -> Value {
    match template {
        Value::String(s) => {
            let mut out = s.clone();
            for (name, value) in vars {
                out = out.replace(&format!("{{{name}}}"), value);
            }
            Value::String(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| fill(v, vars)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), fill(v, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Validates `instance` against a JSON Schema (its `$schema` picks the draft; 2020-12
/// when it names none). `Err` lists every violation with where it is.
pub fn check(schema: &Value, instance: &Value) -> Result<(), String> {
    let validator = jsonschema::validator_for(schema).map_err(|e| format!("bad schema: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{e} (at '{}')", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// The smallest instance a schema accepts: objects with their required properties only,
/// empty arrays, the first of an `enum`, `null` where allowed. `root` resolves `$ref`s
/// (`#/definitions/...`, `#/components/schemas/...`).
pub fn minimal(schema: &Value, root: &Value) -> Result<Value, String> {
    minimal_at(schema, root, 0)
}

fn minimal_at(schema: &Value, root: &Value, depth: usize) -> Result<Value, String> {
    if depth > 32 {
        return Err("schema nests too deep (a recursive $ref?)".into());
    }
    let Some(s) = schema.as_object() else {
        // `true` or `{}`: anything goes.
        return Ok(Value::Null);
    };
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let target = r
            .strip_prefix('#')
            .and_then(|p| root.pointer(p))
            .ok_or_else(|| format!("unresolved $ref {r}"))?;
        return minimal_at(target, root, depth + 1);
    }
    if let Some(v) = s.get("const") {
        return Ok(v.clone());
    }
    if let Some(first) = s
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return Ok(first.clone());
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(options) = s.get(key).and_then(Value::as_array) {
            let non_null = options
                .iter()
                .find(|o| o.get("type") != Some(&Value::String("null".into())));
            if let Some(o) = non_null.or(options.first()) {
                return minimal_at(o, root, depth + 1);
            }
        }
    }
    let types: Vec<&str> = match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ if s.contains_key("properties") => vec!["object"],
        _ => vec![],
    };
    if types.contains(&"null") {
        return Ok(Value::Null);
    }
    let Some(t) = types.first() else {
        return Ok(Value::Null);
    };
    Ok(match *t {
        "object" => {
            let props = s.get("properties").and_then(Value::as_object);
            let mut out = Map::new();
            for name in s
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                let prop = props
                    .and_then(|p| p.get(name))
                    .cloned()
                    .unwrap_or(Value::Bool(true));
                out.insert(name.to_owned(), minimal_at(&prop, root, depth + 1)?);
            }
            Value::Object(out)
        }
        "array" => {
            let n = s.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            let item = s.get("items").cloned().unwrap_or(Value::Bool(true));
            let one = minimal_at(&item, root, depth + 1)?;
            Value::Array((0..n).map(|_| one.clone()).collect())
        }
        "string" => Value::String(
            match s.get("format").and_then(Value::as_str) {
                Some("date") => "2031-01-01",
                Some("date-time") => "2031-01-01T00:00:00Z",
                Some("uuid") => "00000000-0000-4000-8000-000000000001",
                _ => "x",
            }
            .to_owned(),
        ),
        "integer" => Value::from(s.get("minimum").and_then(Value::as_i64).unwrap_or(1)),
        "number" => Value::from(s.get("minimum").and_then(Value::as_f64).unwrap_or(1.0)),
        "boolean" => Value::Bool(false),
        other => return Err(format!("unknown type {other}")),
    })
}

/// A service's OpenAPI 3.1 document, to check live answers against.
#[derive(Debug, Clone)]
pub struct OpenApi {
    doc: Value,
}

impl OpenApi {
    /// A document as served at `/openapi.json`.
    pub fn new(doc: Value) -> Self {
        Self { doc }
    }

    /// Every documented operation as `(method, path template)`, methods in lower case.
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (path, item) in self.doc["paths"].as_object().into_iter().flatten() {
            for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
                if ["get", "put", "post", "delete", "patch", "head", "options"]
                    .contains(&method.as_str())
                {
                    out.push((method.clone(), path.clone()));
                }
            }
        }
        out
    }

    /// The documented template a concrete path (query ignored) falls under, preferring
    /// the one with most literal segments (`/payments/by-book/{bookId}/cancel` over
    /// `/payments/{id}/cancel`).
    pub fn template_of(&self, path: &str) -> Option<String> {
        let path = path.split('?').next().unwrap_or(path);
        let segs: Vec<&str> = path.split('/').collect();
        self.doc["paths"]
            .as_object()?
            .keys()
            .filter_map(|t| {
                let tsegs: Vec<&str> = t.split('/').collect();
                if tsegs.len() != segs.len() {
                    return None;
                }
                let mut literal = 0;
                for (t, s) in tsegs.iter().zip(&segs) {
                    if t.starts_with('{') && t.ends_with('}') {
                        if s.is_empty() {
                            return None;
                        }
                    } else if t == s {
                        literal += 1;
                    } else {
                        return None;
                    }
                }
                Some((literal, t.clone()))
            })
            .max_by_key(|(literal, _)| *literal)
            .map(|(_, t)| t)
    }

    /// Whether the document has an operation for this method and concrete path.
    pub fn documents(&self, method: &str, path: &str) -> bool {
        self.template_of(path).is_some_and(|t| {
            self.doc["paths"][&t]
                .get(method.to_ascii_lowercase())
                .is_some()
        })
    }

    /// Checks one live answer: the operation is documented, the status is among its
    /// documented responses (exactly, as `4XX`, or `default`), and a body documented as
    /// JSON parses and matches the documented schema. Returns the operation's template.
    pub fn check_answer(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &str,
    ) -> Result<String, String> {
        let method = method.to_ascii_lowercase();
        let template = self
            .template_of(path)
            .ok_or_else(|| format!("{path}: no documented path"))?;
        let op = &self.doc["paths"][&template][&method];
        let responses = op["responses"]
            .as_object()
            .ok_or_else(|| format!("{method} {template}: not documented"))?;
        let response = responses
            .get(&status.to_string())
            .or_else(|| responses.get(&format!("{}XX", status / 100)))
            .or_else(|| responses.get("default"))
            .ok_or_else(|| {
                format!(
                    "{method} {template}: answered {status}, documented {:?}",
                    responses.keys().collect::<Vec<_>>()
                )
            })?;
        let response = self.resolve(response);
        if let Some(schema) = response.pointer("/content/application~1json/schema") {
            let json: Value = serde_json::from_str(body).map_err(|e| {
                format!("{method} {template} {status}: documented as JSON, got {e}: {body}")
            })?;
            self.check_with_components(schema, &json)
                .map_err(|e| format!("{method} {template} {status}: {e}; body {body}"))?;
        }
        Ok(template)
    }

    /// Checks the data of one event of a documented `200 text/event-stream` answer
    /// against the schema its `x-event-data` names. Returns the operation's template.
    pub fn check_event(&self, method: &str, path: &str, data: &str) -> Result<String, String> {
        let method = method.to_ascii_lowercase();
        let template = self
            .template_of(path)
            .ok_or_else(|| format!("{path}: no documented path"))?;
        let response = self.resolve(&self.doc["paths"][&template][&method]["responses"]["200"]);
        let schema = response
            .pointer("/content/text~1event-stream/x-event-data")
            .ok_or_else(|| format!("{method} {template}: no documented event stream"))?;
        let json: Value = serde_json::from_str(data)
            .map_err(|e| format!("{method} {template}: event data is not JSON ({e}): {data}"))?;
        self.check_with_components(schema, &json)
            .map_err(|e| format!("{method} {template} event: {e}; data {data}"))?;
        Ok(template)
    }

    /// [`check`] with a schema of this document: its `$ref`s to the document's components
    /// resolve, under JSON Schema 2020-12 (what OpenAPI 3.1 uses).
    fn check_with_components(&self, schema: &Value, instance: &Value) -> Result<(), String> {
        let mut schema = schema.clone();
        if let Some(obj) = schema.as_object_mut() {
            obj.insert(
                "$schema".into(),
                "https://json-schema.org/draft/2020-12/schema".into(),
            );
            obj.insert("components".into(), self.doc["components"].clone());
        }
        check(&schema, instance)
    }

    /// A response object, through one `$ref` to `#/components/responses/...`.
    fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        v.get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
            .and_then(|p| self.doc.pointer(p))
            .unwrap_or(v)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn doc() -> OpenApi {
        OpenApi::new(json!({
            "openapi": "3.1.0",
            "paths": {
                "/things/{id}": {"get": {"responses": {
                    "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
                    "404": {"$ref": "#/components/responses/Error"}
                }}},
                "/things/by-name/{name}": {"get": {"responses": {"200": {"description": "no body"}}}}
            },
            "components": {
                "schemas": {
                    "Thing": {"type": "object", "required": ["id", "name"],
                              "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}},
                    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
                },
                "responses": {"Error": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}
            }
        }))
    }

    #[test]
    fn answers_are_checked_against_status_and_schema() {
        let d = doc();
        assert_eq!(
            d.check_answer("GET", "/things/7?x=1", 200, r#"{"id": 7, "name": "a"}"#),
            Ok("/things/{id}".into())
        );
        let renamed = d.check_answer("GET", "/things/7", 200, r#"{"id": 7, "title": "a"}"#);
        assert!(
            renamed.unwrap_err().contains("name"),
            "a renamed field fails"
        );
        let typed = d.check_answer("GET", "/things/7", 200, r#"{"id": "7", "name": "a"}"#);
        assert!(typed.is_err(), "a field of another type fails");
        assert!(
            d.check_answer("GET", "/things/7", 500, "{}").is_err(),
            "undocumented status"
        );
        assert!(
            d.check_answer("POST", "/things/7", 200, "{}").is_err(),
            "undocumented method"
        );
        assert!(
            d.check_answer("GET", "/nothing", 200, "{}").is_err(),
            "undocumented path"
        );
        assert!(
            d.check_answer("GET", "/things/7", 404, r#"{"message": "x"}"#)
                .is_err(),
            "through a response $ref"
        );
        assert!(d
            .check_answer("GET", "/things/7", 404, r#"{"error": "x"}"#)
            .is_ok());
        assert!(d.check_answer("GET", "/things/7", 200, "not json").is_err());
        assert_eq!(
            d.check_answer("GET", "/things/by-name/a", 200, ""),
            Ok("/things/by-name/{name}".into()),
            "the most literal template wins; no schema, no body check"
        );
        assert_eq!(d.operations().len(), 2);
        assert!(d.documents("get", "/things/1") && !d.documents("put", "/things/1"));
        assert!(!d.documents("get", "/things/1/more"));
    }

    #[test]
    fn the_minimal_instance_has_only_what_is_required_and_is_valid() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "required": ["id", "at", "day", "kind", "price", "nested"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "at": {"type": "string", "format": "date-time"},
                "day": {"type": "string", "format": "date"},
                "kind": {"enum": ["A", "B"]},
                "price": {"type": "integer", "minimum": 1},
                "nested": {"$ref": "#/definitions/N"},
                "note": {"type": ["string", "null"]}
            },
            "definitions": {"N": {"type": "object", "required": ["n"], "properties": {"n": {"type": "boolean"}}}}
        });
        let m = minimal(&schema, &schema).unwrap();
        assert_eq!(
            m,
            json!({"id": "00000000-0000-4000-8000-000000000001", "at": "2031-01-01T00:00:00Z",
                   "day": "2031-01-01", "kind": "A", "price": 1, "nested": {"n": false}})
        );
        check(&schema, &m).unwrap();
        let mut dropped = m.clone();
        dropped.as_object_mut().unwrap().remove("price");
        assert!(check(&schema, &dropped).is_err(), "a dropped field fails");
    }

    #[test]
    fn templates_are_filled_everywhere() {
        let t = json!({"path": "/p/{id}/x", "body": {"bookId": "{id}", "n": 1, "list": ["{id}"]}});
        assert_eq!(
            fill(&t, &[("id", "b-1")]),
            json!({"path": "/p/b-1/x", "body": {"bookId": "b-1", "n": 1, "list": ["b-1"]}})
        );
    }

    #[test]
    fn the_book_payment_contract_reads_and_its_examples_match_its_schemas() {
        let interactions = book_payment().unwrap();
        assert!(interactions.len() >= 5);
        for i in &interactions {
            let r = &i["response"];
            check(&r["body"], &r["example"])
                .unwrap_or_else(|e| panic!("{}: example does not match: {e}", i["name"]));
            assert!(
                r["status"].as_array().is_some_and(|s| !s.is_empty()),
                "{}",
                i["name"]
            );
        }
    }
}

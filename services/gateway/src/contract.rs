//! The public API as one OpenAPI document: the gateway's own routes (tokens, key set,
//! probes) and every service's API exactly as the gateway routes it, merged from the
//! documents checked in beside each service (compiled in), so it cannot drift from them.
//! Served at the gateway's `GET /openapi.json`.

use anyhow::Context as _;
use serde_json::{Map, Value};

/// The gateway's own document.
const GATEWAY: &str = include_str!("../openapi.json");

/// Each routed service's document.
const SERVICES: [(&str, &str); 5] = [
    ("book", include_str!("../../book/openapi.json")),
    ("payment", include_str!("../../payment/openapi.json")),
    ("house", include_str!("../../house/openapi.json")),
    ("mypage", include_str!("../../mypage/openapi.json")),
    (
        "notification",
        include_str!("../../notification/openapi.json"),
    ),
];

/// The service the gateway sends a path to, by its first segment (what
/// [`crate::proxy::Routes`] routes by).
pub fn upstream_of(path: &str) -> Option<&'static str> {
    let first = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    match first {
        "books" => Some("book"),
        "payments" | "faults" => Some("payment"),
        "houses" => Some("house"),
        "mypages" | "availability" => Some("mypage"),
        "notifications" => Some("notification"),
        _ => None,
    }
}

/// The public document: the gateway's, with each service's paths that the gateway routes
/// to that service (its probes, metrics and document are its own, not the public API's),
/// each operation tagged with its service, and the components of all (a component two
/// documents define differently is an error, not a silent choice).
pub fn public_document() -> anyhow::Result<Value> {
    let mut doc: Value = serde_json::from_str(GATEWAY).context("the gateway's openapi.json")?;
    doc["info"]["title"] = Value::from("housebook public API");
    doc["info"]["description"] = Value::from(
        "Everything a client reaches through the gateway: tokens and the key set, and the \
         routes of book, payment, house, mypage and notification (each operation tagged \
         with the service that answers it). Every routed call is limited per token \
         subject: over the limit it is answered 429 with Retry-After and not forwarded; a \
         declared body over the limit is answered 413.",
    );
    tag_all(&mut doc, "gateway");
    for (service, text) in SERVICES {
        let mut theirs: Value =
            serde_json::from_str(text).with_context(|| format!("{service}'s openapi.json"))?;
        tag_all(&mut theirs, service);
        let paths = theirs["paths"]
            .as_object()
            .with_context(|| format!("{service}'s document has no paths"))?;
        for (path, item) in paths {
            if upstream_of(path) != Some(service) {
                continue; // the service's own probes, metrics and document
            }
            let mut item = item.clone();
            add_edge_answers(&mut item);
            let ours = object(&mut doc, "paths")?;
            anyhow::ensure!(
                ours.insert(path.clone(), item).is_none(),
                "{path} is documented twice"
            );
        }
        if let Some(components) = theirs.get("components").and_then(Value::as_object) {
            for (kind, entries) in components {
                let into = object(object_value(&mut doc, "components")?, kind)?;
                for (name, value) in entries.as_object().into_iter().flatten() {
                    match into.get(name) {
                        Some(existing) => anyhow::ensure!(
                            existing == value,
                            "components.{kind}.{name} differs between the gateway's and {service}'s documents"
                        ),
                        None => {
                            into.insert(name.clone(), value.clone());
                        }
                    }
                }
            }
        }
    }
    Ok(doc)
}

/// What the gateway itself may answer to any routed call, before or instead of the
/// service (`crate::proxy::forward`); a service's own description of the same status is
/// kept (it answers it too, and says when).
const EDGE_ANSWERS: [(&str, &str); 9] = [
    ("400", "the path has dot segments, encoded slashes, backslashes or control characters (the gateway)"),
    ("408", "the body did not arrive within the body timeout, or the answer within the request timeout"),
    ("401", "no token, or one that is expired, forged or not for this audience"),
    ("403", "a service identity, which acts only inside the fleet (the gateway)"),
    ("413", "a body over the limit (the gateway)"),
    ("429", "too many calls for this token's subject, too many refused calls from this address, or too many of this address's requests in progress; see Retry-After (the gateway)"),
    ("502", "the service failed to answer (the gateway)"),
    ("503", "no replica of the service is ready; see Retry-After (the gateway)"),
    ("504", "the service did not answer in time (the gateway)"),
];

/// Adds [`EDGE_ANSWERS`] to every operation of a routed path.
fn add_edge_answers(item: &mut Value) {
    for op in operations(item) {
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        for (status, description) in EDGE_ANSWERS {
            responses.entry(status).or_insert_with(|| {
                serde_json::json!({
                    "description": description,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
                })
            });
        }
    }
}

/// The operations of a path item.
fn operations(item: &mut Value) -> impl Iterator<Item = &mut Map<String, Value>> {
    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    item.as_object_mut()
        .into_iter()
        .flat_map(|m| m.iter_mut())
        .filter(|(k, _)| METHODS.contains(&k.as_str()))
        .filter_map(|(_, v)| v.as_object_mut())
}

/// `doc[key]` as an object, created if missing.
fn object<'a>(doc: &'a mut Value, key: &str) -> anyhow::Result<&'a mut Map<String, Value>> {
    object_value(doc, key)?
        .as_object_mut()
        .with_context(|| format!("{key} is not an object"))
}

fn object_value<'a>(doc: &'a mut Value, key: &str) -> anyhow::Result<&'a mut Value> {
    let map = doc.as_object_mut().context("a document is an object")?;
    Ok(map
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new())))
}

/// Tags every operation of a document with `tag`.
fn tag_all(doc: &mut Value, tag: &str) {
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            for op in operations(item) {
                op.insert("tags".into(), Value::from(vec![tag]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if k == "$ref" {
                        out.extend(v.as_str().map(str::to_owned));
                    }
                    refs(v, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_routed_path_of_every_service_is_in_it_and_nothing_else() {
        let doc = public_document().unwrap();
        let mut gateway: Value = serde_json::from_str(GATEWAY).unwrap();
        tag_all(&mut gateway, "gateway");
        let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
        for (service, text) in SERVICES {
            let theirs: Value = serde_json::from_str(text).unwrap();
            for (path, item) in theirs["paths"].as_object().unwrap() {
                let public = upstream_of(path) == Some(service);
                if !public {
                    // A service's own probes, metrics and document: the public document
                    // has the gateway's (or nothing), never the service's.
                    assert_eq!(
                        doc["paths"].get(path),
                        gateway["paths"].get(path),
                        "{service} {path}"
                    );
                    continue;
                }
                assert!(paths.contains(&path), "{service} {path}");
                {
                    // The same operations, tagged with the service.
                    let ours = &doc["paths"][path];
                    for (method, op) in item.as_object().unwrap() {
                        assert_eq!(ours[method]["tags"], serde_json::json!([service]));
                        // The service's answers as it states them, and the edge's.
                        let ours = ours[method]["responses"].as_object().unwrap();
                        for (status, answer) in op["responses"].as_object().unwrap() {
                            assert_eq!(&ours[status], answer, "{method} {path} {status}");
                        }
                        for (status, _) in EDGE_ANSWERS {
                            assert!(ours.contains_key(status), "{method} {path} {status}");
                        }
                    }
                }
            }
        }
        for own in [
            "/oauth/token",
            "/.well-known/jwks.json",
            "/openapi.json",
            "/healthz",
        ] {
            assert!(paths.contains(&&own.to_owned()), "{own}");
        }
        // Each path reaches the service whose document it came from; none is unrouted.
        for path in &paths {
            let from_gateway = gateway["paths"].get(path.as_str()).is_some();
            assert!(
                from_gateway || upstream_of(path).is_some(),
                "{path} is routed nowhere"
            );
        }
    }

    /// The paging bounds the services enforce (`platform::http::Page`) are the ones every
    /// listing documents.
    #[test]
    fn every_listing_states_the_paging_bounds_the_services_enforce() {
        let doc = public_document().unwrap();
        let mut listings = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for p in op["parameters"].as_array().into_iter().flatten() {
                    let schema = &p["schema"];
                    match p["name"].as_str() {
                        Some("limit") => {
                            listings += 1;
                            assert_eq!(schema["minimum"], 1, "{method} {path}");
                            assert_eq!(
                                schema["maximum"],
                                platform::http::Page::MAX,
                                "{method} {path}"
                            );
                        }
                        Some("offset") => assert_eq!(schema["minimum"], 0, "{method} {path}"),
                        _ => {}
                    }
                }
            }
        }
        assert_eq!(
            listings, 5,
            "books, payments, houses, mypages, notifications"
        );
    }

    #[test]
    fn every_reference_resolves() {
        let doc = public_document().unwrap();
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let pointer = r.strip_prefix('#').unwrap();
            assert!(doc.pointer(pointer).is_some(), "{r} resolves");
        }
    }
}

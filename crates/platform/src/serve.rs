//! Serving HTTP: a service's router beside `/healthz`, `/readyz` and `/metrics`, with
//! request ids, route metrics, JSON fallbacks, the body limit and the bounds of
//! [`crate::server`], and a drain on shutdown. Used by the application shell
//! (`runtime::Runtime`) and by the gateway, which has no database or broker.

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::health::{self, Health};
use crate::metrics::{self, Metrics};
use crate::server::{Bounds, Capacity, Connections, Intake};
use crate::settings::HttpSettings;

/// Serves `api` beside `/healthz`, `/readyz` and `/metrics` (the last only on
/// `http.admin_port` when one is set, which serves all three), with request ids, route metrics, JSON
/// fallbacks, the body limit and the bounds of [`crate::server`], until `shutdown`; then
/// readiness turns false, the listeners keep accepting for `drain_secs`, and in-flight
/// requests finish.
pub async fn serve_http(
    listener: TcpListener,
    api: Router,
    http: &HttpSettings,
    metrics: Metrics,
    health: Health,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let public = Port {
        listener,
        router: api,
        intake: Intake::default(),
    };
    serve_edge(public, None, false, http, metrics, health, shutdown).await
}

/// One listener of the API and what its bounds know of its callers.
pub struct Port {
    /// Where it listens.
    pub listener: TcpListener,
    /// What it serves.
    pub router: Router,
    /// How its callers are told apart, and what is checked before a body is read.
    pub intake: Intake,
}

/// [`serve_http`] for an edge: the public port's callers told apart as its intake says;
/// with `unready_when_full`, readiness false while the public port is full (a full edge
/// leaves the load balancer's rotation until a place frees); and `internal`'s router (with
/// the same bounds, metrics and request ids) on a listener of its own that a deployment
/// keeps from the public edge, which stops with the others.
pub async fn serve_edge(
    public: Port,
    internal: Option<Port>,
    unready_when_full: bool,
    http: &HttpSettings,
    metrics: Metrics,
    health: Health,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let Port {
        listener,
        router: api,
        intake,
    } = public;
    let probes = Router::new()
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready).with_state(health.clone()));
    let ops = probes.clone().route(
        "/metrics",
        get(metrics::handler).with_state(metrics.clone()),
    );
    let bounded = |router: Router, bounds: Bounds| {
        router.route_layer(axum::middleware::from_fn_with_state(
            bounds,
            crate::server::bound,
        ))
    };
    let capacity = Capacity {
        connections: Connections::http(http),
        bounds: Bounds::new(http, intake),
    };
    if unready_when_full {
        let capacity = capacity.clone();
        health.require(move || capacity.full());
    }
    let api = bounded(api, capacity.bounds.clone());
    let admin = match http.admin_port {
        Some(port) => Some(TcpListener::bind((http.host.as_str(), port)).await?),
        None => None,
    };
    // With an admin port, the public one keeps the probes (a load balancer checks the
    // port it sends to, and they say only "ok" or "draining") but not the metrics.
    let (app, ops) = if admin.is_some() {
        (api.merge(probes), Some(ops))
    } else {
        (api.merge(ops), None)
    };
    let limit = http.body_limit_bytes;
    let finish = |router: Router| {
        router
            .method_not_allowed_fallback(move |req: axum::extract::Request| {
                crate::http::method_not_allowed(limit, req)
            })
            .route_layer(axum::middleware::from_fn_with_state(
                crate::http::Observer {
                    metrics: metrics.clone(),
                    trust_trace_context: http.trust_trace_context,
                },
                crate::http::observe,
            ))
            .fallback(move |req: axum::extract::Request| crate::http::not_found(limit, req))
            .layer(DefaultBodyLimit::max(http.body_limit_bytes))
            .layer(axum::middleware::from_fn_with_state(
                http.body_limit_bytes,
                crate::http::reject_oversized,
            ))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(axum::middleware::from_fn(crate::http::bound_request_id))
            .layer(axum::middleware::map_response(crate::http::answer_headers))
    };
    tracing::info!(
        port = listener.local_addr().map(|a| a.port()).unwrap_or(0),
        admin_port = admin
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port()),
        "listening"
    );
    // Stops every listener together, after the drain.
    let stop_accepting = CancellationToken::new();
    let drain = Duration::from_secs(http.drain_secs);
    let drained = stop_accepting.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        health.start_draining();
        tokio::time::sleep(drain).await;
        drained.cancel();
    });
    // Every listener is served alike, with connections of its own, and stops with the
    // others.
    let mut listeners = vec![(listener, app, capacity.connections)];
    if let (Some(admin), Some(ops)) = (admin, ops) {
        listeners.push((admin, ops, Connections::http(http)));
    }
    if let Some(Port {
        listener,
        router,
        intake,
    }) = internal
    {
        let router = bounded(router, Bounds::new(http, intake));
        listeners.push((listener, router, Connections::http(http)));
    }
    let servers = listeners
        .into_iter()
        .map(|(listener, router, connections)| {
            crate::server::serve(
                listener,
                finish(router),
                http,
                connections,
                stop_accepting.clone().cancelled_owned(),
            )
        });
    futures::future::join_all(servers)
        .await
        .into_iter()
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// Reads one HTTP/1.1 answer (head and a `content-length` body) from `conn`.
    async fn answer(conn: &mut tokio::net::TcpStream) -> String {
        let mut got = Vec::new();
        let mut byte = [0u8; 1];
        while !got.ends_with(b"\r\n\r\n") {
            assert_eq!(
                conn.read(&mut byte).await.unwrap(),
                1,
                "closed: {}",
                String::from_utf8_lossy(&got)
            );
            got.push(byte[0]);
        }
        let head = String::from_utf8(got).unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        conn.read_exact(&mut body).await.unwrap();
        head
    }

    /// A refusal made by the router — no such route, or not this method — keeps the
    /// connection for the next request, even when the body comes after the answer could
    /// have been written (a client that sends its head and body apart).
    #[tokio::test]
    async fn a_refusal_by_route_reads_the_body_and_keeps_the_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let api = Router::new().route("/only-post", axum::routing::post(|| async { "ok" }));
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let http = HttpSettings::default();
            let metrics = Metrics::new("t").unwrap();
            serve_http(listener, api, &http, metrics, Health::new(None), stop).await
        });
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        for (method, path, status) in [
            ("GET", "/nope", "404"),
            ("GET", "/only-post", "405"),
            ("DELETE", "/only-post", "405"),
            ("OPTIONS", "/nope", "404"),
            ("POST", "/only-post", "200"),
        ] {
            let head = format!("{method} {path} HTTP/1.1\r\nhost: t\r\ncontent-length: 5\r\n\r\n");
            conn.write_all(head.as_bytes()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(30)).await;
            conn.write_all(b"hello").await.unwrap();
            let got = answer(&mut conn).await;
            assert!(
                got.starts_with(&format!("HTTP/1.1 {status} ")),
                "{method} {path}: {got}"
            );
            assert!(
                !got.to_ascii_lowercase().contains("connection: close"),
                "{method} {path}: {got}"
            );
        }
        shutdown.cancel();
    }
}

//! The HTTP/1.1 server every service runs, with every resource a caller could exhaust
//! bounded (SPEC §7):
//!
//! - **connections**: at most `max_connections` open; beyond, new ones wait in the
//!   kernel's listen backlog (nothing is allocated for them);
//! - **slow clients**: a request's head must arrive within `header_read_timeout_ms`
//!   (slowloris), and an idle keep-alive connection is closed after the same time;
//! - **headers**: at most `max_headers` of them and `max_header_bytes` in all (`431`);
//! - **work in progress**: at most `max_in_flight` API requests at once; beyond, `503` +
//!   `Retry-After` at once (load shedding), so a flood costs a refusal, not a queue;
//! - **time**: a request, reading its body included, is answered within
//!   `request_timeout_ms` (`408`);
//! - **bodies**: `body_limit_bytes` (`413`), in [`crate::runtime::serve_http`].
//!
//! Health and metrics are exempt from the in-flight bound and the timeout, so probes
//! answer while the API sheds load. hyper's own server is used directly (as `axum::serve`
//! does underneath) because `axum::serve` sets none of these bounds.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

use crate::error::ApiError;
use crate::settings::HttpSettings;

/// How long the fleet's own HTTP clients keep an idle connection: less than the
/// servers' `header_read_timeout_ms`, which also closes idle keep-alive connections, so a
/// request is never sent down a connection the server is closing at that moment.
pub const CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `stop` completes; then accepts no more, lets requests
/// in progress finish (at most `request_timeout_ms` more) and returns. Every request
/// carries the peer's address as [`ConnectInfo<SocketAddr>`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    http: &HttpSettings,
    stop: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let connections = Arc::new(Semaphore::new(http.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(http.header_read_timeout_ms.max(1)))
        .max_headers(http.max_headers.max(1))
        .max_header_size(http.max_header_bytes.max(1024));
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: not
                    // fatal; wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let service = app.clone().map_request(move |mut req: Request<_>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        });
        let conn =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // Errors here are the client's doing (reset, timeout, malformed head, which
            // hyper has already answered where it could): nothing for an operator.
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    let grace = Duration::from_millis(http.request_timeout_ms) + Duration::from_secs(1);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the request timeout; closing them");
    }
    Ok(())
}

/// The in-flight bound and the request timeout, as one middleware.
#[derive(Clone)]
pub struct Bounds {
    in_flight: Arc<Semaphore>,
    timeout: Duration,
}

impl Bounds {
    /// The bounds the settings name.
    pub fn new(http: &HttpSettings) -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(http.max_in_flight.max(1))),
            timeout: Duration::from_millis(http.request_timeout_ms.max(1)),
        }
    }
}

/// Refuses a request at once when `max_in_flight` are in progress, and answers `408` when
/// one is not done within the request timeout.
pub async fn bound(State(bounds): State<Bounds>, req: Request, next: Next) -> Response {
    let Ok(_permit) = bounds.in_flight.clone().try_acquire_owned() else {
        return ApiError::unavailable(
            "the server is at capacity; retry shortly",
            Duration::from_secs(1),
        )
        .into_response();
    };
    match tokio::time::timeout(bounds.timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request was not complete within {} ms",
                bounds.timeout.as_millis()
            ),
        )
        .into_response(),
    }
}

/// The peer of a request served by [`serve`] (none in a unit test calling the router).
pub fn peer(req_extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    req_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| *a)
}

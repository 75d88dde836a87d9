//! Serving gRPC as the fleet serves HTTP: a service's routes beside the standard health
//! service (its overall status and the service's follow `/readyz`, within a quarter of a
//! second) and, where enabled (`grpc.reflection`: `./dev` yes, a cluster no), server
//! reflection (v1 and v1alpha), so standard clients such as grpcurl need no `.proto` file.
//!
//! Bounded as the gateway is (issue 18): calls per token subject and refused calls per
//! client address are rate limited (`RESOURCE_EXHAUSTED` + `RetryInfo` beyond; [`Edge`]),
//! at most `max_connections` connections are open (more wait in the listen backlog), a
//! connection must start its HTTP/2 handshake within the header read timeout, an answer
//! the client does not read within the write timeout ends the connection
//! ([`crate::server::Guarded`]), and a peer that stops answering keep-alive pings is
//! dropped. On shutdown the health service says `NOT_SERVING` at once, calls keep being
//! served for `drain_secs`, and in-flight calls finish.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::{Code, Request, Status};
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;
use tonic_types::{ErrorDetails, StatusExt};

use crate::auth::{Caller, TokenVerifier};
use crate::health::Health;
use crate::limit::{Limiter, Rate};
use crate::server::{ConnectionLimits, Guarded};
use crate::settings::HttpSettings;
use crate::ApiError;

/// The gRPC listener.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct GrpcSettings {
    /// Port to serve gRPC on; none: gRPC is not served. `0` picks a free one (tests).
    pub port: Option<u16>,
    /// Largest request message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Calls at once on one connection; more wait (HTTP/2 flow control), and a connection
    /// over the limit is shed with `UNAVAILABLE`.
    pub max_concurrent_streams: u32,
    /// Serve server reflection (what `grpcurl` asks to list and describe the API). Off
    /// unless enabled: `./dev` enables it; a cluster leaves it off (issue 18: it answered
    /// anyone).
    pub reflection: bool,
    /// Connections open at most; more wait in the listen backlog.
    pub max_connections: usize,
    /// Calls per token subject (as the gateway's API limit).
    pub rate_limit: Rate,
    /// Refused (unauthenticated) calls per client address; beyond, `RESOURCE_EXHAUSTED`.
    pub unauthenticated: Rate,
}

impl Default for GrpcSettings {
    fn default() -> Self {
        Self {
            port: None,
            max_message_bytes: 64 * 1024,
            max_concurrent_streams: 128,
            reflection: false,
            max_connections: 256,
            rate_limit: Rate::PER_SUBJECT,
            unauthenticated: Rate::REFUSED_PER_ADDRESS,
        }
    }
}

/// Who calls, at the edge: the token checked as for REST, within the rate limits.
#[derive(Clone)]
pub struct Edge {
    verifier: TokenVerifier,
    per_subject: Limiter,
    refused_per_address: Limiter,
}

impl Edge {
    /// Checks tokens with `verifier` and limits calls as `settings` say.
    pub fn new(verifier: TokenVerifier, settings: &GrpcSettings) -> Self {
        Self {
            verifier,
            per_subject: Limiter::new(settings.rate_limit),
            refused_per_address: Limiter::new(settings.unauthenticated),
        }
    }

    /// The caller a call's token names, within its rate limit. A refused token counts
    /// against the client's address: a refusal is cheap, not free (a signature check).
    pub fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let value = request
            .metadata()
            .get("authorization")
            .map(|v| v.to_str().unwrap_or(""));
        match self.verifier.caller(value) {
            Ok(caller) => {
                self.per_subject.admit(&caller.id).map_err(exhausted)?;
                Ok(caller)
            }
            Err(refused) => {
                let from = request
                    .remote_addr()
                    .map(|a| a.ip().to_string())
                    .unwrap_or_default();
                self.refused_per_address.admit(&from).map_err(exhausted)?;
                Err(unauthenticated(refused))
            }
        }
    }
}

/// A refused token: `UNAUTHENTICATED`, with the verifier's (public) reason.
fn unauthenticated(refused: ApiError) -> Status {
    Status::unauthenticated(refused.message)
}

/// A rate limit reached: `RESOURCE_EXHAUSTED` with when to come back (`RetryInfo`).
fn exhausted(limited: ApiError) -> Status {
    match limited.retry_after {
        Some(after) => Status::with_error_details(
            Code::ResourceExhausted,
            limited.message,
            ErrorDetails::with_retry_info(Some(after)),
        ),
        None => Status::resource_exhausted(limited.message),
    }
}

impl Connected for Guarded<TcpStream> {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        TcpConnectInfo {
            local_addr: self.get_ref().local_addr().ok(),
            remote_addr: self.get_ref().peer_addr().ok(),
        }
    }
}

/// The connections `listener` accepts, at most `max_connections` open at once, each
/// bounded as the HTTP server's are.
fn incoming(
    listener: TcpListener,
    max_connections: usize,
    limits: ConnectionLimits,
) -> impl futures::Stream<Item = std::io::Result<Guarded<TcpStream>>> {
    let places = Arc::new(Semaphore::new(max_connections.max(1)));
    futures::stream::unfold((listener, places), move |(listener, places)| async move {
        let (stream, _) = crate::server::accept(&listener, &places, limits).await?;
        Some((Ok(stream), (listener, places)))
    })
}

/// What a service serves over gRPC.
pub struct Api {
    /// Its full name, as clients and the health service name it.
    pub name: &'static str,
    /// Its routes (`Routes::new(XServer::new(…))`).
    pub routes: Routes,
    /// The encoded descriptors of its `.proto` files, for reflection.
    pub descriptors: &'static [u8],
}

/// Serves `api` with health and (if enabled) reflection on `listener` until `shutdown`
/// (module documentation).
pub async fn serve(
    listener: TcpListener,
    api: Api,
    settings: &GrpcSettings,
    http: &HttpSettings,
    health: Health,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let mut routes = api.routes.add_service(health_service);
    if settings.reflection {
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(api.descriptors)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        routes = routes
            .add_service(reflection().build_v1()?)
            .add_service(reflection().build_v1alpha()?);
    }
    let follow = tokio::spawn(follow_readiness(
        health,
        reporter,
        api.name,
        shutdown.clone(),
    ));

    let stop = CancellationToken::new();
    let drain = Duration::from_secs(http.drain_secs);
    let stopping = stop.clone();
    let drained = shutdown.clone();
    tokio::spawn(async move {
        drained.cancelled().await;
        tokio::time::sleep(drain).await;
        stopping.cancel();
    });
    tracing::info!(
        port = listener.local_addr().map(|a| a.port()).unwrap_or(0),
        "grpc listening"
    );
    let trust_trace_context = http.trust_trace_context;
    let served = tonic::transport::Server::builder()
        // Each call in a span of the caller's trace (`traceparent` metadata), as for REST.
        .trace_fn(move |request| {
            let span = tracing::info_span!(
                "grpc",
                path = %request.uri().path(),
                trace_id = tracing::field::Empty,
            );
            let parent = request
                .headers()
                .get(crate::trace::TRACEPARENT)
                .and_then(|v| v.to_str().ok());
            crate::trace::continue_or_link(&span, parent, trust_trace_context);
            span
        })
        .timeout(Duration::from_millis(http.request_timeout_ms))
        .concurrency_limit_per_connection(settings.max_concurrent_streams as usize)
        .load_shed(true)
        .max_concurrent_streams(settings.max_concurrent_streams)
        .http2_max_header_list_size(u32::try_from(http.max_header_bytes).unwrap_or(u32::MAX))
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            incoming(
                listener,
                settings.max_connections,
                ConnectionLimits::http2(http),
            ),
            stop.cancelled_owned(),
        )
        .await;
    follow.abort();
    served.map_err(Into::into)
}

/// How often the health service's statuses are brought in line with readiness.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// The health service's overall status and the service's follow readiness (checked every
/// [`FOLLOW_EVERY`], and at once when shutdown begins).
async fn follow_readiness(
    health: Health,
    reporter: HealthReporter,
    service: &'static str,
    shutdown: CancellationToken,
) {
    let mut last = None;
    loop {
        let serving = !shutdown.is_cancelled() && health.check().await.is_ok();
        if last != Some(serving) {
            let s = if serving {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            reporter.set_service_status("", s).await;
            reporter.set_service_status(service, s).await;
            last = Some(serving);
        }
        if shutdown.is_cancelled() {
            return;
        }
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(FOLLOW_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_refusals_are_unauthenticated_or_exhausted_with_when_to_come_back() {
        let s = unauthenticated(ApiError::unauthorized("missing bearer token"));
        assert_eq!(
            (s.code(), s.message()),
            (Code::Unauthenticated, "missing bearer token")
        );
        let once = Limiter::new(Rate {
            per_second: 0.001,
            burst: 1.0,
        });
        once.admit("alice").unwrap();
        let s = exhausted(once.admit("alice").unwrap_err());
        assert_eq!(s.code(), Code::ResourceExhausted);
        let retry = s
            .get_error_details()
            .retry_info()
            .and_then(|r| r.retry_delay);
        assert!(
            retry.is_some_and(|d| d >= Duration::from_secs(1)),
            "{retry:?}"
        );
    }
}

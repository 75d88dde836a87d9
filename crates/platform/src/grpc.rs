//! Serving gRPC as the fleet serves HTTP: a service's routes beside the standard health
//! service (its overall status and the service's follow `/readyz`, within a quarter of a
//! second) and, where enabled (`grpc.reflection`: `./dev` yes, a cluster no), server
//! reflection (v1 and v1alpha), so standard clients such as grpcurl need no `.proto` file.
//!
//! Bounded as the gateway is (issue 18): calls per token subject and refused calls per
//! client address are rate limited (`RESOURCE_EXHAUSTED` + `RetryInfo` beyond; [`Edge`]),
//! at most `max_connections` connections are open (more wait in the listen backlog), one
//! address holds at most `max_connections_per_address` of them (more are closed at once)
//! and has at most `max_calls_per_address` calls in progress (`RESOURCE_EXHAUSTED`
//! beyond: [`PerAddress`]), a
//! connection must start its HTTP/2 handshake within the header read timeout, an answer
//! the client does not read within the write timeout ends the connection
//! ([`crate::server::Guarded`]), and a peer that stops answering keep-alive pings is
//! dropped. On shutdown the health service says `NOT_SERVING` at once, calls keep being
//! served for `drain_secs`, and in-flight calls finish.

use std::time::Duration;

use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::{Code, Request, Status};
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;
use tonic_types::{ErrorDetails, StatusExt};

use crate::auth::{Caller, TokenVerifier};
use crate::fair::Shares;
use crate::health::Health;
use crate::limit::{Limiter, Rate};
use crate::server::{ConnectionLimits, Connections, Guarded, OverShare};
use crate::settings::HttpSettings;
use crate::ApiError;

/// The gRPC listener.
#[derive(schemars::JsonSchema, Debug, Clone, serde::Serialize, Deserialize)]
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
    /// Connections one client address may hold; beyond, its new ones are closed at once.
    /// `0`: no cap of its own.
    pub max_connections_per_address: usize,
    /// Calls one client address may have in progress; beyond, `RESOURCE_EXHAUSTED` at
    /// once. `0`: no cap of its own.
    pub max_calls_per_address: usize,
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
            // A quarter each, as the HTTP server's.
            max_connections_per_address: 64,
            max_calls_per_address: 128,
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

/// The connections `listener` accepts, within `places`, each bounded as the HTTP
/// server's are.
fn incoming(
    listener: TcpListener,
    places: Connections,
    limits: ConnectionLimits,
) -> impl futures::Stream<Item = std::io::Result<Guarded<TcpStream>>> {
    futures::stream::unfold((listener, places), move |(listener, places)| async move {
        let (stream, _) = crate::server::accept(&listener, &places, limits).await?;
        Some((Ok(stream), (listener, places)))
    })
}

/// The calls in progress per client address: a call beyond its address's share is
/// answered `RESOURCE_EXHAUSTED` (with `RetryInfo`) at once, so that one source cannot
/// take every call place of every connection it may open.
#[derive(Clone)]
pub struct PerAddress(pub Shares);

impl<S> tower::Layer<S> for PerAddress {
    type Service = PerAddressService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PerAddressService {
            inner,
            shares: self.0.clone(),
        }
    }
}

/// [`PerAddress`] around a service.
#[derive(Clone)]
pub struct PerAddressService<S> {
    inner: S,
    shares: Shares,
}

impl<S, B> tower::Service<axum::http::Request<B>> for PerAddressService<S>
where
    S: tower::Service<axum::http::Request<B>, Response = axum::http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        let from = req
            .extensions()
            .get::<TcpConnectInfo>()
            .and_then(TcpConnectInfo::remote_addr)
            .map(|a| a.ip());
        let share = match from {
            Some(ip) => match self.shares.take(ip) {
                Some(share) => Some(share),
                None => {
                    let mut limited = ApiError::new(
                        axum::http::StatusCode::TOO_MANY_REQUESTS,
                        "too_many_in_progress",
                        "too many calls in progress from this address; retry shortly",
                    );
                    limited.retry_after = Some(Duration::from_secs(1));
                    let refused = exhausted(limited).into_http();
                    return Box::pin(futures::future::ready(Ok(refused)));
                }
            },
            None => None,
        };
        let call = self.inner.call(req);
        Box::pin(async move {
            let answer = call.await;
            drop(share);
            answer
        })
    }
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
        .layer(PerAddress(Shares::new(settings.max_calls_per_address)))
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            incoming(
                listener,
                Connections::new(
                    settings.max_connections,
                    settings.max_connections_per_address,
                    OverShare::Close,
                ),
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

    /// A call beyond its address's share is refused at once with `RESOURCE_EXHAUSTED`
    /// and when to retry; another address is served; the share comes back with the answer.
    #[tokio::test]
    async fn one_address_has_only_its_share_of_calls_in_progress() {
        use tower::{Service as _, ServiceExt as _};
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
        let inner = {
            let gate = gate.clone();
            tower::service_fn(move |_req: axum::http::Request<()>| {
                let gate = gate.clone();
                async move {
                    let _open = gate.acquire().await;
                    Ok::<_, std::convert::Infallible>(axum::http::Response::new(
                        tonic::body::Body::empty(),
                    ))
                }
            })
        };
        let shares = Shares::new(1);
        let mut svc = tower::Layer::layer(&PerAddress(shares.clone()), inner);
        let from = |ip: &str| {
            let mut req = axum::http::Request::new(());
            req.extensions_mut().insert(TcpConnectInfo {
                local_addr: None,
                remote_addr: Some(std::net::SocketAddr::new(ip.parse().unwrap(), 5000)),
            });
            req
        };
        let first = svc.ready().await.unwrap().call(from("10.0.0.1"));
        let first = tokio::spawn(first);
        while shares.held("10.0.0.1".parse().unwrap()) == 0 {
            tokio::task::yield_now().await;
        }
        let refused = svc
            .ready()
            .await
            .unwrap()
            .call(from("10.0.0.1"))
            .await
            .unwrap();
        let status = Status::from_header_map(refused.headers()).unwrap();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(status.get_error_details().retry_info().is_some());
        let other = tokio::spawn(svc.ready().await.unwrap().call(from("10.0.0.2")));
        gate.add_permits(2);
        assert!(other
            .await
            .unwrap()
            .unwrap()
            .headers()
            .get("grpc-status")
            .is_none());
        first.await.unwrap().unwrap();
        assert_eq!(shares.sources(), 0, "given back with the answers");
    }

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

//! The booking gRPC adapter (SPEC §4, the seed's hexagonal checkpoint): the same calls as
//! the REST adapter ([`super::calls`]), over `proto/housebook/book/v1/bookings.proto`.
//!
//! Tokens come as `authorization: Bearer …` metadata and are checked as for REST. The
//! fleet's errors map to gRPC codes ([`status`]); a `503` becomes `UNAVAILABLE` with a
//! `google.rpc.RetryInfo` detail. Beside the service: the standard health service (whose
//! overall status follows `/readyz`, within a quarter of a second) and, where enabled
//! (`grpc.reflection`: `./dev` yes, a cluster no), server reflection (v1 and v1alpha), so
//! standard clients such as grpcurl need no `.proto` file.
//!
//! Bounded as the gateway is (issue 18): calls per token subject and refused calls per
//! client address are rate limited (`RESOURCE_EXHAUSTED` + `RetryInfo` beyond), at most
//! `max_connections` connections are open (more wait in the listen backlog), a connection
//! must start its HTTP/2 handshake within the header read timeout, an answer the client
//! does not read within the write timeout ends the connection, and a peer that stops
//! answering keep-alive pings is dropped.

use std::time::Duration;

use std::net::SocketAddr;
use std::sync::Arc;

use platform::auth::{Caller, TokenVerifier};
use platform::health::Health;
use platform::http::Page;
use platform::limit::{Limiter, Rate};
use platform::server::{ConnectionLimits, Guarded};
use platform::settings::HttpSettings;
use platform::ApiError;
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request, Response, Status};
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::models::Booking;
use crate::domain::service::BookService;
use crate::domain::service::{BookError, CancelBookingError, GetError};
use crate::inbound::calls::{self, ListError, StayAsked};

/// The generated messages, client and server.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("housebook.book.v1");

    /// The encoded descriptors of `bookings.proto`, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/bookings_descriptor.bin"));
}

use pb::bookings_server::{Bookings, BookingsServer};

/// The full name of the service, as clients and the health service name it.
pub const SERVICE: &str = "housebook.book.v1.Bookings";

/// The gRPC listener.
#[derive(Debug, Clone, Deserialize)]
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

/// The `Bookings` service over the domain service.
#[derive(Clone)]
pub struct BookingsApi {
    service: BookService,
    verifier: TokenVerifier,
    per_subject: Limiter,
    refused_per_address: Limiter,
}

impl BookingsApi {
    /// An adapter over the domain service, checking tokens with `verifier` and limiting
    /// calls as `settings` say.
    pub fn new(service: BookService, verifier: TokenVerifier, settings: &GrpcSettings) -> Self {
        Self {
            service,
            verifier,
            per_subject: Limiter::new(settings.rate_limit),
            refused_per_address: Limiter::new(settings.unauthenticated),
        }
    }

    /// The caller a call's token names, within its rate limit. A refused token counts
    /// against the client's address: a refusal is cheap, not free (a signature check).
    fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let value = request
            .metadata()
            .get("authorization")
            .map(|v| v.to_str().unwrap_or(""));
        match self.verifier.caller(value) {
            Ok(caller) => {
                self.per_subject.admit(&caller.id).map_err(status)?;
                Ok(caller)
            }
            Err(refused) => {
                let from = request
                    .remote_addr()
                    .map(|a| a.ip().to_string())
                    .unwrap_or_default();
                self.refused_per_address.admit(&from).map_err(status)?;
                Err(status(refused))
            }
        }
    }
}

/// A gRPC connection: the socket with the server's bounds ([`Guarded`]), and its peer.
struct Connection(Guarded<TcpStream>, SocketAddr);

impl tonic::transport::server::Connected for Connection {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        tonic::transport::server::TcpConnectInfo {
            local_addr: self.0.get_ref().local_addr().ok(),
            remote_addr: Some(self.1),
        }
    }
}

impl tokio::io::AsyncRead for Connection {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Connection {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// The connections `listener` accepts, at most `max_connections` open at once, each
/// bounded as the HTTP server's are.
fn incoming(
    listener: TcpListener,
    max_connections: usize,
    limits: ConnectionLimits,
) -> impl futures::Stream<Item = std::io::Result<Connection>> {
    let places = Arc::new(Semaphore::new(max_connections.max(1)));
    futures::stream::unfold((listener, places), move |(listener, places)| async move {
        let (stream, peer) = platform::server::accept(&listener, &places, limits).await?;
        Some((Ok(Connection(stream, peer)), (listener, places)))
    })
}

/// The domain's answers as gRPC statuses (the same messages as over REST), chosen from
/// the domain's error, never from an HTTP status.
fn domain_status(code: Code, message: String, retry_after: Option<Duration>) -> Status {
    match retry_after {
        Some(after) => {
            Status::with_error_details(code, message, ErrorDetails::with_retry_info(Some(after)))
        }
        None => Status::new(code, message),
    }
}

/// An internal failure: logged here, opaque to the client.
fn internal(cause: &anyhow::Error) -> Status {
    tracing::error!(error = format!("{cause:#}"), "grpc call failed");
    Status::internal("internal error")
}

impl From<BookError> for Status {
    fn from(e: BookError) -> Self {
        let message = e.to_string();
        match e {
            BookError::NotAllowed => domain_status(Code::PermissionDenied, message, None),
            BookError::Invalid(_) => domain_status(Code::InvalidArgument, message, None),
            BookError::PaymentUnavailable { retry_after, .. }
            | BookError::HouseUnavailable { retry_after, .. } => {
                domain_status(Code::Unavailable, message, Some(retry_after))
            }
            BookError::Unknown(e) => internal(&e),
        }
    }
}

impl From<CancelBookingError> for Status {
    fn from(e: CancelBookingError) -> Self {
        let message = e.to_string();
        match e {
            CancelBookingError::NotFound(_) => domain_status(Code::NotFound, message, None),
            CancelBookingError::NotYours => domain_status(Code::PermissionDenied, message, None),
            CancelBookingError::Invalid(_) => {
                domain_status(Code::FailedPrecondition, message, None)
            }
            CancelBookingError::Unknown(e) => internal(&e),
        }
    }
}

impl From<GetError> for Status {
    fn from(e: GetError) -> Self {
        let message = e.to_string();
        match e {
            GetError::NotFound(_) => domain_status(Code::NotFound, message, None),
            GetError::NotYours => domain_status(Code::PermissionDenied, message, None),
            GetError::Unknown(e) => internal(&e),
        }
    }
}

impl From<ListError> for Status {
    fn from(e: ListError) -> Self {
        match e {
            ListError::Invalid(m) => domain_status(Code::InvalidArgument, m, None),
            ListError::Unknown(e) => internal(&e),
        }
    }
}

/// The edge's own refusals (a token refused, a rate limit) as gRPC statuses: the same
/// message, never an internal one.
pub fn status(e: ApiError) -> Status {
    let code = match e.status.as_u16() {
        400 | 413 | 422 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        408 => Code::DeadlineExceeded,
        409 => Code::FailedPrecondition,
        429 => Code::ResourceExhausted,
        503 => Code::Unavailable,
        _ => {
            match &e.cause {
                Some(cause) => tracing::error!(error = format!("{cause:#}"), "grpc call failed"),
                None => tracing::error!(message = %e.message, "grpc call failed"),
            }
            return Status::internal("internal error");
        }
    };
    match e.retry_after {
        Some(after) => {
            Status::with_error_details(code, e.message, ErrorDetails::with_retry_info(Some(after)))
        }
        None => Status::new(code, e.message),
    }
}

fn some(text: String) -> Option<String> {
    (!text.trim().is_empty()).then_some(text)
}

impl From<Booking> for pb::Booking {
    fn from(b: Booking) -> Self {
        Self {
            id: b.id,
            customer_id: b.customer_id,
            house_id: b.house_id,
            house_name: b.house_name,
            house_price: b.price,
            check_in: b.stay.check_in().to_string(),
            check_out: b.stay.check_out().to_string(),
            nights: b.stay.nights(),
            status: b.status.as_str().to_owned(),
            payment_id: b.payment_id,
            created_at: b.created_at.to_rfc3339(),
            book_cancel_date: b
                .book_cancel_date
                .map(|d| d.to_rfc3339())
                .unwrap_or_default(),
        }
    }
}

#[tonic::async_trait]
impl Bookings for BookingsApi {
    async fn create_booking(
        &self,
        request: Request<pb::CreateBookingRequest>,
    ) -> Result<Response<pb::Booking>, Status> {
        let caller = self.caller(&request)?;
        let m = request.into_inner();
        let asked = StayAsked {
            house_id: m.house_id,
            check_in: some(m.check_in),
            check_out: some(m.check_out),
            book_date: None,
        };
        let b = calls::book(&self.service, &caller, asked).await?;
        Ok(Response::new(b.into()))
    }

    async fn get_booking(
        &self,
        request: Request<pb::GetBookingRequest>,
    ) -> Result<Response<pb::Booking>, Status> {
        let caller = self.caller(&request)?;
        let id = request.into_inner().id;
        let b = calls::get(&self.service, &caller, &id).await?;
        Ok(Response::new(b.into()))
    }

    async fn list_bookings(
        &self,
        request: Request<pb::ListBookingsRequest>,
    ) -> Result<Response<pb::ListBookingsResponse>, Status> {
        let caller = self.caller(&request)?;
        let m = request.into_inner();
        let page = Page {
            limit: (m.limit != 0).then_some(m.limit),
            offset: Some(m.offset),
        };
        let status_filter = some(m.status);
        let list = calls::list(&self.service, &caller, status_filter.as_deref(), &page).await?;
        Ok(Response::new(pb::ListBookingsResponse {
            bookings: list.into_iter().map(Into::into).collect(),
        }))
    }

    async fn cancel_booking(
        &self,
        request: Request<pb::CancelBookingRequest>,
    ) -> Result<Response<pb::Booking>, Status> {
        let caller = self.caller(&request)?;
        let id = request.into_inner().id;
        let b = calls::cancel(&self.service, &caller, &id).await?;
        Ok(Response::new(b.into()))
    }
}

/// Serves `Bookings`, health and (if enabled) reflection on `listener` until `shutdown`; then the
/// health service says `NOT_SERVING` at once, calls keep being served for the HTTP side's
/// `drain_secs`, and in-flight calls finish.
pub async fn serve(
    listener: TcpListener,
    api: BookingsApi,
    settings: &GrpcSettings,
    http: &HttpSettings,
    health: Health,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let (reflection_v1, reflection_v1alpha) = if settings.reflection {
        (
            Some(reflection().build_v1()?),
            Some(reflection().build_v1alpha()?),
        )
    } else {
        (None, None)
    };
    let follow = tokio::spawn(follow_readiness(health, reporter, shutdown.clone()));

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
                .get(platform::trace::TRACEPARENT)
                .and_then(|v| v.to_str().ok());
            platform::trace::continue_or_link(&span, parent, trust_trace_context);
            span
        })
        .timeout(Duration::from_millis(http.request_timeout_ms))
        .concurrency_limit_per_connection(settings.max_concurrent_streams as usize)
        .load_shed(true)
        .max_concurrent_streams(settings.max_concurrent_streams)
        .http2_max_header_list_size(u32::try_from(http.max_header_bytes).unwrap_or(u32::MAX))
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .add_service(health_service)
        .add_optional_service(reflection_v1)
        .add_optional_service(reflection_v1alpha)
        .add_service(BookingsServer::new(api).max_decoding_message_size(settings.max_message_bytes))
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

/// The health service's overall status and `Bookings`' follow readiness (checked every
/// [`FOLLOW_EVERY`], and at once when shutdown begins).
async fn follow_readiness(health: Health, reporter: HealthReporter, shutdown: CancellationToken) {
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
            reporter.set_service_status(SERVICE, s).await;
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
    fn errors_map_to_grpc_codes_and_keep_nothing_internal() {
        let cases = [
            (ApiError::bad_request("x"), Code::InvalidArgument),
            (ApiError::unprocessable("x"), Code::InvalidArgument),
            (ApiError::unauthorized("x"), Code::Unauthenticated),
            (ApiError::forbidden("x"), Code::PermissionDenied),
            (ApiError::not_found("x"), Code::NotFound),
            (ApiError::conflict("x"), Code::FailedPrecondition),
        ];
        for (e, code) in cases {
            let s = status(e);
            assert_eq!(s.code(), code);
            assert_eq!(s.message(), "x");
        }
        let s = status(ApiError::internal(anyhow::anyhow!("SELECT secret")));
        assert_eq!(s.code(), Code::Internal);
        assert_eq!(s.message(), "internal error");
    }

    #[test]
    fn domain_errors_map_to_grpc_codes_and_keep_nothing_internal() {
        use crate::domain::models::{BookingInvalid, InvalidTransition};
        let cases: [(Status, Code); 8] = [
            (BookError::NotAllowed.into(), Code::PermissionDenied),
            (
                BookError::Invalid(BookingInvalid::InThePast).into(),
                Code::InvalidArgument,
            ),
            (
                CancelBookingError::NotFound("b".into()).into(),
                Code::NotFound,
            ),
            (CancelBookingError::NotYours.into(), Code::PermissionDenied),
            (
                CancelBookingError::Invalid(InvalidTransition { from: "A", to: "B" }).into(),
                Code::FailedPrecondition,
            ),
            (GetError::NotFound("b".into()).into(), Code::NotFound),
            (GetError::NotYours.into(), Code::PermissionDenied),
            (
                ListError::Invalid("bad".into()).into(),
                Code::InvalidArgument,
            ),
        ];
        for (s, code) in cases {
            assert_eq!(s.code(), code, "{s:?}");
            assert!(!s.message().is_empty());
        }
        let s = Status::from(GetError::Unknown(anyhow::anyhow!("SELECT secret")));
        assert_eq!((s.code(), s.message()), (Code::Internal, "internal error"));
    }

    #[test]
    fn unavailable_says_when_to_retry() {
        let s = Status::from(BookError::PaymentUnavailable {
            reason: "circuit open".into(),
            retry_after: Duration::from_secs(3),
        });
        assert_eq!(s.code(), Code::Unavailable);
        assert!(!s.message().contains("circuit"), "{}", s.message());
        let retry = s
            .get_error_details()
            .retry_info()
            .and_then(|r| r.retry_delay)
            .unwrap();
        assert_eq!(retry, Duration::from_secs(3));
    }

    #[test]
    fn the_service_name_is_the_proto_one() {
        assert_eq!(
            <BookingsServer<BookingsApi> as tonic::server::NamedService>::NAME,
            SERVICE
        );
    }
}

//! The HTTP/1.1 server every service runs, with every resource a caller could exhaust
//! bounded (SPEC §7), in all and per client address ([`crate::fair`]), so that one source
//! cannot take what everyone shares:
//!
//! - **connections**: at most `max_connections` open; beyond, new ones wait in the
//!   kernel's listen backlog (nothing is allocated for them). One address holds at most
//!   `max_connections_per_address`; its connections beyond are turned away at once
//!   ([`OverShare`]: HTTP answers them `429`);
//! - **slow clients**: a request's head must arrive within `header_read_timeout_ms`
//!   (slowloris), and an idle keep-alive connection is closed after the same time;
//! - **slow bodies**: a body must arrive within `body_read_timeout_ms`, and is read
//!   before the request takes a place among those in progress: while it trickles in it
//!   holds only its sender's share;
//! - **clients that do not read**: an answer not taken within `write_timeout_ms` closes
//!   the connection ([`Guarded`]), so pipelining requests and never reading the answers
//!   holds nothing for long;
//! - **headers**: at most `max_headers` of them and `max_header_bytes` in all (`431`);
//! - **work in progress**: at most `max_in_flight` API requests at once; beyond, `503` +
//!   `Retry-After` at once (load shedding), so a flood costs a refusal, not a queue. One
//!   address has at most `max_in_flight_per_address` in progress (bodies being read
//!   included); beyond, `429` + `Retry-After`;
//! - **time**: a request is answered within `request_timeout_ms` of its body's arrival
//!   (`408`);
//! - **bodies**: `body_limit_bytes` (`413`), in [`crate::serve::serve_http`] and here.
//!
//! Health and metrics are exempt from the in-flight bound and the timeout, so probes
//! answer while the API sheds load; [`Capacity::full`] lets readiness say when every place
//! is taken. hyper's own server is used directly (as `axum::serve` does underneath)
//! because `axum::serve` sets none of these bounds.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tower::ServiceExt as _;

use crate::error::ApiError;
use crate::fair::{Share, Shares};
use crate::origin::ForwardedSettings;
use crate::settings::HttpSettings;

/// How long the fleet's own HTTP clients keep an idle connection: less than the
/// servers' `header_read_timeout_ms`, which also closes idle keep-alive connections, so a
/// request is never sent down a connection the server is closing at that moment.
pub const CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `app` on `listener`, within `connections`, until `stop` completes; then accepts
/// no more, lets requests in progress finish (at most `request_timeout_ms` more) and
/// returns. Every request
/// carries the peer's address as [`ConnectInfo<SocketAddr>`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    http: &HttpSettings,
    connections: Connections,
    stop: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(http.header_read_timeout_ms.max(1)))
        .max_headers(http.max_headers.max(1))
        .max_header_size(http.max_header_bytes.max(1024));
    let limits = ConnectionLimits::http1(http);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = accept(&listener, &connections, limits) => match accepted {
                Some(s) => s,
                None => break,
            },
            () = &mut stop => break,
        };
        let service = app.clone().map_request(move |mut req: Request<_>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        });
        let conn =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // Errors here are the client's doing (reset, timeout, malformed head, which
            // hyper has already answered where it could): nothing for an operator. The
            // connection's place is given back when it ends (the stream holds it).
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
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

/// The time bounds of one connection's socket.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// The client's first bytes must arrive within this; `None`: the protocol's server
    /// bounds that itself.
    pub first_read: Option<Duration>,
    /// An answer the client does not take within this ends the connection.
    pub write: Duration,
}

impl ConnectionLimits {
    /// For HTTP/1.1: hyper's header read timeout already closes a connection whose first
    /// request head does not come, so only writes are timed here.
    pub fn http1(http: &HttpSettings) -> Self {
        Self {
            first_read: None,
            write: Duration::from_millis(http.write_timeout_ms.max(1)),
        }
    }

    /// For HTTP/2 (gRPC), whose server has no such timeout: the client's preface must
    /// come within the header read timeout too.
    pub fn http2(http: &HttpSettings) -> Self {
        Self {
            first_read: Some(Duration::from_millis(http.header_read_timeout_ms.max(1))),
            ..Self::http1(http)
        }
    }
}

/// The open connections of one listener: in all, and per client address (the TCP peer).
#[derive(Clone)]
pub struct Connections {
    total: Arc<Semaphore>,
    per_address: Shares,
    /// How a connection over its address's share is turned away.
    over_share: OverShare,
    /// Connections being turned away with an answer at once (beyond, they are just closed).
    answering: Arc<Semaphore>,
}

/// How a connection over its address's share is turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverShare {
    /// Closed at once (a protocol with no answer to give before its handshake: gRPC).
    Close,
    /// Its request head is read (briefly), answered `429 too_many_connections` with
    /// `Connection: close`, then closed: a client whose pool grew past the share gets an
    /// answer, not a reset connection.
    Http1,
}

/// Over-share connections answered at once per listener; more are closed without an answer.
const ANSWERING_AT_ONCE: usize = 64;

/// How long an over-share connection's head (and what follows it) is read for.
const OVER_SHARE_READ: Duration = Duration::from_millis(250);

/// The answer an HTTP/1.1 connection over its address's share gets.
const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\n\
content-type: application/json\r\n\
retry-after: 1\r\n\
cache-control: no-store\r\n\
x-content-type-options: nosniff\r\n\
connection: close\r\n\
content-length: 98\r\n\r\n\
{\"error\":\"too_many_connections\",\"message\":\"too many connections from this address; retry shortly\"}";

impl Connections {
    /// At most `max` open, `per_address` of them from one address (`0`: no cap of its own);
    /// one over its share is turned away as `over_share` says.
    pub fn new(max: usize, per_address: usize, over_share: OverShare) -> Self {
        Self {
            total: Arc::new(Semaphore::new(max.max(1))),
            per_address: Shares::new(per_address),
            over_share,
            answering: Arc::new(Semaphore::new(ANSWERING_AT_ONCE)),
        }
    }

    /// The HTTP server's, as the settings say.
    pub fn http(http: &HttpSettings) -> Self {
        Self::new(
            http.max_connections,
            http.max_connections_per_address,
            OverShare::Http1,
        )
    }

    /// Turns away a connection over its address's share.
    fn turn_away(&self, stream: TcpStream) {
        if self.over_share == OverShare::Http1 {
            if let Ok(slot) = self.answering.clone().try_acquire_owned() {
                tokio::spawn(answer_over_share(stream, slot));
            }
        }
    }

    /// Whether every connection place is taken (new clients wait in the backlog).
    pub fn full(&self) -> bool {
        self.total.available_permits() == 0
    }
}

/// What an open connection holds until it ends: its place among all, and its address's
/// share.
pub struct Place {
    _total: OwnedSemaphorePermit,
    _share: Option<Share>,
}

impl Place {
    /// A place of `total`, and of `share` where the connection's address is counted.
    pub fn new(total: OwnedSemaphorePermit, share: Option<Share>) -> Self {
        Self {
            _total: total,
            _share: share,
        }
    }
}

/// Waits for a place among the open connections, then accepts the next connection whose
/// address holds less than its share, [`Guarded`] by `limits`; one over its share is
/// turned away at once ([`OverShare`]) and its place goes to the next. `None` once the
/// places are closed. Accept errors (out of file descriptors, a connection reset before accept) are not
/// fatal: it waits a moment rather than spin, and accepts again.
pub async fn accept(
    listener: &TcpListener,
    connections: &Connections,
    limits: ConnectionLimits,
) -> Option<(Guarded<TcpStream>, SocketAddr)> {
    let permit = connections.total.clone().acquire_owned().await.ok()?;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let Some(share) = connections.per_address.take(peer.ip()) else {
                    tracing::debug!(%peer, "connection turned away: its address holds its share");
                    connections.turn_away(stream);
                    continue;
                };
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "TCP_NODELAY not set");
                }
                let place = Place::new(permit, Some(share));
                return Some((Guarded::new(stream, limits, place), peer));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Reads an over-share connection's head (until its blank line, or for
/// [`OVER_SHARE_READ`]), answers `429 too_many_connections`, and reads what follows for as
/// long again before closing: a socket closed with unread bytes is reset, and the client
/// would lose the answer.
async fn answer_over_share(mut stream: TcpStream, _slot: OwnedSemaphorePermit) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = [0u8; 4096];
    let mut seen: Vec<u8> = Vec::new();
    let head = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => {
                    seen.extend_from_slice(&buf[..n]);
                    if seen.windows(4).any(|w| w == b"\r\n\r\n") || seen.len() > 64 * 1024 {
                        return true;
                    }
                }
            }
        }
    };
    if matches!(tokio::time::timeout(OVER_SHARE_READ, head).await, Ok(false)) {
        return; // the client went
    }
    let answered = tokio::time::timeout(OVER_SHARE_READ, async {
        stream.write_all(TOO_MANY_CONNECTIONS).await?;
        stream.shutdown().await
    });
    if !matches!(answered.await, Ok(Ok(()))) {
        return;
    }
    let _ = tokio::time::timeout(OVER_SHARE_READ, async {
        while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// A connection's socket with its time bounds: its first bytes must arrive within
/// [`ConnectionLimits::first_read`] where set (a client that never starts an HTTP/2
/// handshake), and a write the client does not take within
/// [`ConnectionLimits::write`] fails with `TimedOut`, which ends the connection. Holds the
/// connection's [`Place`] until dropped.
pub struct Guarded<S> {
    inner: S,
    first_read: Option<Pin<Box<Sleep>>>,
    write_timeout: Duration,
    write_stall: Option<Pin<Box<Sleep>>>,
    _place: Place,
}

impl<S> Guarded<S> {
    /// `inner` bounded by `limits`, holding `place`.
    pub fn new(inner: S, limits: ConnectionLimits, place: Place) -> Self {
        Self {
            inner,
            first_read: limits.first_read.map(|d| Box::pin(tokio::time::sleep(d))),
            write_timeout: limits.write,
            write_stall: None,
            _place: place,
        }
    }

    /// The socket.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// A write's outcome, or `TimedOut` once writes have been pending for the write
    /// timeout without a byte taken.
    fn within_write_timeout<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.write_stall = None;
            return polled;
        }
        let timeout = self.write_timeout;
        let stall = self
            .write_stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took nothing of its answer within the write timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.first_read = None;
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                let expired = this
                    .first_read
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if expired {
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client sent nothing within the header read timeout",
                    )))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.within_write_timeout(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.within_write_timeout(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.within_write_timeout(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.within_write_timeout(cx, polled)
    }
}

/// A check of a request's head alone, run before its body is read or a place is taken
/// (the gateway's token endpoint: its rate per client address), given the client's
/// address.
pub type Admission = Arc<dyn Fn(&Parts, IpAddr) -> Result<(), ApiError> + Send + Sync>;

/// How a server tells its callers apart, and what it checks before it reads a body.
#[derive(Clone, Default)]
pub struct Intake {
    /// Proxies of the deployment's own in front (the gateway's `forwarded`): the client's
    /// address is the one they put in `X-Forwarded-For`. None: the TCP peer.
    pub forwarded: ForwardedSettings,
    /// Checked first, on the head alone.
    pub admission: Option<Admission>,
}

/// The in-flight bounds (in all and per address), the body's arrival and the request
/// timeout, as one middleware.
#[derive(Clone)]
pub struct Bounds {
    in_flight: Arc<Semaphore>,
    per_address: Shares,
    timeout: Duration,
    body_timeout: Duration,
    body_limit: usize,
    intake: Intake,
}

impl Bounds {
    /// The bounds the settings name, telling callers apart as `intake` says.
    pub fn new(http: &HttpSettings, intake: Intake) -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(http.max_in_flight.max(1))),
            per_address: Shares::new(http.max_in_flight_per_address),
            timeout: Duration::from_millis(http.request_timeout_ms.max(1)),
            body_timeout: Duration::from_millis(http.body_read_timeout_ms.max(1)),
            body_limit: http.body_limit_bytes,
            intake,
        }
    }

    /// Whether every in-flight place is taken.
    pub fn full(&self) -> bool {
        self.in_flight.available_permits() == 0
    }
}

/// What a listener can give out: connections and in-flight places. Readiness asks it
/// where a full server should leave the load balancer's rotation (the gateway).
#[derive(Clone)]
pub struct Capacity {
    /// The listener's connections.
    pub connections: Connections,
    /// Its API requests in progress.
    pub bounds: Bounds,
}

impl Capacity {
    /// Why no new client can be served now, if that is so.
    pub fn full(&self) -> Option<&'static str> {
        if self.bounds.full() {
            Some("at capacity: every in-flight place is taken")
        } else if self.connections.full() {
            Some("at capacity: every connection is taken")
        } else {
            None
        }
    }
}

/// Runs the intake's admission on the head; takes the client address's share (`429`
/// beyond); reads the body within the body timeout (`408`) and limit (`413`); takes a
/// place among those in progress (`503` at once when none is free); and answers `408` when
/// the request is not done within the request timeout.
pub async fn bound(State(bounds): State<Bounds>, req: Request, next: Next) -> Response {
    match admitted(&bounds, req, next).await {
        Ok(response) | Err(response) => response,
    }
}

async fn admitted(bounds: &Bounds, req: Request, next: Next) -> Result<Response, Response> {
    let (parts, body) = req.into_parts();
    let from = crate::origin::address(
        peer(&parts.extensions),
        &parts.headers,
        bounds.intake.forwarded,
    );
    let refused = match &bounds.intake.admission {
        Some(admission) => admission(&parts, from).err(),
        None => None,
    };
    let share = match refused {
        Some(_) => None,
        None => bounds.per_address.take(from),
    };
    let Some(_share) = share else {
        let e = refused.unwrap_or_else(|| {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_in_progress",
                "too many requests in progress from this address; retry shortly",
            );
            e.retry_after = Some(Duration::from_secs(1));
            e
        });
        return Err(refuse_before_body(e, body, bounds.body_limit).await);
    };
    let body = read_body(body, bounds.body_limit, bounds.body_timeout)
        .await
        .map_err(IntoResponse::into_response)?;
    let _permit = bounds.in_flight.clone().try_acquire_owned().map_err(|_| {
        ApiError::unavailable(
            "the server is at capacity; retry shortly",
            Duration::from_secs(1),
        )
        .into_response()
    })?;
    let req = Request::from_parts(parts, Body::from(body));
    match tokio::time::timeout(bounds.timeout, next.run(req)).await {
        Ok(response) => Ok(response),
        Err(_) => Err(timed_out(format!(
            "the request was not complete within {} ms",
            bounds.timeout.as_millis()
        ))),
    }
}

/// How long a request refused on its head may take to send the rest of its body.
const REFUSAL_DRAIN: Duration = Duration::from_millis(500);

/// `refusal`, for a request refused before its body was read. What of the body arrives
/// within [`REFUSAL_DRAIN`] (up to the limit) is read and thrown away: a socket closed with
/// unread bytes in it is reset, and the client would lose the answer with it. A body that
/// does not arrive in that time ends the connection, and the answer says so.
pub(crate) async fn refuse_before_body(refusal: ApiError, body: Body, limit: usize) -> Response {
    let drained = read_body(body, limit, REFUSAL_DRAIN).await.is_ok();
    let mut response = refusal.into_response();
    if !drained {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// A request's whole body, if it arrives within `within` and is at most `limit` bytes.
async fn read_body(body: Body, limit: usize, within: Duration) -> Result<Bytes, ApiError> {
    use futures::StreamExt as _;
    let read = async {
        let mut stream = body.into_data_stream();
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut total = 0usize;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| ApiError::bad_request("the body could not be read"))?;
            total += chunk.len();
            if total > limit {
                return Err(ApiError::payload_too_large());
            }
            chunks.push(chunk);
        }
        // One chunk (the usual small body) is passed on as it is, without a copy.
        Ok(if chunks.len() > 1 {
            Bytes::from(chunks.concat())
        } else {
            chunks.pop().unwrap_or_default()
        })
    };
    tokio::time::timeout(within, read)
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the request's body did not arrive within {} ms",
                    within.as_millis()
                ),
            ))
        })
}

fn timed_out(message: String) -> Response {
    ApiError::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", message).into_response()
}

/// The peer of a request served by [`serve`] (none in a unit test calling the router).
pub fn peer(req_extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    req_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| *a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn guarded(
        first_read_ms: u64,
        write_ms: u64,
    ) -> (Guarded<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
        let (ours, theirs) = tokio::io::duplex(1024);
        let place = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        let limits = ConnectionLimits {
            first_read: Some(Duration::from_millis(first_read_ms)),
            write: Duration::from_millis(write_ms),
        };
        (Guarded::new(ours, limits, Place::new(place, None)), theirs)
    }

    #[tokio::test]
    async fn a_client_that_never_reads_times_the_writes_out() {
        let (mut server, mut client) = guarded(10_000, 300);
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut head = [0; 18];
        server.read_exact(&mut head).await.unwrap();
        // 1 KiB of buffer, then nothing is taken: the write waits, then fails.
        let started = std::time::Instant::now();
        let err = server.write_all(&[b'x'; 64 * 1024]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test]
    async fn a_client_that_reads_slowly_but_steadily_is_served() {
        let (mut server, mut client) = guarded(10_000, 500);
        let reader = tokio::spawn(async move {
            let mut got = 0;
            let mut buf = [0; 512];
            while got < 16 * 1024 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                got += client.read(&mut buf).await.unwrap();
            }
            got
        });
        server.write_all(&[b'x'; 16 * 1024]).await.unwrap();
        assert_eq!(reader.await.unwrap(), 16 * 1024, "each stall is short");
    }

    #[tokio::test]
    async fn a_client_that_sends_nothing_is_dropped_and_one_that_sent_may_idle() {
        let (mut silent, _client) = guarded(100, 5_000);
        let mut buf = [0; 8];
        let err = silent.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);

        let (mut server, mut client) = guarded(100, 5_000);
        client.write_all(b"PRI").await.unwrap();
        assert_eq!(server.read(&mut buf).await.unwrap(), 3);
        // After its first bytes, a connection may wait as long as its protocol allows.
        let waited = tokio::time::timeout(Duration::from_millis(500), server.read(&mut buf)).await;
        assert!(waited.is_err(), "still waiting: {waited:?}");
    }

    #[tokio::test]
    async fn http1_leaves_the_first_bytes_to_hyper() {
        let (ours, _client) = tokio::io::duplex(8);
        let http = HttpSettings {
            header_read_timeout_ms: 50,
            ..HttpSettings::default()
        };
        let place = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        let mut server = Guarded::new(
            ours,
            ConnectionLimits::http1(&http),
            Place::new(place, None),
        );
        let mut buf = [0; 8];
        let waited = tokio::time::timeout(Duration::from_millis(300), server.read(&mut buf)).await;
        assert!(waited.is_err(), "no timer of its own: {waited:?}");
        assert_eq!(
            ConnectionLimits::http2(&http).first_read,
            Some(Duration::from_millis(50))
        );
    }

    /// A body is read whole up to its limit, however it is cut into chunks, and refused
    /// one byte past it.
    #[tokio::test]
    async fn a_body_is_read_whole_up_to_its_limit() {
        let body = |sizes: &[usize]| {
            let chunks: Vec<Result<Bytes, std::io::Error>> = sizes
                .iter()
                .map(|n| Ok(Bytes::from(vec![b'x'; *n])))
                .collect();
            Body::from_stream(futures::stream::iter(chunks))
        };
        let within = Duration::from_secs(1);
        for sizes in [&[][..], &[10], &[4, 3, 3], &[0, 10], &[5, 0, 5]] {
            let read = read_body(body(sizes), 10, within).await.unwrap();
            assert_eq!(read.len(), sizes.iter().sum::<usize>(), "{sizes:?}");
        }
        for sizes in [&[11][..], &[4, 4, 3], &[10, 1]] {
            let e = read_body(body(sizes), 10, within).await.unwrap_err();
            assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE, "{sizes:?}");
        }
        let never = Body::from_stream(futures::stream::pending::<Result<Bytes, std::io::Error>>());
        let e = read_body(never, 10, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert_eq!(e.status, StatusCode::REQUEST_TIMEOUT);
    }

    /// The answer an over-share connection gets is whole HTTP: its length is its body's,
    /// and the body is the API's error shape.
    #[test]
    fn the_over_share_answer_is_whole() {
        let text = std::str::from_utf8(TOO_MANY_CONNECTIONS).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 429 "));
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap();
        assert_eq!(length.parse::<usize>().unwrap(), body.len());
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"], "too_many_connections");
    }

    /// A connection over its address's share is answered `429` (its request read first),
    /// not reset; another address is served; under `OverShare::Close` it is just closed.
    #[tokio::test]
    async fn a_connection_over_its_share_is_answered_then_closed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for (over_share, answered) in [(OverShare::Http1, true), (OverShare::Close, false)] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let connections = Connections::new(8, 1, over_share);
            let limits = ConnectionLimits {
                first_read: None,
                write: Duration::from_secs(1),
            };
            let server = tokio::spawn(async move {
                let mut kept = Vec::new();
                while let Some((s, _)) = accept(&listener, &connections, limits).await {
                    kept.push(s);
                }
            });
            let _first = TcpStream::connect(addr).await.unwrap();
            let mut second = TcpStream::connect(addr).await.unwrap();
            second
                .write_all(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
                .await
                .unwrap();
            let mut answer = Vec::new();
            let read =
                tokio::time::timeout(Duration::from_secs(5), second.read_to_end(&mut answer))
                    .await
                    .unwrap();
            assert!(read.is_ok(), "{over_share:?}: closed, not reset: {read:?}");
            assert_eq!(
                answer.starts_with(b"HTTP/1.1 429 "),
                answered,
                "{over_share:?}"
            );
            server.abort();
        }
    }

    #[test]
    fn a_connection_holds_its_place_until_dropped() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _in_runtime = rt.enter();
        let places = Arc::new(Semaphore::new(1));
        let (ours, _theirs) = tokio::io::duplex(8);
        let limits = ConnectionLimits {
            first_read: Some(Duration::from_secs(1)),
            write: Duration::from_secs(1),
        };
        let shares = Shares::new(1);
        let here = IpAddr::from([127, 0, 0, 1]);
        let place = Place::new(
            places.clone().try_acquire_owned().unwrap(),
            shares.take(here),
        );
        let g = Guarded::new(ours, limits, place);
        assert_eq!(places.available_permits(), 0);
        assert_eq!(shares.held(here), 1);
        drop(g);
        assert_eq!(places.available_permits(), 1);
        assert_eq!(shares.held(here), 0);
    }
}

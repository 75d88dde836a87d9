//! Routing to the services: pooled keep-alive connections, a timeout, the request id
//! passed on, and JSON `502`/`503`/`504` when an upstream fails. The token is checked at
//! the edge too (and again by the service: defense in depth).

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use platform::auth::{Caller, TokenVerifier};
use platform::ApiError;

use std::sync::Arc;

use axum::http::Method;
use platform::shutdown::CancellationToken;
use platform::stream::Streams;
use platform::upstream::Pool;

use crate::client::{self, ForwardedSettings};
use crate::limit::Limiter;
use crate::settings::Upstreams;

/// What the proxy needs.
#[derive(Clone)]
pub struct Proxy {
    /// Pooled client.
    pub http: reqwest::Client,
    /// The replicas of each service.
    pub upstreams: Arc<Routes>,
    /// Edge token check.
    pub verifier: TokenVerifier,
    /// Largest body forwarded.
    pub body_limit: usize,
    /// Calls per token subject.
    pub limiter: Limiter,
    /// Refused calls per client address.
    pub unauthenticated: Limiter,
    /// Where the client address comes from.
    pub forwarded: ForwardedSettings,
    /// Client for streams: no total timeout, a bound on silence instead.
    pub streaming: reqwest::Client,
    /// The open streams and their bounds.
    pub streams: Streams,
    /// Ends every stream when the gateway stops.
    pub stop: CancellationToken,
}

/// A stream from a service with no byte (not even its keep-alive comment, every 15 s by
/// default) for this long is taken as dead and ended; the client reconnects.
pub const STREAM_SILENCE: Duration = Duration::from_secs(60);

/// The replicas behind each first path segment.
pub struct Routes {
    book: Pool,
    payment: Pool,
    house: Pool,
    mypage: Pool,
    notification: Pool,
}

impl Routes {
    /// The pools named by the settings.
    pub fn new(u: &Upstreams) -> anyhow::Result<Self> {
        Ok(Self {
            book: Pool::parse("book", &u.book)?,
            payment: Pool::parse("payment", &u.payment)?,
            house: Pool::parse("house", &u.house)?,
            mypage: Pool::parse("mypage", &u.mypage)?,
            notification: Pool::parse("notification", &u.notification)?,
        })
    }

    /// Starts polling the replicas' readiness until `stop`.
    pub fn watch(&self, every: Duration, stop: &CancellationToken) {
        for pool in [
            &self.book,
            &self.payment,
            &self.house,
            &self.mypage,
            &self.notification,
        ] {
            pool.watch(every, stop.clone());
        }
    }

    fn route(&self, path: &str) -> Option<&Pool> {
        match crate::contract::upstream_of(path)? {
            "book" => Some(&self.book),
            "payment" => Some(&self.payment),
            "house" => Some(&self.house),
            "mypage" => Some(&self.mypage),
            "notification" => Some(&self.notification),
            _ => None,
        }
    }
}

impl Proxy {
    /// A proxy with a keep-alive pool.
    pub fn new(
        upstreams: &Upstreams,
        verifier: TokenVerifier,
        body_limit: usize,
        limits: (Limiter, Limiter),
        forwarded: ForwardedSettings,
        streams: Streams,
        stop: CancellationToken,
    ) -> anyhow::Result<Self> {
        let (limiter, unauthenticated) = limits;
        // Idle connections go before the services' own idle timeout closes them (so a
        // request never races a close); open ones are bounded by the in-flight limit.
        let http = reqwest::Client::builder()
            .pool_idle_timeout(platform::server::CLIENT_IDLE_TIMEOUT)
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_millis(upstreams.timeout_ms))
            .build()?;
        let streaming = reqwest::Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(2))
            .read_timeout(STREAM_SILENCE)
            .build()?;
        Ok(Self {
            http,
            streaming,
            streams,
            stop,
            upstreams: Arc::new(Routes::new(upstreams)?),
            verifier,
            body_limit,
            limiter,
            unauthenticated,
            forwarded,
        })
    }
}

impl axum::extract::FromRef<Proxy> for TokenVerifier {
    fn from_ref(p: &Proxy) -> Self {
        p.verifier.clone()
    }
}

/// Headers that belong to one hop, not to the request.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn forwardable(name: &HeaderName) -> bool {
    !HOP_BY_HOP.contains(&name.as_str()) && name != header::HOST && name != header::CONTENT_LENGTH
}

/// The headers to pass on: not hop-by-hop ones, nor those the message's `Connection`
/// header names as its own (RFC 9110 §7.6.1), nor — with `origin` — a caller's claims of
/// where it came from.
fn pass_on(from: &HeaderMap, origin: bool) -> HeaderMap {
    let named: Vec<String> = from
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    let mut out = HeaderMap::new();
    for (k, v) in from {
        let claim = origin && client::CLAIMS_OF_ORIGIN.contains(&k.as_str());
        // The token is the request's own, whatever `Connection` says of it.
        let dropped = named.iter().any(|n| n == k.as_str()) && k != header::AUTHORIZATION;
        if forwardable(k) && !claim && !dropped {
            out.append(k.clone(), v.clone());
        }
    }
    out
}

/// Whether a path is what it says: the gateway routes on its first segment, and an HTTP
/// client or a service that resolved `..`, `%2e%2e`, `%2f` or `\\` differently would
/// send it somewhere else than where it was routed. No API path needs them, nor an encoded
/// control character ([`platform::http::encodes_control`]), which no id has.
fn normalised(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    !platform::http::encodes_control(path)
        && !lower.contains("%2f")
        && !lower.contains("%5c")
        && !lower.contains('\\')
        && !lower.contains("//")
        && lower
            .split('/')
            .all(|seg| !matches!(seg, "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e."))
}

/// Whether a request may be sent again after its answer was lost: the methods HTTP
/// calls idempotent. A lost `POST` is not repeated (it may have been done); a refused
/// connection is always tried elsewhere (nothing was sent).
fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    )
}

/// A routed request the edge has let through, ready to be sent on.
struct Admitted<'a> {
    caller: Caller,
    /// The replicas of the service the path goes to.
    pool: &'a Pool,
    /// What to ask of a replica: the request's path and query.
    target: &'a str,
    /// The caller's headers as an upstream gets them.
    headers: HeaderMap,
}

/// What every routed request goes through first: a token (a caller that earns many
/// refusals is limited by address), no service identity, the caller's rate, a plain path
/// with a route.
fn admit<'a>(
    proxy: &'a Proxy,
    peer: SocketAddr,
    caller: Result<Caller, ApiError>,
    parts: &'a Parts,
) -> Result<Admitted<'a>, ApiError> {
    let from = client::address(Some(peer), &parts.headers, proxy.forwarded);
    let caller = match caller {
        Ok(c) => c,
        Err(refused) => {
            // A 401 is cheap, but not free (a signature check): a caller that earns many
            // gets 429 instead, as a token flood does.
            proxy.unauthenticated.admit(&from.to_string())?;
            return Err(refused);
        }
    };
    // The fleet's identities act only inside it: a service token (leaked, or minted with
    // a leaked client secret) buys nothing at the public edge.
    if caller.has(platform::auth::Role::Service) {
        return Err(ApiError::forbidden(
            "service identities are not accepted at the public edge",
        ));
    }
    proxy.limiter.admit(&caller.id)?;
    let path = parts.uri.path();
    if !normalised(path) {
        return Err(ApiError::invalid_path(
            "the path has dot segments, encoded slashes, backslashes or control characters",
        ));
    }
    let pool = proxy
        .upstreams
        .route(path)
        .ok_or_else(|| ApiError::not_found(format!("no route for {} {path}", parts.method)))?;
    Ok(Admitted {
        caller,
        pool,
        target: parts.uri.path_and_query().map_or(path, |pq| pq.as_str()),
        headers: upstream_headers(&parts.headers, &from),
    })
}

/// The headers an upstream is sent: the caller's own, the gateway's span, and the
/// client's address as the gateway saw it.
fn upstream_headers(from: &HeaderMap, client: &std::net::IpAddr) -> HeaderMap {
    let mut headers = pass_on(from, true);
    // The gateway's own span is the caller's child: upstreams continue from it.
    if let Some(tp) = platform::trace::current().and_then(|t| t.parse().ok()) {
        headers.insert(platform::trace::TRACEPARENT, tp);
    }
    if let Ok(v) = client.to_string().parse() {
        headers.insert(&client::X_FORWARDED_FOR, v);
    }
    headers
}

/// Sends a request to a ready replica of `pool`, and to another replica when the first
/// cannot have done it (refused the connection; or lost the answer to an idempotent
/// method).
async fn send(
    http: &reqwest::Client,
    pool: &Pool,
    method: &Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<reqwest::Response, ApiError> {
    let name = pool.name();
    let mut tried = Vec::new();
    loop {
        let Some(base) = pool.pick(&tried) else {
            return Err(ApiError::unavailable(
                format!("{name} is unavailable"),
                Duration::from_secs(1),
            ));
        };
        let sent = http
            .request(method.clone(), format!("{base}{path_and_query}"))
            .headers(headers.clone())
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(r) => return Ok(r),
            Err(e) if e.is_timeout() => {
                return Err(ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "upstream_timeout",
                    format!("{name} did not answer in time"),
                ))
            }
            Err(e) if e.is_connect() => {
                tracing::info!(upstream = name, replica = %base, "connection refused; trying another replica");
                pool.mark_down(&base);
            }
            Err(_) if idempotent(method) => {
                tracing::info!(upstream = name, replica = %base, "answer lost; trying another replica");
            }
            Err(_) => return Err(bad_gateway(name)),
        }
        tried.push(base);
    }
}

fn bad_gateway(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "bad_gateway",
        format!("{name} failed to answer"),
    )
}

/// An upstream's whole answer, read and passed on.
async fn buffered(name: &str, res: reqwest::Response) -> Result<Response, ApiError> {
    let status = res.status();
    let out = pass_on(res.headers(), false);
    let bytes = res.bytes().await.map_err(|_| bad_gateway(name))?;
    let mut response = (status, Body::from(bytes)).into_response();
    *response.headers_mut() = out;
    Ok(response)
}

/// Forwards one request to a ready replica of its service, and to another replica when
/// the first cannot have done it.
pub async fn forward(
    State(proxy): State<Proxy>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    caller: Result<Caller, ApiError>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let out = admit(&proxy, peer, caller, &parts)?;
    let body: Bytes = axum::body::to_bytes(body, proxy.body_limit)
        .await
        .map_err(|_| ApiError::payload_too_large())?;
    let res = send(
        &proxy.http,
        out.pool,
        &parts.method,
        out.target,
        &out.headers,
        &body,
    )
    .await?;
    buffered(out.pool.name(), res).await
}

/// A stream being passed on: the upstream's answer, the place it holds, and what ends it.
struct Relay {
    res: reqwest::Response,
    _place: platform::stream::StreamPermit,
    stop: CancellationToken,
    expires: std::pin::Pin<Box<tokio::time::Sleep>>,
    upstream: String,
}

impl Relay {
    /// The next chunk as it arrives; `None` ends the answer (and gives the place back).
    async fn next(mut self) -> Option<(Result<Bytes, std::io::Error>, Self)> {
        let chunk = tokio::select! {
            chunk = self.res.chunk() => chunk,
            () = self.stop.cancelled() => return None,
            () = &mut self.expires => return None,
        };
        match chunk {
            Ok(Some(bytes)) => Some((Ok(bytes), self)),
            Ok(None) => None,
            Err(e) => {
                tracing::info!(upstream = %self.upstream, error = %e, "stream ended by its upstream");
                None
            }
        }
    }
}

/// Forwards a stream (`GET /notifications/stream`): as [`forward`], but the answer is
/// passed on as it arrives, never buffered, for as long as it lasts. The in-flight bound
/// is let go once the head is answered; the stream holds a place of [`Proxy::streams`]
/// (per caller and in all) instead, until it ends: when the service ends it, when it is
/// silent for [`STREAM_SILENCE`], when the token expires, when the client goes, or when
/// the gateway stops.
pub async fn stream(
    State(proxy): State<Proxy>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    caller: Result<Caller, ApiError>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, _) = req.into_parts();
    let out = admit(&proxy, peer, caller, &parts)?;
    let place = proxy.streams.admit(&out.caller.id)?;
    let res = send(
        &proxy.streaming,
        out.pool,
        &parts.method,
        out.target,
        &out.headers,
        &Bytes::new(),
    )
    .await?;
    if res.status() != StatusCode::OK {
        return buffered(out.pool.name(), res).await; // a refusal: small, and final
    }
    let status = res.status();
    let answer_headers = pass_on(res.headers(), false);
    let relay = Relay {
        res,
        _place: place,
        stop: proxy.stop.clone(),
        // The service ends it when the token expires too; the edge does not rely on that.
        expires: Box::pin(tokio::time::sleep(platform::stream::until_expiry(
            out.caller.expires_at,
        ))),
        upstream: out.pool.name().to_owned(),
    };
    let chunks = futures::stream::unfold(relay, Relay::next);
    let mut response = (status, Body::from_stream(chunks)).into_response();
    *response.headers_mut() = answer_headers;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_paths_are_routed() {
        for ok in [
            "/books",
            "/books/abc-1",
            "/houses/3/availability",
            "/books.json",
        ] {
            assert!(normalised(ok), "{ok}");
        }
        for bad in [
            "/books/../payments",
            "/books/./x",
            "/books/%2e%2e/faults",
            "/books/%2E%2E/faults",
            "/books/.%2e/x",
            "/books%2f..%2fmetrics",
            "/books/..",
            "//books",
            "/books\\..\\x",
            "/books/%5c..",
        ] {
            assert!(!normalised(bad), "{bad}");
        }
    }

    #[test]
    fn hop_headers_and_claims_of_origin_stay_behind() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-secret-hop, authorization"),
            ("x-secret-hop", "1"),
            ("authorization", "Bearer t"),
            ("x-forwarded-for", "6.6.6.6"),
            ("forwarded", "for=6.6.6.6"),
            ("x-real-ip", "6.6.6.6"),
            ("te", "trailers"),
            ("content-type", "application/json"),
        ] {
            h.append(HeaderName::from_static(k), v.parse().unwrap());
        }
        let out = pass_on(&h, true);
        let names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, vec!["authorization", "content-type"]);
        // Answers keep what is not hop-by-hop (no claims of origin to drop there).
        let back = pass_on(&h, false);
        assert!(back.contains_key("x-forwarded-for"));
        assert!(!back.contains_key("x-secret-hop"));
    }
}

//! Routing to the services: pooled keep-alive connections, a timeout, the request id
//! passed on, and JSON `502`/`503`/`504` when an upstream fails. The token is checked at
//! the edge too (and again by the service: defense in depth).

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use platform::auth::{Caller, TokenVerifier};
use platform::ApiError;

use std::sync::Arc;

use axum::http::Method;
use platform::shutdown::CancellationToken;
use platform::upstream::Pool;

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
}

/// The replicas behind each first path segment.
pub struct Routes {
    book: Pool,
    payment: Pool,
    house: Pool,
    mypage: Pool,
}

impl Routes {
    /// The pools named by the settings.
    pub fn new(u: &Upstreams) -> anyhow::Result<Self> {
        Ok(Self {
            book: Pool::parse("book", &u.book)?,
            payment: Pool::parse("payment", &u.payment)?,
            house: Pool::parse("house", &u.house)?,
            mypage: Pool::parse("mypage", &u.mypage)?,
        })
    }

    /// Starts polling the replicas' readiness until `stop`.
    pub fn watch(&self, every: Duration, stop: &CancellationToken) {
        for pool in [&self.book, &self.payment, &self.house, &self.mypage] {
            pool.watch(every, stop.clone());
        }
    }

    fn route(&self, path: &str) -> Option<&Pool> {
        let first = path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default();
        match first {
            "books" => Some(&self.book),
            "payments" | "faults" => Some(&self.payment),
            "houses" => Some(&self.house),
            "mypages" | "availability" => Some(&self.mypage),
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
        limiter: Limiter,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_millis(upstreams.timeout_ms))
            .build()?;
        Ok(Self {
            http,
            upstreams: Arc::new(Routes::new(upstreams)?),
            verifier,
            body_limit,
            limiter,
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

/// Whether a request may be sent again after its answer was lost: the methods HTTP
/// calls idempotent. A lost `POST` is not repeated (it may have been done); a refused
/// connection is always tried elsewhere (nothing was sent).
fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    )
}

/// Forwards one request to a ready replica of its service, and to another replica when
/// the first cannot have done it.
pub async fn forward(
    State(proxy): State<Proxy>,
    caller: Caller,
    req: Request,
) -> Result<Response, ApiError> {
    proxy.limiter.admit(&caller.id)?;
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let pool = proxy
        .upstreams
        .route(path)
        .ok_or_else(|| ApiError::not_found(format!("no route for {} {path}", parts.method)))?;
    let name = pool.name();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or(path);
    let body: Bytes = axum::body::to_bytes(body, proxy.body_limit)
        .await
        .map_err(|_| ApiError::payload_too_large())?;
    let mut headers = HeaderMap::new();
    for (k, v) in &parts.headers {
        if forwardable(k) {
            headers.append(k.clone(), v.clone());
        }
    }
    let mut tried = Vec::new();
    let res = loop {
        let Some(base) = pool.pick(&tried) else {
            return Err(ApiError::unavailable(
                format!("{name} is unavailable"),
                Duration::from_secs(1),
            ));
        };
        let sent = proxy
            .http
            .request(parts.method.clone(), format!("{base}{path_and_query}"))
            .headers(headers.clone())
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(r) => break r,
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
            Err(_) if idempotent(&parts.method) => {
                tracing::info!(upstream = name, replica = %base, "answer lost; trying another replica");
            }
            Err(_) => {
                return Err(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "bad_gateway",
                    format!("{name} failed to answer"),
                ))
            }
        }
        tried.push(base);
    };
    let status = res.status();
    let mut out = HeaderMap::new();
    for (k, v) in res.headers() {
        if forwardable(k) {
            out.append(k.clone(), v.clone());
        }
    }
    let bytes = res.bytes().await.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "bad_gateway",
            format!("{name} failed to answer"),
        )
    })?;
    let mut response = (status, Body::from(bytes)).into_response();
    *response.headers_mut() = out;
    Ok(response)
}

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

use crate::settings::Upstreams;

/// What the proxy needs.
#[derive(Clone)]
pub struct Proxy {
    /// Pooled client.
    pub http: reqwest::Client,
    /// Where to send each route.
    pub upstreams: Upstreams,
    /// Edge token check.
    pub verifier: TokenVerifier,
    /// Largest body forwarded.
    pub body_limit: usize,
}

impl Proxy {
    /// A proxy with a keep-alive pool.
    pub fn new(
        upstreams: Upstreams,
        verifier: TokenVerifier,
        body_limit: usize,
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
            upstreams,
            verifier,
            body_limit,
        })
    }

    fn upstream(&self, path: &str) -> Option<(&'static str, &str)> {
        let first = path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default();
        match first {
            "books" => Some(("book", &self.upstreams.book)),
            "payments" | "faults" => Some(("payment", &self.upstreams.payment)),
            "houses" => Some(("house", &self.upstreams.house)),
            "mypages" | "availability" => Some(("mypage", &self.upstreams.mypage)),
            _ => None,
        }
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

/// Forwards one request to its service.
pub async fn forward(
    State(proxy): State<Proxy>,
    _caller: Caller,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let (name, base) = proxy
        .upstream(path)
        .ok_or_else(|| ApiError::not_found(format!("no route for {} {path}", parts.method)))?;
    let url = match parts.uri.query() {
        Some(q) => format!("{base}{path}?{q}"),
        None => format!("{base}{path}"),
    };
    let body: Bytes = axum::body::to_bytes(body, proxy.body_limit)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body too large",
            )
        })?;
    let mut headers = HeaderMap::new();
    for (k, v) in &parts.headers {
        if forwardable(k) {
            headers.append(k.clone(), v.clone());
        }
    }
    let sent = proxy
        .http
        .request(parts.method.clone(), &url)
        .headers(headers)
        .body(body)
        .send()
        .await;
    let res = match sent {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                format!("{name} did not answer in time"),
            ))
        }
        Err(e) if e.is_connect() => {
            return Err(ApiError::unavailable(
                format!("{name} is unavailable"),
                Duration::from_secs(1),
            ))
        }
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                format!("{name} failed to answer"),
            ))
        }
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

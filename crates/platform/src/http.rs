//! HTTP plumbing shared by every service: extractors that answer in our error shape,
//! the request-id / logging / metrics middleware, and JSON fallbacks.

use std::time::Instant;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::Instrument;

use crate::error::{ApiError, ErrorCause};
use crate::metrics::Metrics;

/// The request id header, set when absent and echoed on the response.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A JSON body extractor and response whose rejections use [`ApiError`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    /// A JSON object (every endpoint takes one: `[]` or `42` is refused even where all
    /// fields have defaults), within the body limit, with a JSON content type.
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_type = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase())
            .is_some_and(|m| {
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            });
        if !json_type {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|r| {
                if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::payload_too_large()
                } else {
                    ApiError::bad_request("could not read the request body")
                }
            })?;
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "the body must be a JSON object",
            ));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let text = rejection.body_text();
    match rejection {
        JsonRejection::JsonDataError(_) => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", text)
        }
        JsonRejection::JsonSyntaxError(_) => {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", text)
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected Content-Type: application/json",
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(),
        _ => ApiError::bad_request("could not read the request body"),
    }
}

impl<T: Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A path extractor whose rejection is a JSON `400`; a path with an encoded control
/// character ([`encodes_control`]) is refused before any handler sees it.
#[derive(Debug)]
pub struct AppPath<T>(pub T);

/// Whether a raw (still percent-encoded) path encodes a control character (`%00`–`%1F`,
/// `%7F`): never part of an id anywhere, and PostgreSQL refuses text with NUL in it (a
/// lookup of `/books/a%00b` would otherwise fail as a server error).
pub fn encodes_control(raw_path: &str) -> bool {
    let b = raw_path.as_bytes();
    b.windows(3).any(|w| {
        w[0] == b'%'
            && matches!(
                (w[1].to_ascii_uppercase(), w[2].to_ascii_uppercase()),
                (b'0' | b'1', b'0'..=b'9' | b'A'..=b'F') | (b'7', b'F')
            )
    })
}

impl<S, T> FromRequestParts<S> for AppPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if encodes_control(parts.uri.path()) {
            return Err(ApiError::invalid_path("the path has a control character"));
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Self(v)),
            Err(e @ PathRejection::FailedToDeserializePathParams(_)) => {
                Err(ApiError::invalid_path(e.body_text()))
            }
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

/// A query-string extractor whose rejection is a JSON `400`.
#[derive(Debug)]
pub struct AppQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for AppQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(e @ QueryRejection::FailedToDeserializeQueryString(_)) => {
                Err(ApiError::invalid_query(e.body_text()))
            }
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

/// A listing's query string: its own filter `F` and the [`Page`] (`limit`, `offset`), read
/// from the one string. `F` takes `#[serde(deny_unknown_fields)]`, as `Page` does: a
/// parameter neither names is refused (400), never ignored (`?stauts=` would otherwise
/// list everything). Two `AppQuery`s could not do that, each ignoring the other's fields.
#[derive(Debug)]
pub struct AppListQuery<F>(pub F, pub Page);

impl<S, F> FromRequestParts<S> for AppListQuery<F>
where
    F: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let invalid = |e: &dyn std::fmt::Display| {
            ApiError::invalid_query(format!("Failed to deserialize query string: {e}"))
        };
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
                .map_err(|e| invalid(&e))?;
        let (page, filter): (Vec<_>, Vec<_>) = pairs
            .into_iter()
            .partition(|(k, _)| matches!(k.as_str(), "limit" | "offset" | "order"));
        let read = |pairs: &[(String, String)]| serde_urlencoded::to_string(pairs);
        let page: Page = serde_urlencoded::from_str(&read(&page).map_err(|e| invalid(&e))?)
            .map_err(|e| invalid(&e))?;
        let filter: F = serde_urlencoded::from_str(&read(&filter).map_err(|e| invalid(&e))?)
            .map_err(|e| invalid(&e))?;
        Ok(Self(filter, page))
    }
}

/// JSON `404` for unknown routes. The request's body (up to `limit`) is read first, as
/// for every refusal made before a handler reads it (`server::refuse_before_body`): unread
/// bytes would end the connection without a word, and the client's next request on it
/// would find it closed — the API fuzzer's "Remote end closed connection without response"
/// after a GET with a body to an unknown route or a POST-only one.
pub async fn not_found(limit: usize, req: Request) -> Response {
    let e = ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ));
    crate::server::refuse_before_body(e, req.into_body(), limit).await
}

/// JSON `405` for known routes with the wrong method; the body is read first, as in
/// [`not_found`].
pub async fn method_not_allowed(limit: usize, req: Request) -> Response {
    let e = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    );
    crate::server::refuse_before_body(e, req.into_body(), limit).await
}

/// The longest request id taken from a client.
pub const MAX_REQUEST_ID: usize = 128;

/// Drops a client's `X-Request-Id` that is longer than [`MAX_REQUEST_ID`] or has anything
/// but printable ASCII (control characters, spaces, bytes ≥ 0x80), so that a fresh one is
/// minted in its place: the id is echoed, logged on every line of the request and passed
/// on to every upstream, and a client must not choose what that costs or writes.
pub async fn bound_request_id(mut req: Request, next: Next) -> Response {
    let bad = req.headers().get_all(&REQUEST_ID).iter().count() > 1
        || req.headers().get(&REQUEST_ID).is_some_and(|v| {
            let b = v.as_bytes();
            b.is_empty() || b.len() > MAX_REQUEST_ID || !b.iter().all(u8::is_ascii_graphic)
        });
    if bad {
        req.headers_mut().remove(&REQUEST_ID);
    }
    next.run(req).await
}

/// What [`observe`] needs: the metrics, and whether a client's trace context is continued.
#[derive(Clone)]
pub struct Observer {
    /// Where requests are counted.
    pub metrics: Metrics,
    /// Continue the client's `traceparent` (behind the fleet's own edge, and locally), or
    /// start a new trace linked to it and drop `tracestate` and `baggage` (the internet).
    pub trust_trace_context: bool,
}

/// Per-request span with the request id, route metrics, one log line per request, and the
/// one place where the cause of a 5xx is logged.
pub async fn observe(
    State(Observer {
        metrics,
        trust_trace_context,
    }): State<Observer>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    // Bounded like the metrics' label: the method is the client's to choose.
    let method = crate::metrics::method_label(req.method().as_str());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let span = tracing::info_span!(
        "http",
        %method,
        %route,
        request_id = %request_id,
        trace_id = tracing::field::Empty,
    );
    let parent = req
        .headers()
        .get(crate::trace::TRACEPARENT)
        .and_then(|v| v.to_str().ok());
    crate::trace::continue_or_link(&span, parent, trust_trace_context);
    if !trust_trace_context {
        for name in crate::trace::CLIENT_CONTEXT {
            req.headers_mut().remove(name);
        }
    }
    let res = next.run(req).instrument(span.clone()).await;
    let status = res.status();
    let elapsed = started.elapsed();
    metrics.observe_http(method, &route, status.as_u16(), elapsed);
    let _enter = span.enter();
    if let Some(ErrorCause(cause)) = res.extensions().get::<ErrorCause>() {
        tracing::error!(
            status = status.as_u16(),
            error = format!("{cause:#}"),
            "request failed"
        );
    } else if route != "/healthz" && route != "/readyz" && route != "/metrics" {
        tracing::info!(
            status = status.as_u16(),
            latency_ms = elapsed.as_secs_f64() * 1e3,
            "request"
        );
    }
    res
}

/// Every answer is its caller's own: no cache on the way may keep it (a shared cache
/// that kept one caller's bookings or token would hand them to the next) unless it says
/// otherwise itself (the key set, the pages), and no browser may read it as another type
/// than the one it declares.
pub async fn answer_headers(mut res: Response) -> Response {
    use axum::http::{header, HeaderValue};
    let headers = res.headers_mut();
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

/// Declared bodies bigger than this are refused without being read at all.
const DRAIN_CAP: u64 = 8 * 1024 * 1024;

/// Refuses a request whose `Content-Length` passes the body limit with a JSON `413`
/// before any handler runs. A body of up to 8 MiB is read and thrown away first, so the
/// client — still sending — gets the answer rather than a reset connection; a bigger one
/// is refused at once (its sender is not owed a clean close).
pub async fn reject_oversized(State(limit): State<usize>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => {
            if n <= DRAIN_CAP {
                use futures::StreamExt as _;
                let mut body = req.into_body().into_data_stream();
                let drained = async { while let Some(Ok(_)) = body.next().await {} };
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), drained).await;
            }
            ApiError::payload_too_large().into_response()
        }
        _ => next.run(req).await,
    }
}

/// `?limit=&offset=&order=` of a list endpoint: alone as an `AppQuery<Page>`, or beside
/// the listing's own filter in an [`AppListQuery`]; any other parameter is refused.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Rows wanted, 1 to [`Page::MAX`]; 100 when absent.
    pub limit: Option<i64>,
    /// Rows skipped; 0 when absent.
    pub offset: Option<i64>,
    /// Oldest first when absent.
    pub order: Option<Order>,
}

/// The order of a list, by the listing's own key (ids that grow with time, or when it
/// happened): oldest first, or newest first — the first page of a long list is then the
/// latest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Oldest first (the default).
    #[default]
    Oldest,
    /// Newest first.
    Newest,
}

impl Order {
    /// `ORDER BY` terms (`"a, b"`) in this order.
    pub fn sql(self, terms: &str) -> String {
        let way = match self {
            Self::Oldest => "ASC",
            Self::Newest => "DESC",
        };
        terms
            .split(',')
            .map(|t| format!("{} {way}", t.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Page {
    /// The order asked for.
    pub fn order(&self) -> Order {
        self.order.unwrap_or_default()
    }

    /// The most rows one page holds.
    pub const MAX: i64 = 1000;

    /// `(limit, offset)`, or `422` when out of range.
    pub fn bounds(&self) -> Result<(i64, i64), ApiError> {
        let limit = self.limit.unwrap_or(100);
        let offset = self.offset.unwrap_or(0);
        if !(1..=Self::MAX).contains(&limit) || offset < 0 {
            return Err(ApiError::unprocessable(
                "limit must be 1 to 1000 and offset not negative",
            ));
        }
        Ok((limit, offset))
    }
}

/// Lenient number parsing for bodies: accepts `200000` and `"200000"` (httpie's `key=value`
/// sends strings, and the seed's commands are written that way); rejects fractions and
/// numbers that do not fit.
pub mod lenient {
    use std::fmt;

    use serde::de::{self, Deserializer, Visitor};

    struct WholeNumber;

    impl Visitor<'_> for WholeNumber {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a whole number that fits in 64 bits")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom("number too large"))
        }
        /// `2.0` and `1e3` are whole numbers too (JSON Schema's `integer` counts them,
        /// and so do the documents): taken as such, within 64 bits; `2.5` is not.
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
            whole(v).ok_or_else(|| E::custom("expected a whole number that fits in 64 bits"))
        }
        /// Digits, with a minus sign first or not: what the documents' patterns say (no
        /// `+`, no white space, which `str::parse` would also take).
        fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
            let digits = v.strip_prefix('-').unwrap_or(v);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(E::custom(format!(
                    "expected a whole number, got {:?}",
                    truncate(v)
                )));
            }
            v.parse().map_err(|_| E::custom("number too large"))
        }
    }

    struct IdText;

    impl Visitor<'_> for IdText {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
            whole(v)
                .map(|n| n.to_string())
                .ok_or_else(|| E::custom("expected a string or a whole number"))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
    }

    /// The whole number a float is, if it is one that fits in 64 bits.
    fn whole(v: f64) -> Option<i64> {
        // 2^63 is the first float past i64::MAX; every float below it in size converts.
        const LIMIT: f64 = 9_223_372_036_854_775_808.0;
        (v.is_finite() && v.fract() == 0.0 && (-LIMIT..LIMIT).contains(&v)).then_some(v as i64)
    }

    fn truncate(s: &str) -> String {
        s.chars().take(40).collect()
    }

    /// Deserializes an `i64` from a number or a numeric string.
    pub fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        d.deserialize_any(WholeNumber)
    }

    /// Deserializes a `u64` from a whole number that is not negative (`417` or `417.0`).
    pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let n = i64(d)?;
        u64::try_from(n).map_err(|_| de::Error::custom("expected a whole number of 0 or more"))
    }

    /// Like [`u64()`], for a field that may be absent (with `#[serde(default)]`) but not
    /// `null`.
    pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        u64(d).map(Some)
    }

    /// Deserializes an id-like string from a string or a whole number (`bookId=1`).
    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        d.deserialize_any(IdText)
    }

    /// Like [`string()`], for a field that may be absent (with `#[serde(default)]`) but
    /// not `null`.
    pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        string(d).map(Some)
    }
}

/// For a body field that may be absent (with `#[serde(default)]`) but not `null`, which
/// `Option` alone would read as absent: the documents say which fields are nullable, and
/// only those are.
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// `GET /openapi.json`: the service's OpenAPI document (checked in beside its code; the
/// test harness checks that every documented route exists).
pub fn openapi_route(doc: &'static str) -> axum::Router {
    axum::Router::new().route(
        "/openapi.json",
        axum::routing::get(move || async move {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                doc,
            )
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    struct P {
        #[serde(deserialize_with = "lenient::i64")]
        price: i64,
    }

    #[test]
    fn lenient_numbers() {
        assert_eq!(
            serde_json::from_str::<P>(r#"{"price": 5}"#).unwrap().price,
            5
        );
        assert_eq!(
            serde_json::from_str::<P>(r#"{"price": "200000"}"#)
                .unwrap()
                .price,
            200000
        );
        assert!(serde_json::from_str::<P>(r#"{"price": "12abc"}"#).is_err());
        assert!(serde_json::from_str::<P>(r#"{"price": 1.5}"#).is_err());
        assert!(serde_json::from_str::<P>(r#"{"price": 99999999999999999999}"#).is_err());
        assert!(serde_json::from_str::<P>(r#"{"price": null}"#).is_err());
        // Text is digits as the documents' patterns say: no sign but minus, no space.
        assert_eq!(
            serde_json::from_str::<P>(r#"{"price": "-7"}"#)
                .unwrap()
                .price,
            -7
        );
        for refused in ["+5", " 5", "5 ", "", "-"] {
            let body = serde_json::json!({ "price": refused }).to_string();
            assert!(serde_json::from_str::<P>(&body).is_err(), "{refused:?}");
        }
    }

    /// A float that is a whole number is one (JSON Schema's `integer` says so); one past
    /// 64 bits, or with a fraction, is not.
    #[test]
    fn integer_valued_numbers_are_whole_numbers() {
        for (body, want) in [
            (r#"{"price": 2.0}"#, 2),
            (r#"{"price": 1e3}"#, 1000),
            (r#"{"price": -4.0}"#, -4),
            (r#"{"price": -0.0}"#, 0),
            (r#"{"price": 4.5e15}"#, 4_500_000_000_000_000),
        ] {
            assert_eq!(
                serde_json::from_str::<P>(body).unwrap().price,
                want,
                "{body}"
            );
        }
        for refused in [
            r#"{"price": 2.5}"#,
            r#"{"price": 1e19}"#,
            r#"{"price": -1e19}"#,
            r#"{"price": 9.3e18}"#,
        ] {
            assert!(serde_json::from_str::<P>(refused).is_err(), "{refused}");
        }
        #[derive(Deserialize, Debug)]
        struct Q {
            #[serde(deserialize_with = "lenient::u64")]
            ms: u64,
            #[serde(deserialize_with = "lenient::string")]
            id: String,
        }
        let q: Q = serde_json::from_str(r#"{"ms": 417.0, "id": 20300101.0}"#).unwrap();
        #[derive(Deserialize, Debug)]
        struct O {
            #[serde(default, deserialize_with = "lenient::opt_u64")]
            ms: Option<u64>,
        }
        assert_eq!(
            serde_json::from_str::<O>(r#"{"ms": 4.17e2}"#).unwrap().ms,
            Some(417)
        );
        assert_eq!(serde_json::from_str::<O>("{}").unwrap().ms, None);
        assert!(serde_json::from_str::<O>(r#"{"ms": null}"#).is_err());
        assert_eq!((q.ms, q.id.as_str()), (417, "20300101"));
        assert!(serde_json::from_str::<Q>(r#"{"ms": -1, "id": "x"}"#).is_err());
        assert!(serde_json::from_str::<Q>(r#"{"ms": 1, "id": 0.5}"#).is_err());
    }

    #[test]
    fn an_encoded_control_character_is_found_in_any_case() {
        for bad in [
            "/books/a%00b",
            "/books/%1f",
            "/x/%1F/y",
            "/x/%7f",
            "/x/a%0A",
        ] {
            assert!(encodes_control(bad), "{bad}");
        }
        for good in [
            "/books/0193-ab",
            "/x/%20",
            "/x/%C3%A9",
            "/x/%2",
            "/x/%",
            "/x/%80",
        ] {
            assert!(!encodes_control(good), "{good}");
        }
    }

    #[tokio::test]
    async fn a_listing_reads_its_filter_and_page_from_one_string_and_refuses_the_rest() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        struct Filter {
            status: Option<String>,
        }
        async fn read(uri: &str) -> Result<AppListQuery<Filter>, ApiError> {
            let (mut parts, ()) = axum::http::Request::get(uri).body(()).unwrap().into_parts();
            AppListQuery::<Filter>::from_request_parts(&mut parts, &()).await
        }
        let AppListQuery(f, page) = read("/b?status=BOOKED&limit=5&offset=2").await.unwrap();
        assert_eq!(f.status.as_deref(), Some("BOOKED"));
        assert_eq!((page.limit, page.offset), (Some(5), Some(2)));
        let AppListQuery(f, page) = read("/b").await.unwrap();
        assert_eq!((f.status, page.limit, page.offset), (None, None, None));
        for bad in [
            "/b?stauts=BOOKED",
            "/b?limit=x",
            "/b?limit=1&limit=2",
            "/b?status=a&status=b",
        ] {
            let e = read(bad).await.unwrap_err();
            assert_eq!(
                (e.status, e.code),
                (StatusCode::BAD_REQUEST, "invalid_query"),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_page_refuses_a_parameter_it_does_not_know() {
        let page: Page = serde_urlencoded::from_str("limit=5&offset=2").unwrap();
        assert_eq!((page.limit, page.offset), (Some(5), Some(2)));
        assert!(serde_urlencoded::from_str::<Page>("limit=5&stauts=BOOKED").is_err());
    }
}

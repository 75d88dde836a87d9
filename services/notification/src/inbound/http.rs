//! `GET /notifications`: the caller's messages (an admin's: all), oldest first unless asked
//! newest first; and `GET /notifications/stream`: the same, live, as server-sent events.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use platform::auth::{Actor, Caller, TokenVerifier};
use platform::http::Page;
use platform::shutdown::CancellationToken;
use platform::stream::{StreamPermit, Streams};
use platform::{ApiError, AppJson, AppQuery};
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::domain::service::NotificationService;
use crate::domain::{Cursor, Notification};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The use cases.
    pub service: NotificationService,
    /// Token checking.
    pub verifier: TokenVerifier,
    /// The open streams and their bounds.
    pub streams: Streams,
    /// How long streams idle and how often they say they are alive.
    pub stream_settings: crate::StreamSettings,
    /// Ends every stream when the service stops.
    pub stop: CancellationToken,
}

impl FromRef<AppState> for TokenVerifier {
    fn from_ref(s: &AppState) -> Self {
        s.verifier.clone()
    }
}

/// The routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/notifications", get(list))
        .route("/notifications/stream", get(stream))
        .with_state(state)
        .merge(platform::http::openapi_route(include_str!(
            "../../openapi.json"
        )))
}

/// A message as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NotificationView {
    id: String,
    book_id: String,
    customer_id: Option<String>,
    kind: String,
    message: String,
    occurred_at: String,
}

impl From<Notification> for NotificationView {
    fn from(n: Notification) -> Self {
        Self {
            id: n.id,
            book_id: n.book_id,
            customer_id: n.customer_id,
            kind: n.kind,
            message: n.text,
            occurred_at: n.occurred_at,
        }
    }
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(page): AppQuery<Page>,
) -> Result<AppJson<Vec<NotificationView>>, ApiError> {
    let (limit, offset) = page.bounds()?;
    let list = state
        .service
        .list(&caller.actor(), limit, offset, page.order())
        .await?;
    Ok(AppJson(list.into_iter().map(Into::into).collect()))
}

/// Messages read from the store at a time by a stream.
const STREAM_PAGE: i64 = 100;

/// Commits that come close together are read as one: a stream waits this long after
/// being woken before it reads.
const SETTLE: Duration = Duration::from_millis(50);

/// `GET /notifications/stream`: every message the caller may see (an admin's: all) from
/// now — or, with `Last-Event-ID`, from after that event — as it is stored, each an event
/// `notification` whose id is its place in the feed. Bounded per caller and in all
/// ([`Streams`]); it ends when idle, when the token expires and when the service stops.
async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let after = match headers.get("last-event-id") {
        None => state.service.feed_head().await?,
        Some(v) => v.to_str().ok().and_then(Cursor::parse).ok_or_else(|| {
            ApiError::bad_request("Last-Event-ID must be an event id this stream sent")
        })?,
    };
    let permit = state.streams.admit(&caller.id)?;
    let now = Instant::now();
    let feed = Feed {
        signal: state.service.feed_signal(),
        service: state.service,
        reader: caller.actor(),
        after,
        queue: VecDeque::new(),
        read_now: true,
        idle: state.stream_settings.idle(),
        last_sent: now,
        ends: now + platform::stream::until_expiry(caller.expires_at),
        stop: state.stop,
        _permit: permit,
    };
    let events = futures::stream::unfold(feed, Feed::next);
    let mut res = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(state.stream_settings.keepalive()))
        .into_response();
    // A proxy in front (the nginx Ingress) passes each event on at once instead of
    // filling a buffer first; the keep-alives stay within its read timeout.
    res.headers_mut().insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    Ok(res)
}

/// One open stream: where its reader is in the feed and what is read but not yet sent.
struct Feed {
    service: NotificationService,
    reader: Actor,
    after: Cursor,
    signal: watch::Receiver<u64>,
    queue: VecDeque<(Cursor, Notification)>,
    /// Read before waiting (at the start, and while pages come full).
    read_now: bool,
    idle: Duration,
    last_sent: Instant,
    ends: Instant,
    stop: CancellationToken,
    _permit: StreamPermit,
}

impl Feed {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        loop {
            while let Some((cursor, n)) = self.queue.pop_front() {
                match event(&cursor, n) {
                    Some(e) => {
                        self.last_sent = Instant::now();
                        return Some((Ok(e), self));
                    }
                    None => tracing::warn!(%cursor, "a message that cannot be an event; skipped"),
                }
            }
            if !self.read_now {
                tokio::select! {
                    changed = self.signal.changed() => if changed.is_err() { return None },
                    () = tokio::time::sleep_until(self.last_sent + self.idle) => return None,
                    () = tokio::time::sleep_until(self.ends) => return None,
                    () = self.stop.cancelled() => return None,
                }
                tokio::time::sleep(SETTLE).await;
            }
            if Instant::now() >= self.ends || self.stop.is_cancelled() {
                return None;
            }
            match self
                .service
                .feed(&self.reader, &self.after, STREAM_PAGE)
                .await
            {
                Ok(page) => {
                    self.read_now = page.len() as i64 == STREAM_PAGE;
                    if let Some((last, _)) = page.last() {
                        self.after = last.clone();
                    }
                    self.queue.extend(page);
                }
                Err(e) => {
                    // The reader reconnects and resumes where it was.
                    tracing::warn!(error = %e, "could not read the feed; ending the stream");
                    return None;
                }
            }
        }
    }
}

/// A message as an event; `None` when its id could not be sent as one (a line break).
fn event(cursor: &Cursor, n: Notification) -> Option<Event> {
    let id = cursor.to_string();
    if id.contains(['\n', '\r', '\0']) {
        return None;
    }
    Event::default()
        .id(id)
        .event("notification")
        .json_data(NotificationView::from(n))
        .ok()
}

//! `GET /notifications`: the caller's messages (an admin's: all), oldest first.

use axum::extract::{FromRef, State};
use axum::routing::get;
use axum::Router;
use platform::auth::{Caller, TokenVerifier};
use platform::http::Page;
use platform::{ApiError, AppJson, AppQuery};
use serde::Serialize;

use crate::domain::service::NotificationService;
use crate::domain::Notification;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The use cases.
    pub service: NotificationService,
    /// Token checking.
    pub verifier: TokenVerifier,
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
    let list = state.service.list(&caller.actor(), limit, offset).await?;
    Ok(AppJson(list.into_iter().map(Into::into).collect()))
}

//! The booking REST adapter (SPEC §4), with the seed's `PATCH`/`PUT` cancel.

use axum::extract::{FromRef, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, NaiveDate, Utc};
use platform::auth::{Caller, TokenVerifier};
use platform::http::lenient;
use platform::{ApiError, AppJson, AppListQuery, AppPath};
use serde::{Deserialize, Serialize};

use crate::domain::models::{BookStatus, Booking};
use crate::domain::service::BookService;
use crate::domain::service::{BookError, CancelBookingError, GetError};
use crate::inbound::calls::{self, ListError, StayAsked};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The domain service.
    pub service: BookService,
    /// Token checking.
    pub verifier: TokenVerifier,
}

impl FromRef<AppState> for TokenVerifier {
    fn from_ref(s: &AppState) -> Self {
        s.verifier.clone()
    }
}

/// The booking routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/books", post(create).get(list))
        .route("/books/{id}", get(get_one).patch(patch).put(patch))
        .route("/books/{id}/cancel", post(cancel))
        .with_state(state)
        .merge(platform::http::openapi_route(include_str!(
            "../../openapi.json"
        )))
}

/// A booking as the API shows it (the seed's names; `bookDate` is the first night).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BookView {
    id: String,
    customer_id: String,
    house_id: i64,
    house_name: String,
    /// Total price of the stay.
    house_price: i64,
    book_date: NaiveDate,
    check_in: NaiveDate,
    check_out: NaiveDate,
    nights: i64,
    status: &'static str,
    payment_id: i64,
    created_at: DateTime<Utc>,
    book_cancel_date: Option<DateTime<Utc>>,
}

impl From<Booking> for BookView {
    fn from(b: Booking) -> Self {
        Self {
            id: b.id,
            customer_id: b.customer_id,
            house_id: b.house_id,
            house_name: b.house_name,
            house_price: b.price,
            book_date: b.stay.check_in(),
            check_in: b.stay.check_in(),
            check_out: b.stay.check_out(),
            nights: b.stay.nights(),
            status: b.status.as_str(),
            payment_id: b.payment_id,
            created_at: b.created_at,
            book_cancel_date: b.book_cancel_date,
        }
    }
}

/// `POST /books`. The seed sends `id`, `status`, `housePrice`: ignored — the price comes
/// from the listing.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    #[serde(deserialize_with = "lenient::i64")]
    house_id: i64,
    #[serde(default, deserialize_with = "platform::http::present")]
    check_in: Option<String>,
    #[serde(default, deserialize_with = "platform::http::present")]
    check_out: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    book_date: Option<String>,
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(body): AppJson<CreateBody>,
) -> Result<Response, ApiError> {
    let asked = StayAsked {
        house_id: body.house_id,
        check_in: body.check_in,
        check_out: body.check_out,
        book_date: body.book_date,
    };
    let b = calls::book(&state.service, &caller, asked).await?;
    let location = format!("/books/{}", b.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        AppJson(BookView::from(b)),
    )
        .into_response())
}

async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<String>,
) -> Result<AppJson<BookView>, ApiError> {
    let b = calls::cancel(&state.service, &caller, &id).await?;
    Ok(AppJson(b.into()))
}

#[derive(Debug, Deserialize)]
struct PatchBody {
    status: String,
}

/// The seed's `PATCH /books/{id} status=BOOK_CANCELED`; a client cannot set any other status.
async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<PatchBody>,
) -> Result<AppJson<BookView>, ApiError> {
    match BookStatus::parse(&body.status) {
        Some(BookStatus::BookCanceled) => cancel(State(state), caller, AppPath(id)).await,
        Some(other) => Err(ApiError::conflict(format!(
            "a client can only cancel a booking; {} is set by the system",
            other.as_str()
        ))),
        None => Err(ApiError::unprocessable("status must be BOOK_CANCELED")),
    }
}

async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<String>,
) -> Result<AppJson<BookView>, ApiError> {
    let b = calls::get(&state.service, &caller, &id).await?;
    Ok(AppJson(b.into()))
}

/// `GET /books?status=`: one status only (either spelling of the cancelled status).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusQuery {
    status: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    AppListQuery(q, page): AppListQuery<StatusQuery>,
) -> Result<AppJson<Vec<BookView>>, ApiError> {
    let list = calls::list(&state.service, &caller, q.status.as_deref(), &page).await?;
    Ok(AppJson(list.into_iter().map(Into::into).collect()))
}

impl From<BookError> for ApiError {
    fn from(e: BookError) -> Self {
        match e {
            BookError::NotAllowed => ApiError::forbidden(e.to_string()),
            BookError::Invalid(e) => ApiError::unprocessable(e.to_string()),
            BookError::TooFast { retry_after } => {
                let mut limited =
                    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "booking_pace", e.to_string());
                limited.retry_after = Some(retry_after);
                limited
            }
            BookError::PaymentUnavailable { retry_after, .. }
            | BookError::HouseUnavailable { retry_after, .. } => {
                ApiError::unavailable(e.to_string(), retry_after)
            }
            BookError::Unknown(e) => ApiError::internal(e),
        }
    }
}

impl From<CancelBookingError> for ApiError {
    fn from(e: CancelBookingError) -> Self {
        match e {
            CancelBookingError::NotFound(_) => ApiError::not_found(e.to_string()),
            CancelBookingError::NotYours => ApiError::forbidden(e.to_string()),
            CancelBookingError::Invalid(t) => ApiError::conflict(t.to_string()),
            CancelBookingError::StayBegun(_) => {
                ApiError::new(StatusCode::CONFLICT, "stay_begun", e.to_string())
            }
            CancelBookingError::Unknown(e) => ApiError::internal(e),
        }
    }
}

impl From<GetError> for ApiError {
    fn from(e: GetError) -> Self {
        match e {
            GetError::NotFound(_) => ApiError::not_found(e.to_string()),
            GetError::NotYours => ApiError::forbidden(e.to_string()),
            GetError::Unknown(e) => ApiError::internal(e),
        }
    }
}

impl From<ListError> for ApiError {
    fn from(e: ListError) -> Self {
        match e {
            ListError::Invalid(m) => ApiError::unprocessable(m),
            ListError::Unknown(e) => ApiError::internal(e),
        }
    }
}

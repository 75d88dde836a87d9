//! The booking REST adapter (SPEC §4), with the seed's `PATCH`/`PUT` cancel.

use axum::extract::{FromRef, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, NaiveDate, Utc};
use platform::auth::{Caller, Role, TokenVerifier};
use platform::http::{lenient, Page};
use platform::{ApiError, AppJson, AppPath, AppQuery};
use serde::{Deserialize, Serialize};

use crate::domain::models::{BookStatus, Booking, BookingInvalid, BookingRequest};
use crate::domain::service::{Actor, BookError, BookService, CancelBookingError, GetError};

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
    check_in: Option<String>,
    check_out: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    book_date: Option<String>,
}

impl CreateBody {
    fn try_into_domain(self, today: NaiveDate) -> Result<BookingRequest, BookingInvalid> {
        let stay = match (self.check_in, self.check_out, self.book_date) {
            (Some(i), Some(o), _) => {
                events::Stay::new(events::parse_date(&i)?, events::parse_date(&o)?)?
            }
            (None, None, Some(d)) => events::Stay::one_night(events::parse_date(&d)?)?,
            _ => return Err(BookingInvalid::NoStay),
        };
        BookingRequest::new(self.house_id, stay, today)
    }
}

fn actor(c: &Caller) -> Actor {
    Actor {
        id: c.id.clone(),
        sees_all: c.sees_all(),
    }
}

fn get_error(e: GetError, id: &str) -> ApiError {
    match e {
        GetError::NotFound => ApiError::not_found(format!("no booking {id}")),
        GetError::NotYours => ApiError::forbidden("this booking belongs to someone else"),
        GetError::Unknown(e) => ApiError::internal(e),
    }
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(body): AppJson<CreateBody>,
) -> Result<Response, ApiError> {
    caller.require_any(&[Role::Customer, Role::Admin])?;
    let request = body
        .try_into_domain(Utc::now().date_naive())
        .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    match state.service.book(&caller.id, request).await {
        Ok(b) => {
            let location = format!("/books/{}", b.id);
            Ok((
                StatusCode::CREATED,
                [(header::LOCATION, location)],
                AppJson(BookView::from(b)),
            )
                .into_response())
        }
        Err(BookError::Invalid(e)) => Err(ApiError::unprocessable(e.to_string())),
        Err(BookError::PaymentUnavailable { retry_after, .. }) => Err(ApiError::unavailable(
            "payment is unavailable; nothing was booked, try again later",
            retry_after,
        )),
        Err(BookError::HouseUnavailable { retry_after, .. }) => Err(ApiError::unavailable(
            "house is unavailable and this house is not known here yet; nothing was booked, try again later",
            retry_after,
        )),
        Err(BookError::Unknown(e)) => Err(ApiError::internal(e)),
    }
}

fn cancel_result(r: Result<Booking, CancelBookingError>) -> Result<AppJson<BookView>, ApiError> {
    match r {
        Ok(b) => Ok(AppJson(b.into())),
        Err(CancelBookingError::NotFound(id)) => {
            Err(ApiError::not_found(format!("no booking {id}")))
        }
        Err(CancelBookingError::NotYours) => {
            Err(ApiError::forbidden("this booking belongs to someone else"))
        }
        Err(CancelBookingError::Invalid(t)) => Err(ApiError::conflict(t.to_string())),
        Err(CancelBookingError::Unknown(e)) => Err(ApiError::internal(e)),
    }
}

async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<String>,
) -> Result<AppJson<BookView>, ApiError> {
    cancel_result(state.service.cancel(&actor(&caller), &id).await)
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
        Some(BookStatus::BookCanceled) => {
            cancel_result(state.service.cancel(&actor(&caller), &id).await)
        }
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
    state
        .service
        .get(&actor(&caller), &id)
        .await
        .map(|b| AppJson(b.into()))
        .map_err(|e| get_error(e, &id))
}

/// `GET /books?status=`: one status only (either spelling of the cancelled status).
#[derive(Debug, Deserialize)]
struct StatusQuery {
    status: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(q): AppQuery<StatusQuery>,
    AppQuery(page): AppQuery<Page>,
) -> Result<AppJson<Vec<BookView>>, ApiError> {
    let (limit, offset) = page.bounds()?;
    let status = q
        .status
        .map(|s| {
            BookStatus::parse(&s).ok_or_else(|| {
                ApiError::unprocessable(
                    "status must be BOOKED, CONFIRMED, REJECTED or BOOK_CANCELED",
                )
            })
        })
        .transpose()?;
    let list = state
        .service
        .list(&actor(&caller), status, limit, offset)
        .await?;
    Ok(AppJson(list.into_iter().map(Into::into).collect()))
}

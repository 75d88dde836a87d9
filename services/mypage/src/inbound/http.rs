//! The view's REST adapter: `GET /mypages`, `GET /mypages/{bookId}`, `GET /availability`.

use axum::extract::{FromRef, State};
use axum::routing::get;
use axum::Router;
use chrono::NaiveDate;
use platform::auth::{Caller, TokenVerifier};
use platform::http::{lenient, Page};
use platform::{ApiError, AppJson, AppPath, AppQuery};
use serde::{Deserialize, Serialize};

use crate::domain::models::BookingView;
use crate::domain::service::{ViewError, ViewService};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The view service.
    pub service: ViewService,
    /// Token checking.
    pub verifier: TokenVerifier,
}

impl FromRef<AppState> for TokenVerifier {
    fn from_ref(s: &AppState) -> Self {
        s.verifier.clone()
    }
}

/// The view's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/mypages", get(list))
        .route("/mypages/{book_id}", get(get_one))
        .route("/availability", get(availability))
        .with_state(state)
        .merge(platform::http::openapi_route(include_str!(
            "../../openapi.json"
        )))
}

/// A row as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MypageView {
    id: String,
    book_id: String,
    customer_id: Option<String>,
    house_id: Option<i64>,
    house_name: Option<String>,
    house_price: Option<i64>,
    check_in: Option<NaiveDate>,
    check_out: Option<NaiveDate>,
    /// The booking's status (BOOKED, CONFIRMED, REJECTED, BOOK_CANCELED); `PAID` while
    /// only the payment is known.
    status: Option<String>,
    payment_id: Option<i64>,
    payment_status: Option<String>,
    house_status: Option<String>,
    refunded: bool,
    reason: Option<String>,
    paid_at: Option<String>,
    refunded_at: Option<String>,
    book_cancel_date: Option<String>,
}

impl From<BookingView> for MypageView {
    fn from(v: BookingView) -> Self {
        Self {
            id: v.book_id.clone(),
            status: v.book_status.or_else(|| v.payment_status.clone()),
            refunded: v.payment_status.as_deref() == Some("PAYMENT_CANCELED"),
            book_id: v.book_id,
            customer_id: v.customer_id,
            house_id: v.house_id,
            house_name: v.house_name,
            house_price: v.house_price,
            check_in: v.check_in,
            check_out: v.check_out,
            payment_id: v.payment_id,
            payment_status: v.payment_status,
            house_status: v.house_status,
            reason: v.reason,
            paid_at: v.paid_at,
            refunded_at: v.refunded_at,
            book_cancel_date: v.book_cancel_date,
        }
    }
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    AppQuery(page): AppQuery<Page>,
) -> Result<AppJson<Vec<MypageView>>, ApiError> {
    let (limit, offset) = page.bounds()?;
    let rows = state
        .service
        .list(&caller.actor(), limit, offset, page.order())
        .await?;
    Ok(AppJson(rows.into_iter().map(Into::into).collect()))
}

async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<String>,
) -> Result<AppJson<MypageView>, ApiError> {
    match state.service.get(&caller.actor(), &id).await {
        Ok(v) => Ok(AppJson(v.into())),
        Err(ViewError::NotFound) => Err(ApiError::not_found(format!("no booking {id}"))),
        Err(ViewError::NotYours) => {
            Err(ApiError::forbidden("this booking belongs to someone else"))
        }
        Err(ViewError::Unknown(e)) => Err(ApiError::internal(e)),
    }
}

/// Any other parameter is refused.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AvailabilityQuery {
    #[serde(deserialize_with = "lenient::i64")]
    house_id: i64,
    check_in: Option<String>,
    check_out: Option<String>,
    date: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AvailabilityView {
    house_id: i64,
    check_in: NaiveDate,
    check_out: NaiveDate,
    available: bool,
    taken_nights: Vec<NaiveDate>,
}

/// F7: `GET /availability?houseId=1&checkIn=2030-01-10&checkOut=2030-01-12` (or `date=`
/// for one night; default tonight).
async fn availability(
    State(state): State<AppState>,
    _caller: Caller,
    AppQuery(q): AppQuery<AvailabilityQuery>,
) -> Result<AppJson<AvailabilityView>, ApiError> {
    let bad = |e: events::StayError| ApiError::unprocessable(e.to_string());
    let stay = match (&q.check_in, &q.check_out, &q.date) {
        (Some(i), Some(o), _) => events::Stay::new(
            events::parse_date(i).map_err(bad)?,
            events::parse_date(o).map_err(bad)?,
        ),
        (None, None, Some(d)) => events::Stay::one_night(events::parse_date(d).map_err(bad)?),
        (None, None, None) => events::Stay::one_night(chrono::Utc::now().date_naive()),
        _ => {
            return Err(ApiError::unprocessable(
                "give checkIn and checkOut, or date",
            ))
        }
    }
    .map_err(bad)?;
    let a = state
        .service
        .availability(q.house_id, &stay)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no house {}", q.house_id)))?;
    Ok(AppJson(AvailabilityView {
        house_id: a.house_id,
        check_in: stay.check_in(),
        check_out: stay.check_out(),
        available: a.taken.is_empty(),
        taken_nights: a.taken,
    }))
}

//! The payment REST adapter (SPEC §4): parse at the edge, call the domain service, map its
//! errors to our JSON error shape.

use axum::extract::FromRef;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, NaiveDate, Utc};
use platform::auth::{Caller, Role, TokenVerifier};
use platform::http::lenient;
use platform::{ApiError, AppJson, AppListQuery, AppPath};
use serde::{Deserialize, Serialize};
use tracing::Instrument as _;

use super::faults::{FaultSettings, Faults};
use crate::domain::models::may_move_money;
use crate::domain::models::{BookId, Money, NewPayment, Payment, PaymentInvalid, PaymentStatus};
use crate::domain::ports::PaymentKey;
use crate::domain::service::{Outcome, PayError, PaymentService, RefundError};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The domain service.
    pub service: PaymentService,
    /// Token checking.
    pub verifier: TokenVerifier,
    /// Fault knobs.
    pub faults: Faults,
}

impl FromRef<AppState> for TokenVerifier {
    fn from_ref(s: &AppState) -> Self {
        s.verifier.clone()
    }
}

/// The payment routes.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/payments", post(create).get(list))
        .route("/payments/{id}", get(get_one).patch(patch).put(patch))
        .route("/payments/{id}/cancel", post(cancel))
        .route("/payments/by-book/{book_id}/cancel", post(cancel_by_book));
    // Switched off, `/faults` does not exist (a 404 like any unknown path).
    let routes = if state.faults.enabled() {
        routes.route("/faults", get(get_faults).put(put_faults))
    } else {
        routes
    };
    routes
        .with_state(state)
        .merge(platform::http::openapi_route(include_str!(
            "../../openapi.json"
        )))
}

/// A payment as the API shows it (the seed's field names).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentView {
    /// Id.
    pub id: i64,
    /// Booking.
    pub book_id: String,
    /// House.
    pub house_id: i64,
    /// Payer.
    pub customer_id: String,
    /// Amount.
    pub house_price: i64,
    /// First night.
    pub check_in: NaiveDate,
    /// Departure.
    pub check_out: NaiveDate,
    /// `PAID` or `PAYMENT_CANCELED`.
    pub status: String,
    /// Taken at.
    pub payment_date: DateTime<Utc>,
    /// Refunded at.
    pub payment_cancel_date: Option<DateTime<Utc>>,
}

impl From<Payment> for PaymentView {
    fn from(p: Payment) -> Self {
        Self {
            id: p.id,
            book_id: p.book_id,
            house_id: p.house_id,
            customer_id: p.customer_id,
            house_price: p.amount,
            check_in: p.stay.check_in(),
            check_out: p.stay.check_out(),
            status: p.status.as_str().to_owned(),
            payment_date: p.payment_date,
            payment_cancel_date: p.payment_cancel_date,
        }
    }
}

/// `POST /payments`. Unknown fields (the seed sends `id`, `status`, `paymentDate`) are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    #[serde(deserialize_with = "lenient::string")]
    book_id: String,
    #[serde(deserialize_with = "lenient::i64")]
    house_id: i64,
    #[serde(deserialize_with = "lenient::i64")]
    house_price: i64,
    #[serde(default, deserialize_with = "platform::http::present")]
    customer_id: Option<String>,
    #[serde(default, deserialize_with = "platform::http::present")]
    check_in: Option<String>,
    #[serde(default, deserialize_with = "platform::http::present")]
    check_out: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    book_date: Option<String>,
}

impl CreateBody {
    fn try_into_domain(self, caller: &Caller) -> Result<NewPayment, PaymentInvalid> {
        let stay = match (self.check_in, self.check_out, self.book_date) {
            (Some(i), Some(o), _) => {
                events::Stay::new(events::parse_date(&i)?, events::parse_date(&o)?)?
            }
            (None, None, Some(d)) => events::Stay::one_night(events::parse_date(&d)?)?,
            _ => return Err(PaymentInvalid::NoStay),
        };
        if self.house_id <= 0 {
            return Err(PaymentInvalid::HouseId);
        }
        // A service pays on behalf of the customer it names; anyone else pays for themselves.
        let customer_id = match (caller.has(Role::Service), self.customer_id) {
            (true, Some(c)) if valid_subject(&c) => c,
            (true, _) => return Err(PaymentInvalid::Customer),
            (false, _) => caller.id.clone(),
        };
        Ok(NewPayment {
            book_id: BookId::new(&self.book_id)?,
            house_id: self.house_id,
            customer_id,
            amount: Money::new(self.house_price)?,
            stay,
        })
    }
}

fn moves_money(caller: &Caller) -> Result<(), ApiError> {
    if may_move_money(caller) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only the booking service or an admin takes or refunds payments",
        ))
    }
}

impl From<PayError> for ApiError {
    fn from(e: PayError) -> Self {
        match e {
            PayError::Conflict(_) => ApiError::conflict(e.to_string()),
            PayError::Unknown(e) => ApiError::internal(e),
        }
    }
}

impl From<RefundError> for ApiError {
    fn from(e: RefundError) -> Self {
        match e {
            RefundError::NotFound(_) => ApiError::not_found(e.to_string()),
            RefundError::Unknown(e) => ApiError::internal(e),
        }
    }
}

fn valid_subject(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_graphic())
}

fn created(view: PaymentView, outcome: Outcome) -> Response {
    match outcome {
        Outcome::Done => {
            let location = format!("/payments/{}", view.id);
            (
                StatusCode::CREATED,
                [(header::LOCATION, location)],
                AppJson(view),
            )
                .into_response()
        }
        Outcome::AlreadyDone => (StatusCode::OK, AppJson(view)).into_response(),
    }
}

async fn create(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    AppJson(body): AppJson<CreateBody>,
) -> Result<Response, ApiError> {
    moves_money(&caller)?;
    let new = body
        .try_into_domain(&caller)
        .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    // Detached from the connection: a caller that gives up (a timeout) does not abort a
    // payment half-way; it completes, the caller's retry gets the same payment, and a
    // payment nobody booked is refunded by book's reconciler.
    // It stays in the request's span, and so in its trace.
    let work = tokio::spawn(
        async move {
            state.faults.apply().await?;
            Ok::<_, ApiError>(state.service.pay(new).await)
        }
        .in_current_span(),
    );
    let result = work
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("payment task failed: {e}")))??;
    let (p, outcome) = result?;
    Ok(created(p.into(), outcome))
}

async fn refund(
    service: &PaymentService,
    key: PaymentKey<'_>,
) -> Result<AppJson<PaymentView>, ApiError> {
    let (p, _) = service.refund(key).await?;
    Ok(AppJson(p.into()))
}

async fn cancel(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<AppJson<PaymentView>, ApiError> {
    moves_money(&caller)?;
    state.faults.apply().await?;
    refund(&state.service, PaymentKey::Id(id)).await
}

async fn cancel_by_book(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    AppPath(book_id): AppPath<String>,
) -> Result<AppJson<PaymentView>, ApiError> {
    moves_money(&caller)?;
    state.faults.apply().await?;
    refund(&state.service, PaymentKey::Book(&book_id)).await
}

#[derive(Debug, Deserialize)]
struct PatchBody {
    status: String,
}

/// The seed's `PATCH /payments/{id} status=PAYMENT_CANCELED`; no other transition exists.
async fn patch(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
    AppJson(body): AppJson<PatchBody>,
) -> Result<AppJson<PaymentView>, ApiError> {
    moves_money(&caller)?;
    match PaymentStatus::parse(&body.status) {
        Some(PaymentStatus::PaymentCanceled) => {
            state.faults.apply().await?;
            refund(&state.service, PaymentKey::Id(id)).await
        }
        Some(PaymentStatus::Paid) => {
            Err(ApiError::conflict("a payment cannot be set back to PAID"))
        }
        None => Err(ApiError::unprocessable("status must be PAYMENT_CANCELED")),
    }
}

async fn get_one(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<AppJson<PaymentView>, ApiError> {
    // Someone else's payment is answered as a missing one (the service's rule).
    let p = state
        .service
        .get(&caller.actor(), id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no payment {id}")))?;
    Ok(AppJson(p.into()))
}

/// `GET /payments?bookId=`; any other parameter is refused, but the page.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListQuery {
    book_id: Option<String>,
}

async fn list(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    AppListQuery(q, page): AppListQuery<ListQuery>,
) -> Result<AppJson<Vec<PaymentView>>, ApiError> {
    let (limit, offset) = page.bounds()?;
    let book_id = q
        .book_id
        .map(|b| BookId::new(&b).map(|id| id.as_str().to_owned()))
        .transpose()
        .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let list = state
        .service
        .list(&caller.actor(), book_id, limit, offset, page.order())
        .await?;
    Ok(AppJson(list.into_iter().map(Into::into).collect()))
}

async fn get_faults(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
) -> Result<AppJson<FaultSettings>, ApiError> {
    caller.require_any(&[Role::Admin])?;
    Ok(AppJson(state.faults.get()))
}

/// `PUT /faults`: the knobs it names are set, the others turned off (`{}`: all off); a
/// body naming anything else is refused rather than read as "all off".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FaultsBody {
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    delay_min_ms: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    delay_max_ms: Option<u64>,
    #[serde(default, deserialize_with = "platform::http::present")]
    failure_rate: Option<f64>,
}

async fn put_faults(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    AppJson(body): AppJson<FaultsBody>,
) -> Result<AppJson<FaultSettings>, ApiError> {
    caller.require_any(&[Role::Admin])?;
    let settings = FaultSettings {
        enabled: true, // not the caller's to change: Faults::set keeps the deployment's
        delay_min_ms: body.delay_min_ms.unwrap_or(0),
        delay_max_ms: body.delay_max_ms.unwrap_or(0),
        failure_rate: body.failure_rate.unwrap_or(0.0),
    };
    Ok(AppJson(state.faults.set(settings)?))
}

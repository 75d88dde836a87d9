//! The house REST adapter (SPEC §4).

use axum::extract::{FromRef, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::NaiveDate;
use platform::auth::{Caller, Role, TokenVerifier};
use platform::http::lenient;
use platform::{ApiError, AppJson, AppListQuery, AppPath, AppQuery};
use serde::{Deserialize, Serialize};

use crate::domain::models::{House, NewHouse};
use crate::domain::service::{HouseCalendar, HouseService};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The domain service.
    pub service: HouseService,
    /// Token checking.
    pub verifier: TokenVerifier,
}

impl FromRef<AppState> for TokenVerifier {
    fn from_ref(s: &AppState) -> Self {
        s.verifier.clone()
    }
}

/// The house routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/houses", get(list).post(register))
        .route("/houses/{id}", get(get_one))
        .with_state(state)
        .merge(platform::http::openapi_route(include_str!(
            "../../openapi.json"
        )))
}

/// A house as the API shows it (the seed's field names, plus the calendar).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HouseView {
    id: i64,
    house_name: String,
    house_price: i64,
    house_description: String,
    /// `RENTED` or `AVAILABLE` on `date`.
    status: &'static str,
    /// The date `status` is for.
    date: NaiveDate,
    #[serde(skip_serializing_if = "Option::is_none")]
    reserved_nights: Option<Vec<NightView>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NightView {
    night: NaiveDate,
    /// Shown to admins and services only: other customers' booking ids are not theirs to see.
    #[serde(skip_serializing_if = "Option::is_none")]
    book_id: Option<String>,
}

fn view(house: House, rented: bool, date: NaiveDate) -> HouseView {
    HouseView {
        id: house.id,
        house_name: house.name,
        house_price: house.price,
        house_description: house.description,
        status: if rented { "RENTED" } else { "AVAILABLE" },
        date,
        reserved_nights: None,
    }
}

/// `POST /houses`; the seed's `id` and `status` are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterBody {
    house_name: String,
    #[serde(deserialize_with = "lenient::i64")]
    house_price: i64,
    house_description: Option<String>,
}

async fn register(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(body): AppJson<RegisterBody>,
) -> Result<Response, ApiError> {
    caller.require_any(&[Role::Admin])?;
    let new = NewHouse::new(
        &body.house_name,
        body.house_price,
        body.house_description.as_deref(),
    )
    .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let house = state.service.register(new).await?;
    let location = format!("/houses/{}", house.id);
    let today = chrono::Utc::now().date_naive();
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        AppJson(view(house, false, today)),
    )
        .into_response())
}

/// `?date=` (any other parameter is refused, but a listing's page).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DateQuery {
    date: Option<String>,
}

impl DateQuery {
    fn date(&self) -> Result<NaiveDate, ApiError> {
        match &self.date {
            None => Ok(chrono::Utc::now().date_naive()),
            Some(d) => events::parse_date(d).map_err(|e| ApiError::unprocessable(e.to_string())),
        }
    }
}

async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    AppListQuery(q, page): AppListQuery<DateQuery>,
) -> Result<AppJson<Vec<HouseView>>, ApiError> {
    let date = q.date()?;
    let (limit, offset) = page.bounds()?;
    let houses = state
        .service
        .list(date, limit, offset, page.order())
        .await?;
    Ok(AppJson(
        houses
            .into_iter()
            .map(|(h, rented)| view(h, rented, date))
            .collect(),
    ))
}

async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
    AppQuery(q): AppQuery<DateQuery>,
) -> Result<AppJson<HouseView>, ApiError> {
    let date = q.date()?;
    let HouseCalendar {
        house,
        rented_on_date,
        reserved,
    } = state
        .service
        .calendar(id, date)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no house {id}")))?;
    let show_ids = caller.sees_all();
    let mut v = view(house, rented_on_date, date);
    v.reserved_nights = Some(
        reserved
            .into_iter()
            .map(|n| NightView {
                night: n.night,
                book_id: show_ids.then_some(n.book_id),
            })
            .collect(),
    );
    Ok(AppJson(v))
}

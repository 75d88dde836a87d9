//! What a caller may ask of the booking service, whatever protocol carried it: roles,
//! the request's values checked, the domain's answers mapped to the fleet's errors. The
//! REST and gRPC adapters are thin shells around these (the hexagonal checkpoint: a second
//! protocol adds an adapter, never a rule).

use chrono::NaiveDate;
use platform::auth::{Caller, Role};
use platform::http::Page;
use platform::ApiError;

use crate::domain::models::{BookStatus, Booking, BookingInvalid, BookingRequest, Horizon};
use crate::domain::service::{BookError, BookService, CancelBookingError, GetError};

/// What a client sent to book a stay: `checkIn` + `checkOut`, or the seed's one-night
/// `bookDate`.
#[derive(Debug, Default)]
pub struct StayAsked {
    /// The house.
    pub house_id: i64,
    /// First night.
    pub check_in: Option<String>,
    /// Morning of departure.
    pub check_out: Option<String>,
    /// The seed's one night.
    pub book_date: Option<String>,
}

impl StayAsked {
    fn request(self, today: NaiveDate, horizon: Horizon) -> Result<BookingRequest, BookingInvalid> {
        let stay = match (self.check_in, self.check_out, self.book_date) {
            (Some(i), Some(o), _) => {
                events::Stay::new(events::parse_date(&i)?, events::parse_date(&o)?)?
            }
            (None, None, Some(d)) => events::Stay::one_night(events::parse_date(&d)?)?,
            _ => return Err(BookingInvalid::NoStay),
        };
        BookingRequest::new(self.house_id, stay, today, horizon)
    }
}

/// Books a stay (CUSTOMER or ADMIN).
pub async fn book(
    service: &BookService,
    caller: &Caller,
    asked: StayAsked,
) -> Result<Booking, ApiError> {
    caller.require_any(&[Role::Customer, Role::Admin])?;
    let request = asked
        .request(service.today(), service.horizon())
        .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    service
        .book(&caller.id, request)
        .await
        .map_err(|e| match e {
            BookError::Invalid(e) => ApiError::unprocessable(e.to_string()),
            BookError::PaymentUnavailable { retry_after, .. } => ApiError::unavailable(
                "payment is unavailable; nothing was booked, try again later",
                retry_after,
            ),
            BookError::HouseUnavailable { retry_after, .. } => ApiError::unavailable(
                "house is unavailable and this house is not known here yet; nothing was booked, try again later",
                retry_after,
            ),
            BookError::Unknown(e) => ApiError::internal(e),
        })
}

/// Cancels a booking: the caller's own, or any for an admin.
pub async fn cancel(service: &BookService, caller: &Caller, id: &str) -> Result<Booking, ApiError> {
    service
        .cancel(&caller.actor(), id)
        .await
        .map_err(|e| match e {
            CancelBookingError::NotFound(id) => ApiError::not_found(format!("no booking {id}")),
            CancelBookingError::NotYours => {
                ApiError::forbidden("this booking belongs to someone else")
            }
            CancelBookingError::Invalid(t) => ApiError::conflict(t.to_string()),
            CancelBookingError::Unknown(e) => ApiError::internal(e),
        })
}

/// One booking: the caller's own, or any for an admin.
pub async fn get(service: &BookService, caller: &Caller, id: &str) -> Result<Booking, ApiError> {
    service.get(&caller.actor(), id).await.map_err(|e| match e {
        GetError::NotFound => ApiError::not_found(format!("no booking {id}")),
        GetError::NotYours => ApiError::forbidden("this booking belongs to someone else"),
        GetError::Unknown(e) => ApiError::internal(e),
    })
}

/// The caller's bookings (an admin's: all), of one status when asked (either spelling of
/// the cancelled status).
pub async fn list(
    service: &BookService,
    caller: &Caller,
    status: Option<&str>,
    page: &Page,
) -> Result<Vec<Booking>, ApiError> {
    let (limit, offset) = page.bounds()?;
    let status = status
        .map(|s| {
            BookStatus::parse(s).ok_or_else(|| {
                ApiError::unprocessable(
                    "status must be BOOKED, CONFIRMED, REJECTED or BOOK_CANCELED",
                )
            })
        })
        .transpose()?;
    Ok(service.list(&caller.actor(), status, limit, offset).await?)
}

/// The seed's `PATCH /books/{id} status=BOOK_CANCELED`: a client can only cancel.
pub async fn set_status(
    service: &BookService,
    caller: &Caller,
    id: &str,
    status: &str,
) -> Result<Booking, ApiError> {
    match BookStatus::parse(status) {
        Some(BookStatus::BookCanceled) => cancel(service, caller, id).await,
        Some(other) => Err(ApiError::conflict(format!(
            "a client can only cancel a booking; {} is set by the system",
            other.as_str()
        ))),
        None => Err(ApiError::unprocessable("status must be BOOK_CANCELED")),
    }
}

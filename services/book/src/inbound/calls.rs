//! What a caller may ask of the booking service, whatever protocol carried it: roles and
//! the request's values checked, answered with the domain's own errors. The REST and gRPC
//! adapters are thin shells around these, each turning those errors into its protocol's
//! (the hexagonal checkpoint: a second protocol adds an adapter, never a rule).

use chrono::NaiveDate;
use platform::auth::{Caller, Role};
use platform::http::Page;

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
) -> Result<Booking, BookError> {
    if !(caller.has(Role::Customer) || caller.has(Role::Admin)) {
        return Err(BookError::NotAllowed);
    }
    let request = asked.request(service.today(), service.horizon())?;
    service.book(&caller.id, request).await
}

/// Cancels a booking: the caller's own, or any for an admin.
pub async fn cancel(
    service: &BookService,
    caller: &Caller,
    id: &str,
) -> Result<Booking, CancelBookingError> {
    service.cancel(&caller.actor(), id).await
}

/// One booking: the caller's own, or any for an admin.
pub async fn get(service: &BookService, caller: &Caller, id: &str) -> Result<Booking, GetError> {
    service.get(&caller.actor(), id).await
}

/// Why bookings cannot be listed.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// A bad filter or page (422).
    #[error("{0}")]
    Invalid(String),
    /// Anything else (500).
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

/// The caller's bookings (an admin's: all), of one status when asked (either spelling of
/// the cancelled status).
pub async fn list(
    service: &BookService,
    caller: &Caller,
    status: Option<&str>,
    page: &Page,
) -> Result<Vec<Booking>, ListError> {
    let (limit, offset) = page.bounds().map_err(|e| ListError::Invalid(e.message))?;
    let status = status
        .map(|s| {
            BookStatus::parse(s).ok_or_else(|| {
                ListError::Invalid(
                    "status must be BOOKED, CONFIRMED, REJECTED or BOOK_CANCELED".into(),
                )
            })
        })
        .transpose()?;
    Ok(service
        .list(&caller.actor(), status, limit, offset, page.order())
        .await?)
}

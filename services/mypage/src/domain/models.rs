//! The view's rows and the availability answer.

use chrono::NaiveDate;

/// One booking as the customer sees it, assembled from every event of that booking.
/// Fields are `None` until the event that carries them has arrived.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BookingView {
    /// The booking id.
    pub book_id: String,
    /// Its owner.
    pub customer_id: Option<String>,
    /// The house.
    pub house_id: Option<i64>,
    /// The house's name.
    pub house_name: Option<String>,
    /// Total price.
    pub house_price: Option<i64>,
    /// First night.
    pub check_in: Option<NaiveDate>,
    /// Departure.
    pub check_out: Option<NaiveDate>,
    /// From book: BOOKED, CONFIRMED, REJECTED, BOOK_CANCELED.
    pub book_status: Option<String>,
    /// The payment.
    pub payment_id: Option<i64>,
    /// From payment: PAID, PAYMENT_CANCELED.
    pub payment_status: Option<String>,
    /// From house: RENTED, REJECTED, RELEASED.
    pub house_status: Option<String>,
    /// Why the house refused.
    pub reason: Option<String>,
    /// When it was paid.
    pub paid_at: Option<String>,
    /// When it was refunded.
    pub refunded_at: Option<String>,
    /// When it was cancelled.
    pub book_cancel_date: Option<String>,
}

/// Whether a house is free for a stay, and which nights are taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    /// The house.
    pub house_id: i64,
    /// Taken nights within the asked-for range.
    pub taken: Vec<NaiveDate>,
}

//! Payments and the rules that make one valid.

use chrono::{DateTime, Utc};
use events::Stay;

pub use events::Money;

/// The booking a payment is for: its correlation id, and the idempotency key of payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookId(String);

impl BookId {
    /// 1–64 visible ASCII characters (booking ids are UUIDs).
    pub fn new(id: &str) -> Result<Self, PaymentInvalid> {
        let id = id.trim();
        if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_graphic()) {
            return Err(PaymentInvalid::BookId);
        }
        Ok(Self(id.to_owned()))
    }
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    /// Taken.
    Paid,
    /// Refunded.
    PaymentCanceled,
}

impl PaymentStatus {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paid => "PAID",
            Self::PaymentCanceled => "PAYMENT_CANCELED",
        }
    }
    /// Reads a status; the seed's single-L and the double-L spelling both work.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PAID" => Some(Self::Paid),
            "PAYMENT_CANCELED" | "PAYMENT_CANCELLED" => Some(Self::PaymentCanceled),
            _ => None,
        }
    }
}

/// A request to pay for a booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    /// The booking (idempotency key).
    pub book_id: BookId,
    /// The house booked.
    pub house_id: i64,
    /// Who pays.
    pub customer_id: String,
    /// How much.
    pub amount: Money,
    /// The stay paid for.
    pub stay: Stay,
}

/// A stored payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// Server-generated id.
    pub id: i64,
    /// The booking paid for.
    pub book_id: String,
    /// The house booked.
    pub house_id: i64,
    /// Who paid.
    pub customer_id: String,
    /// Amount.
    pub amount: i64,
    /// The stay paid for.
    pub stay: Stay,
    /// Status.
    pub status: PaymentStatus,
    /// When it was taken.
    pub payment_date: DateTime<Utc>,
    /// When it was refunded.
    pub payment_cancel_date: Option<DateTime<Utc>>,
}

impl Payment {
    /// Whether a repeated request asks for exactly this payment.
    pub fn matches(&self, new: &NewPayment) -> bool {
        self.book_id == new.book_id.as_str()
            && self.house_id == new.house_id
            && self.customer_id == new.customer_id
            && self.amount == new.amount.get()
            && self.stay == new.stay
    }
}

/// Why a payment request is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentInvalid {
    /// Bad amount.
    #[error("housePrice {0}")]
    Amount(#[from] events::MoneyError),
    /// Bad booking id.
    #[error("bookId must be 1 to 64 visible characters")]
    BookId,
    /// Bad house id.
    #[error("houseId must be a positive number")]
    HouseId,
    /// Bad stay.
    #[error(transparent)]
    Stay(#[from] events::StayError),
    /// A service must name the customer it pays for.
    #[error("customerId must be 1 to 64 visible characters")]
    Customer,
    /// No stay given.
    #[error("give checkIn and checkOut, or bookDate")]
    NoStay,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn book_ids_are_short_and_visible() {
        assert!(BookId::new("").is_err());
        assert!(BookId::new(&"x".repeat(65)).is_err());
        assert!(BookId::new("a b").is_err());
        assert!(BookId::new("é").is_err());
        assert_eq!(BookId::new(" abc ").unwrap().as_str(), "abc");
    }

    #[test]
    fn both_spellings_of_cancelled_parse() {
        assert_eq!(
            PaymentStatus::parse("payment_cancelled"),
            Some(PaymentStatus::PaymentCanceled)
        );
        assert_eq!(
            PaymentStatus::parse("PAYMENT_CANCELED"),
            Some(PaymentStatus::PaymentCanceled)
        );
        assert_eq!(PaymentStatus::parse("REFUNDED"), None);
    }
}

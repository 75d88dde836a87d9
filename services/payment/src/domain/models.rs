//! The Payment aggregate: what makes a payment valid, taking one and refunding it, and the
//! events each publishes.

use chrono::{DateTime, Utc};
use events::{DomainEvent, Paid, PaymentCanceled, Stay};
use platform::auth::{Caller, Role};

pub use events::Money;

/// The booking a payment is for: its correlation id, and the idempotency key of payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookId(String);

impl BookId {
    /// 1–64 visible ASCII characters (booking ids are UUIDs).
    pub fn new(id: &str) -> Result<Self, PaymentInvalid> {
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
        match s {
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
    /// A new payment as taken at `at`, under the id the store gave it; it publishes
    /// [`Self::paid`].
    pub fn taken(id: i64, new: &NewPayment, at: DateTime<Utc>) -> Self {
        Self {
            id,
            book_id: new.book_id.as_str().to_owned(),
            house_id: new.house_id,
            customer_id: new.customer_id.clone(),
            amount: new.amount.get(),
            stay: new.stay,
            status: PaymentStatus::Paid,
            payment_date: at,
            payment_cancel_date: None,
        }
    }

    /// The `Paid` event of a payment taken.
    pub fn paid(&self) -> DomainEvent {
        DomainEvent::Paid(Paid {
            payment_id: self.id,
            book_id: self.book_id.clone(),
            house_id: self.house_id,
            customer_id: self.customer_id.clone(),
            house_price: self.amount,
            check_in: self.stay.check_in(),
            check_out: self.stay.check_out(),
            payment_date: self.payment_date,
        })
    }

    /// A refund at `at`: the refunded payment and its `PaymentCanceled`; `None` for a
    /// payment refunded already (refunding is idempotent: nothing moves twice).
    pub fn refund(&self, at: DateTime<Utc>) -> Option<(Self, DomainEvent)> {
        if self.status == PaymentStatus::PaymentCanceled {
            return None;
        }
        let refunded = Self {
            status: PaymentStatus::PaymentCanceled,
            payment_cancel_date: Some(at),
            ..self.clone()
        };
        let event = DomainEvent::PaymentCanceled(PaymentCanceled {
            payment_id: self.id,
            book_id: self.book_id.clone(),
            house_id: self.house_id,
            house_price: self.amount,
            payment_cancel_date: at,
        });
        Some((refunded, event))
    }

    /// Whether a repeated request asks for exactly this payment.
    pub fn matches(&self, new: &NewPayment) -> bool {
        self.book_id == new.book_id.as_str()
            && self.house_id == new.house_id
            && self.customer_id == new.customer_id
            && self.amount == new.amount.get()
            && self.stay == new.stay
    }
}

/// The one service identity that moves money: book, which pays for and refunds its
/// bookings.
const MONEY_CALLER: &str = "book";

/// Who may take or refund payments: book, and an admin (a refund an admin makes cancels
/// the booking it paid for: book follows `PaymentCanceled`). Any other service identity is
/// refused, as a customer is.
pub fn may_move_money(caller: &Caller) -> bool {
    caller.has(Role::Admin) || (caller.has(Role::Service) && caller.id == MONEY_CALLER)
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
        assert!(BookId::new(" abc").is_err(), "as given: nothing is trimmed");
        assert_eq!(BookId::new("abc").unwrap().as_str(), "abc");
    }

    #[test]
    fn both_spellings_of_cancelled_parse_and_nothing_else() {
        assert_eq!(
            PaymentStatus::parse("PAYMENT_CANCELLED"),
            Some(PaymentStatus::PaymentCanceled)
        );
        assert_eq!(PaymentStatus::parse("payment_cancelled"), None);
        assert_eq!(PaymentStatus::parse("PAID "), None);
        assert_eq!(
            PaymentStatus::parse("PAYMENT_CANCELED"),
            Some(PaymentStatus::PaymentCanceled)
        );
        assert_eq!(PaymentStatus::parse("REFUNDED"), None);
    }
}

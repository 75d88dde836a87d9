//! The Book aggregate: its statuses, the transitions between them, and what makes a new
//! booking valid.

use chrono::{DateTime, NaiveDate, Utc};
pub use events::{Money, Stay};

/// Where a booking stands (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookStatus {
    /// Paid, waiting for the house.
    Booked,
    /// The house reserved the nights.
    Confirmed,
    /// The nights were taken; refunded.
    Rejected,
    /// Cancelled by the customer; refunded; nights released.
    BookCanceled,
}

/// A transition the aggregate does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {from} booking cannot become {to}")]
pub struct InvalidTransition {
    /// Current status.
    pub from: &'static str,
    /// Asked-for status.
    pub to: &'static str,
}

impl BookStatus {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Booked => "BOOKED",
            Self::Confirmed => "CONFIRMED",
            Self::Rejected => "REJECTED",
            Self::BookCanceled => "BOOK_CANCELED",
        }
    }

    /// Reads a status; the seed's single-L and the double-L spelling both work.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "BOOKED" => Some(Self::Booked),
            "CONFIRMED" => Some(Self::Confirmed),
            "REJECTED" => Some(Self::Rejected),
            "BOOK_CANCELED" | "BOOK_CANCELLED" => Some(Self::BookCanceled),
            _ => None,
        }
    }

    fn to(self, next: Self) -> Result<Self, InvalidTransition> {
        let ok = matches!(
            (self, next),
            (Self::Booked, Self::Confirmed)
                | (Self::Booked, Self::Rejected)
                | (Self::Booked, Self::BookCanceled)
                | (Self::Confirmed, Self::BookCanceled)
        );
        if ok {
            Ok(next)
        } else {
            Err(InvalidTransition {
                from: self.as_str(),
                to: next.as_str(),
            })
        }
    }

    /// The house reserved the nights.
    pub fn confirm(self) -> Result<Self, InvalidTransition> {
        self.to(Self::Confirmed)
    }
    /// The house refused.
    pub fn reject(self) -> Result<Self, InvalidTransition> {
        self.to(Self::Rejected)
    }
    /// The customer cancels.
    pub fn cancel(self) -> Result<Self, InvalidTransition> {
        self.to(Self::BookCanceled)
    }
    /// Whether the booking stands (its payment should be kept).
    pub fn stands(self) -> bool {
        matches!(self, Self::Booked | Self::Confirmed)
    }
}

/// A house as `book` knows it, from `HouseRegistered`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The house id.
    pub house_id: i64,
    /// Its name.
    pub name: String,
    /// Price of one night.
    pub price: i64,
}

/// What a customer asks for: a house and a stay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingRequest {
    /// The house.
    pub house_id: i64,
    /// The stay.
    pub stay: Stay,
}

/// Why a booking request is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookingInvalid {
    /// Bad house id.
    #[error("houseId must be a positive number")]
    HouseId,
    /// Bad stay.
    #[error(transparent)]
    Stay(#[from] events::StayError),
    /// Neither a stay nor a `bookDate`.
    #[error("give checkIn and checkOut, or bookDate")]
    NoStay,
    /// Check-in before today.
    #[error("checkIn must not be in the past")]
    InThePast,
    /// Check-in further ahead than bookings open.
    #[error("checkIn must be on or before {last}: bookings open {days} days ahead")]
    BeyondHorizon {
        /// The last check-in date accepted today.
        last: NaiveDate,
        /// The horizon, in days.
        days: u32,
    },
    /// No such house.
    #[error("no house {0}")]
    UnknownHouse(i64),
    /// The total does not fit.
    #[error("the stay's price {0}")]
    Price(#[from] events::MoneyError),
    /// The customer would hold more nights ahead than one customer may.
    #[error("you hold {held} nights ahead; {asked} more would pass the {max} one customer may hold (cancel a stay, or wait until some have passed)")]
    TooManyNights {
        /// Nights the customer holds now, from today on.
        held: i64,
        /// Nights the new stay asks for.
        asked: i64,
        /// The most one customer may hold.
        max: u32,
    },
}

/// What one customer may hold, so that no one customer can empty a calendar: nights ahead
/// — from today on, in the bookings that stand (`BOOKED`, `CONFIRMED`), every house
/// together — at most `max_nights_ahead` (`0`: no bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holdings {
    /// The most nights ahead one customer may hold.
    pub max_nights_ahead: u32,
}

impl Holdings {
    /// A quarter of a year: more than a person's travels ahead, far less than a calendar.
    pub const DEFAULT_NIGHTS: u32 = 90;

    /// Whether there is a bound at all (when not, nothing need be read to check one).
    pub fn bounded(self) -> bool {
        self.max_nights_ahead > 0
    }

    /// Whether a customer holding `held` (their standing stays that end after today) may
    /// add `stay`.
    pub fn admit(self, held: &[Stay], stay: Stay, today: NaiveDate) -> Result<(), BookingInvalid> {
        if !self.bounded() {
            return Ok(());
        }
        let ahead = |s: &Stay| {
            let from = s.check_in().max(today);
            (s.check_out() - from).num_days().max(0)
        };
        let held: i64 = held.iter().map(ahead).sum();
        let asked = ahead(&stay);
        if held + asked > i64::from(self.max_nights_ahead) {
            return Err(BookingInvalid::TooManyNights {
                held,
                asked,
                max: self.max_nights_ahead,
            });
        }
        Ok(())
    }
}

impl Default for Holdings {
    fn default() -> Self {
        Self {
            max_nights_ahead: Self::DEFAULT_NIGHTS,
        }
    }
}

/// How far ahead bookings open: a check-in at most this many days after today. A house's
/// calendar, prices and plans are not known for ever; the bound also keeps every date the
/// fleet stores a `YYYY-MM-DD` of this era.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizon {
    days: u32,
}

impl Horizon {
    /// Two years ahead.
    pub const DEFAULT_DAYS: u32 = 730;

    /// A horizon of `days` days.
    pub fn days(days: u32) -> Self {
        Self { days }
    }

    /// The last check-in date accepted on `today`.
    pub fn last_check_in(self, today: NaiveDate) -> NaiveDate {
        today
            .checked_add_days(chrono::Days::new(u64::from(self.days)))
            .unwrap_or(NaiveDate::MAX)
    }
}

impl Default for Horizon {
    fn default() -> Self {
        Self::days(Self::DEFAULT_DAYS)
    }
}

impl BookingRequest {
    /// Checks a request against today's date: check-in from today to the horizon.
    pub fn new(
        house_id: i64,
        stay: Stay,
        today: NaiveDate,
        horizon: Horizon,
    ) -> Result<Self, BookingInvalid> {
        if house_id <= 0 {
            return Err(BookingInvalid::HouseId);
        }
        if stay.check_in() < today {
            return Err(BookingInvalid::InThePast);
        }
        let last = horizon.last_check_in(today);
        if stay.check_in() > last {
            return Err(BookingInvalid::BeyondHorizon {
                last,
                days: horizon.days,
            });
        }
        Ok(Self { house_id, stay })
    }

    /// The price of the stay at a listing: nights × price of a night, never the client's.
    pub fn price(&self, listing: &Listing) -> Result<Money, BookingInvalid> {
        Ok(Money::new(listing.price)?.times(self.stay.nights())?)
    }
}

/// A stored booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    /// Server-generated id (a UUIDv7), also the correlation id of its events.
    pub id: String,
    /// Its owner (token subject).
    pub customer_id: String,
    /// The house.
    pub house_id: i64,
    /// The house's name when booked.
    pub house_name: String,
    /// Total price of the stay.
    pub price: i64,
    /// The stay.
    pub stay: Stay,
    /// Status.
    pub status: BookStatus,
    /// The payment that paid it.
    pub payment_id: i64,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was cancelled.
    pub book_cancel_date: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customer_holds_at_most_the_nights_ahead_one_may() {
        let today = d("2030-01-10");
        let stay = |a: &str, b: &str| Stay::new(d(a), d(b)).unwrap();
        let four = Holdings {
            max_nights_ahead: 4,
        };
        // Two nights held; a stay begun yesterday counts only from today (1 night).
        let held = [
            stay("2030-02-01", "2030-02-03"),
            stay("2030-01-09", "2030-01-11"),
        ];
        assert!(four
            .admit(&held, stay("2030-03-01", "2030-03-02"), today)
            .is_ok());
        let refused = four.admit(&held, stay("2030-03-01", "2030-03-03"), today);
        assert_eq!(
            refused,
            Err(BookingInvalid::TooManyNights {
                held: 3,
                asked: 2,
                max: 4
            })
        );
        assert!(refused
            .unwrap_err()
            .to_string()
            .contains("you hold 3 nights ahead"));
        // One stay longer than the bound alone; and no bound at all.
        assert!(four
            .admit(&[], stay("2030-03-01", "2030-03-06"), today)
            .is_err());
        let none = Holdings {
            max_nights_ahead: 0,
        };
        assert!(none
            .admit(&held, stay("2030-01-10", "2031-01-10"), today)
            .is_ok());
    }

    fn d(s: &str) -> NaiveDate {
        events::parse_date(s).unwrap()
    }

    #[test]
    fn only_the_lifecycle_transitions_are_allowed() {
        use BookStatus::*;
        assert_eq!(Booked.confirm(), Ok(Confirmed));
        assert_eq!(Booked.reject(), Ok(Rejected));
        assert_eq!(Confirmed.cancel(), Ok(BookCanceled));
        assert!(BookCanceled.cancel().is_err(), "cancelling twice");
        assert!(Rejected.cancel().is_err());
        assert!(Confirmed.reject().is_err());
        assert!(BookCanceled.confirm().is_err());
        assert!(Rejected.confirm().is_err());
    }

    #[test]
    fn both_spellings_parse_and_nothing_else() {
        assert_eq!(
            BookStatus::parse("BOOK_CANCELLED"),
            Some(BookStatus::BookCanceled)
        );
        // Exactly the documented words (the public document's enum): no other case, no
        // surrounding space.
        assert_eq!(BookStatus::parse("book_cancelled"), None);
        assert_eq!(BookStatus::parse(" BOOKED"), None);
        assert_eq!(
            BookStatus::parse("BOOK_CANCELED"),
            Some(BookStatus::BookCanceled)
        );
        assert_eq!(BookStatus::parse("PAID"), None);
    }

    #[test]
    fn the_price_is_nights_times_the_listing() {
        let today = d("2030-01-01");
        let h = Horizon::default();
        let r = BookingRequest::new(
            1,
            Stay::new(d("2030-01-10"), d("2030-01-13")).unwrap(),
            today,
            h,
        )
        .unwrap();
        let l = Listing {
            house_id: 1,
            name: "x".into(),
            price: 200_000,
        };
        assert_eq!(r.price(&l).unwrap().get(), 600_000);
        let past = Stay::new(d("2029-12-31"), d("2030-01-02")).unwrap();
        assert_eq!(
            BookingRequest::new(1, past, today, h),
            Err(BookingInvalid::InThePast)
        );
        assert!(
            BookingRequest::new(1, Stay::one_night(today).unwrap(), today, h).is_ok(),
            "tonight is fine"
        );
        assert_eq!(
            BookingRequest::new(0, Stay::one_night(today).unwrap(), today, h),
            Err(BookingInvalid::HouseId)
        );
    }

    #[test]
    fn bookings_open_up_to_the_horizon_and_not_a_day_more() {
        let today = d("2026-12-01");
        let night = |s: &str| Stay::one_night(d(s)).unwrap();
        let h = Horizon::default();
        // 730 days from 2026-12-01, over 29 February 2028.
        assert!(BookingRequest::new(1, night("2028-11-30"), today, h).is_ok());
        assert_eq!(
            BookingRequest::new(1, night("2028-12-01"), today, h),
            Err(BookingInvalid::BeyondHorizon {
                last: d("2028-11-30"),
                days: 730
            })
        );
        assert_eq!(
            BookingRequest::new(1, night("9999-01-01"), today, Horizon::days(30))
                .unwrap_err()
                .to_string(),
            "checkIn must be on or before 2026-12-31: bookings open 30 days ahead"
        );
        assert!(
            BookingRequest::new(1, night("2026-12-01"), today, Horizon::days(0)).is_ok(),
            "a zero horizon still takes tonight"
        );
        assert_eq!(
            Horizon::days(u32::MAX).last_check_in(NaiveDate::MAX),
            NaiveDate::MAX,
            "no overflow"
        );
    }
}

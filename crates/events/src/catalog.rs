//! The catalog of events (SPEC §5), with the seed's names.
//!
//! Money is in whole currency units (`i64`, the seed's `housePrice=200000`); nights are
//! the dates from `checkIn` (inclusive) to `checkOut` (exclusive).

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Context, DecodeError, Event};

/// Declares the payload structs' `Event` impls, the `DomainEvent` enum over them, and the
/// context that publishes each.
macro_rules! catalog {
    ($($name:ident in $context:ident => |$p:ident| $key:expr;)+) => {
        $(impl Event for $name {
            const TYPE: &'static str = stringify!($name);
            fn correlation_id(&self) -> String {
                let $p = self;
                $key
            }
        })+

        /// Any event of the catalog, decoded.
        #[derive(Debug, Clone, PartialEq)]
        pub enum DomainEvent {
            $(
                #[doc = concat!("A `", stringify!($name), "` event.")]
                $name($name),
            )+
        }

        /// Every event type name of the catalog.
        pub const EVENT_TYPES: &[&str] = &[$(stringify!($name)),+];

        impl DomainEvent {
            /// The event in a new envelope.
            pub fn envelope(&self) -> Result<crate::Envelope, serde_json::Error> {
                match self {
                    $(DomainEvent::$name(e) => crate::Envelope::new(e),)+
                }
            }

            /// Decodes a payload given its `eventType`.
            pub fn from_parts(event_type: &str, payload: serde_json::Value) -> Result<Self, DecodeError> {
                match event_type {
                    $(stringify!($name) => serde_json::from_value(payload)
                        .map(DomainEvent::$name)
                        .map_err(|source| DecodeError::Payload { event_type: event_type.to_owned(), source }),)+
                    other => Err(DecodeError::UnknownType(other.to_owned())),
                }
            }
        }

        impl Context {
            /// The context that publishes an event type; `None` for a type not in the catalog.
            pub fn of(event_type: &str) -> Option<Self> {
                match event_type {
                    $(stringify!($name) => Some(Context::$context),)+
                    _ => None,
                }
            }
        }

        /// The JSON Schema of every payload, by event type name.
        pub fn payload_schemas() -> Vec<(&'static str, schemars::schema::RootSchema)> {
            vec![$((stringify!($name), schemars::schema_for!($name))),+]
        }
    };
}

catalog! {
    HouseRegistered in House => |e| format!("house-{}", e.house_id);
    Booked in Booking => |e| e.book_id.clone();
    BookConfirmed in Booking => |e| e.book_id.clone();
    BookRejected in Booking => |e| e.book_id.clone();
    BookCanceled in Booking => |e| e.book_id.clone();
    Paid in Payment => |e| e.book_id.clone();
    PaymentCanceled in Payment => |e| e.book_id.clone();
    HouseRented in House => |e| e.book_id.clone();
    HouseRentRejected in House => |e| e.book_id.clone();
    HouseRentCanceled in House => |e| e.book_id.clone();
}

/// An admin registered a house (F1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HouseRegistered {
    /// The house's id.
    pub house_id: i64,
    /// Its display name.
    pub house_name: String,
    /// Price of one night.
    pub house_price: i64,
}

/// A booking was paid and committed as `BOOKED` (F2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Booked {
    /// The booking id (correlation id).
    pub book_id: String,
    /// The customer who owns the booking (token subject).
    pub customer_id: String,
    /// The booked house.
    pub house_id: i64,
    /// The house's name when booked.
    pub house_name: String,
    /// Total price of the stay.
    pub house_price: i64,
    /// First night.
    pub check_in: NaiveDate,
    /// Day of departure (not a night of the stay).
    pub check_out: NaiveDate,
    /// The payment that paid it.
    pub payment_id: i64,
}

/// The house reserved the nights, so the booking is `CONFIRMED` (F4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BookConfirmed {
    /// The booking id.
    pub book_id: String,
    /// The booked house.
    pub house_id: i64,
}

/// The nights were taken, so the booking is `REJECTED` (and refunded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BookRejected {
    /// The booking id.
    pub book_id: String,
    /// The booked house.
    pub house_id: i64,
    /// Why the house refused.
    pub reason: String,
}

/// The customer cancelled the booking (F5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BookCanceled {
    /// The booking id.
    pub book_id: String,
    /// The booked house.
    pub house_id: i64,
    /// When it was cancelled.
    pub book_cancel_date: DateTime<Utc>,
}

/// A payment was taken for a booking (F2 → F3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Paid {
    /// The payment id.
    pub payment_id: i64,
    /// The booking paid for.
    pub book_id: String,
    /// The booked house.
    pub house_id: i64,
    /// Who paid.
    pub customer_id: String,
    /// Amount paid.
    pub house_price: i64,
    /// First night.
    pub check_in: NaiveDate,
    /// Day of departure.
    pub check_out: NaiveDate,
    /// When it was paid.
    pub payment_date: DateTime<Utc>,
}

/// A payment was cancelled and refunded (F6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentCanceled {
    /// The payment id.
    pub payment_id: i64,
    /// The booking it paid for.
    pub book_id: String,
    /// The booked house.
    pub house_id: i64,
    /// Amount refunded.
    pub house_price: i64,
    /// When it was refunded.
    pub payment_cancel_date: DateTime<Utc>,
}

/// The house reserved the booking's nights (F3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HouseRented {
    /// The house.
    pub house_id: i64,
    /// The booking the nights are held for.
    pub book_id: String,
    /// First night.
    pub check_in: NaiveDate,
    /// Day of departure.
    pub check_out: NaiveDate,
}

/// The house could not reserve the nights (taken, or no such house).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HouseRentRejected {
    /// The house asked for.
    pub house_id: i64,
    /// The booking refused.
    pub book_id: String,
    /// `NIGHTS_TAKEN` or `UNKNOWN_HOUSE`.
    pub reason: String,
}

/// The house released a booking's nights (F6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HouseRentCanceled {
    /// The house.
    pub house_id: i64,
    /// The booking whose nights were released.
    pub book_id: String,
    /// First released night.
    pub check_in: NaiveDate,
    /// Day after the last released night.
    pub check_out: NaiveDate,
}

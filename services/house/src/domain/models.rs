//! Houses, reservations and the rules that make them valid.

use chrono::NaiveDate;
pub use events::{Money, Stay};

/// Characters that change how text around them is shown without showing themselves:
/// bidirectional overrides, embeddings and isolates (`"\u{202e}gnp.exe"` displays as
/// `exe.png`), directional marks, and zero-width spaces and joiners. Refused in every text
/// a house shows to others.
pub fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// A house's display name: 1–100 characters after trimming, no control characters and no
/// invisible formatting ([`is_invisible_format`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HouseName(String);

/// The longest house name.
pub const MAX_NAME_CHARS: usize = 100;
/// The longest description.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;

impl HouseName {
    /// Checks a name.
    pub fn new(raw: &str) -> Result<Self, HouseInvalid> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(HouseInvalid::NameEmpty);
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(HouseInvalid::NameTooLong);
        }
        if name.chars().any(char::is_control) {
            return Err(HouseInvalid::ControlCharacters);
        }
        if name.chars().any(is_invisible_format) {
            return Err(HouseInvalid::InvisibleFormatting);
        }
        Ok(Self(name.to_owned()))
    }
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a house cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HouseInvalid {
    /// Empty name.
    #[error("houseName must not be empty")]
    NameEmpty,
    /// Over-long name.
    #[error("houseName is at most {MAX_NAME_CHARS} characters")]
    NameTooLong,
    /// Control characters in a text.
    #[error("text must not contain control characters")]
    ControlCharacters,
    /// Bidirectional overrides or zero-width characters in a text.
    #[error("text must not contain bidirectional overrides or zero-width characters")]
    InvisibleFormatting,
    /// Over-long description.
    #[error("houseDescription is at most {MAX_DESCRIPTION_CHARS} characters")]
    DescriptionTooLong,
    /// Bad price.
    #[error("housePrice {0}")]
    Price(#[from] events::MoneyError),
}

/// A house to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHouse {
    /// Its name.
    pub name: HouseName,
    /// Price of one night.
    pub price: Money,
    /// Free text.
    pub description: String,
}

impl NewHouse {
    /// Checks every field.
    pub fn new(name: &str, price: i64, description: Option<&str>) -> Result<Self, HouseInvalid> {
        let description = description.unwrap_or("").trim();
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(HouseInvalid::DescriptionTooLong);
        }
        if description.chars().any(|c| c.is_control() && c != '\n') {
            return Err(HouseInvalid::ControlCharacters);
        }
        if description.chars().any(is_invisible_format) {
            return Err(HouseInvalid::InvisibleFormatting);
        }
        Ok(Self {
            name: HouseName::new(name)?,
            price: Money::new(price)?,
            description: description.to_owned(),
        })
    }
}

/// A registered house.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct House {
    /// Server-generated id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Price of one night.
    pub price: i64,
    /// Free text.
    pub description: String,
}

impl House {
    /// The event of its registration (F1).
    pub fn registered(&self) -> events::DomainEvent {
        events::DomainEvent::HouseRegistered(events::HouseRegistered {
            house_id: self.id,
            house_name: self.name.clone(),
            house_price: self.price,
        })
    }
}

/// One reserved night of a house.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedNight {
    /// The night (the date one sleeps there).
    pub night: NaiveDate,
    /// The booking it is held for.
    pub book_id: String,
}

/// A request to hold a booking's nights, from its `Paid` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The booking.
    pub book_id: String,
    /// The house.
    pub house_id: i64,
    /// The stay; `None` when the event carried an impossible stay.
    pub stay: Option<Stay>,
}

/// Why a reservation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// At least one night is held by another booking.
    NightsTaken,
    /// No such house.
    UnknownHouse,
    /// The stay is not a valid stay.
    InvalidStay,
}

impl RejectReason {
    /// The wire name (in `HouseRentRejected.reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NightsTaken => "NIGHTS_TAKEN",
            Self::UnknownHouse => "UNKNOWN_HOUSE",
            Self::InvalidStay => "INVALID_STAY",
        }
    }
}

/// What became of a reservation request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReserveOutcome {
    /// The nights are held (`HouseRented`).
    Rented,
    /// Refused (`HouseRentRejected`).
    Rejected(RejectReason),
    /// The booking was decided before (another event for it); nothing changed.
    AlreadyDecided,
    /// The booking was cancelled before it was paid here; nothing is held.
    BookingCanceled,
}

/// What became of a release request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// The nights were released (`HouseRentCanceled`).
    Released,
    /// Nothing was held for the booking (never rented, or already released).
    NothingHeld,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 18: `"\u{202e}gnp.exe"` was registered (201) and displayed as `exe.png`.
    #[test]
    fn names_and_descriptions_refuse_bidi_overrides_and_zero_width_characters() {
        for bad in [
            "\u{202e}gnp.exe",
            "Se\u{200b}oul",
            "\u{2066}x\u{2069}",
            "a\u{feff}",
            "\u{200f}b",
        ] {
            assert_eq!(
                HouseName::new(bad),
                Err(HouseInvalid::InvisibleFormatting),
                "{bad:?}"
            );
            assert_eq!(
                NewHouse::new("Ok", 1, Some(bad)),
                Err(HouseInvalid::InvisibleFormatting),
                "{bad:?}"
            );
        }
        // Scripts, accents and emoji are names like any other.
        for good in ["서울 한옥", "Café Zürich", "بيت", "🏠 loft"] {
            assert!(HouseName::new(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(
            HouseName::new("  Jeju stone house ").unwrap().as_str(),
            "Jeju stone house"
        );
        assert_eq!(HouseName::new("   "), Err(HouseInvalid::NameEmpty));
        assert_eq!(
            HouseName::new(&"가".repeat(101)),
            Err(HouseInvalid::NameTooLong)
        );
        assert!(HouseName::new(&"가".repeat(100)).is_ok());
        assert_eq!(
            HouseName::new("a\u{0007}b"),
            Err(HouseInvalid::ControlCharacters)
        );
        assert!(
            HouseName::new("🏠 '; DROP TABLE houses; --").is_ok(),
            "stored as data, never as SQL"
        );
    }

    #[test]
    fn prices_and_descriptions_are_checked() {
        assert!(matches!(
            NewHouse::new("a", 0, None),
            Err(HouseInvalid::Price(_))
        ));
        assert_eq!(
            NewHouse::new("a", 5, Some(&"x".repeat(2001))),
            Err(HouseInvalid::DescriptionTooLong)
        );
        assert_eq!(
            NewHouse::new("a", 5, Some("line1\nline2"))
                .unwrap()
                .description,
            "line1\nline2"
        );
    }
}

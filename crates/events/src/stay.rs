//! The stay: the contract's unit of booking, shared by every context.
//!
//! A stay is the nights from `checkIn` (inclusive) to `checkOut` (exclusive); the seed's
//! single `bookDate` is a one-night stay. Dates are ISO (`2026-12-01`) or the seed's
//! `YYYYMMDD`.

use chrono::{Datelike as _, Duration, NaiveDate};

/// The longest stay accepted, in nights.
pub const MAX_NIGHTS: i64 = 365;

/// A valid stay: at least one night, at most [`MAX_NIGHTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stay {
    check_in: NaiveDate,
    check_out: NaiveDate,
}

/// Why a stay is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StayError {
    /// `checkOut` is not after `checkIn`.
    #[error("checkOut must be after checkIn")]
    Empty,
    /// More nights than [`MAX_NIGHTS`].
    #[error("a stay is at most {MAX_NIGHTS} nights")]
    TooLong,
    /// A date could not be read.
    #[error("{0:?} is not a date (expected YYYY-MM-DD or YYYYMMDD)")]
    BadDate(String),
    /// A stay ending after 9999-12-31, which no answer could write as `YYYY-MM-DD`.
    #[error("a stay must end by 9999-12-31")]
    TooLate,
}

impl Stay {
    /// A stay from `check_in` to `check_out`.
    pub fn new(check_in: NaiveDate, check_out: NaiveDate) -> Result<Self, StayError> {
        let nights = (check_out - check_in).num_days();
        if nights < 1 {
            Err(StayError::Empty)
        } else if nights > MAX_NIGHTS {
            Err(StayError::TooLong)
        } else if check_out.year() > 9999 {
            Err(StayError::TooLate)
        } else {
            Ok(Self {
                check_in,
                check_out,
            })
        }
    }

    /// The seed's `bookDate`: one night.
    pub fn one_night(night: NaiveDate) -> Result<Self, StayError> {
        let out = night
            .checked_add_signed(Duration::days(1))
            .ok_or(StayError::TooLong)?;
        Self::new(night, out)
    }

    /// First night.
    pub fn check_in(&self) -> NaiveDate {
        self.check_in
    }

    /// Day of departure.
    pub fn check_out(&self) -> NaiveDate {
        self.check_out
    }

    /// Number of nights.
    pub fn nights(&self) -> i64 {
        (self.check_out - self.check_in).num_days()
    }

    /// Each night of the stay, in order.
    pub fn each_night(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.check_in
            .iter_days()
            .take_while(move |d| *d < self.check_out)
    }

    /// Whether the stay includes `night`.
    pub fn contains(&self, night: NaiveDate) -> bool {
        self.check_in <= night && night < self.check_out
    }
}

/// Reads `2026-12-01` or the seed's `20261201`: a four-digit year, always (chrono alone
/// would also read `+10000-01-01`, which no answer could then write back as `YYYY-MM-DD`).
pub fn parse_date(t: &str) -> Result<NaiveDate, StayError> {
    let digit_or_dash = |(i, b): (usize, &u8)| match (t.len(), i) {
        (10, 4 | 7) => *b == b'-',
        _ => b.is_ascii_digit(),
    };
    let shaped = matches!(t.len(), 8 | 10) && t.as_bytes().iter().enumerate().all(digit_or_dash);
    let parsed = match t.len() {
        10 => NaiveDate::parse_from_str(t, "%Y-%m-%d"),
        _ => NaiveDate::parse_from_str(t, "%Y%m%d"),
    };
    match parsed {
        Ok(d) if shaped => Ok(d),
        _ => Err(StayError::BadDate(t.chars().take(40).collect())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    #[test]
    fn a_stay_ends_by_the_last_day_a_date_can_be_written() {
        assert_eq!(Stay::one_night(d("9999-12-31")), Err(StayError::TooLate));
        assert!(Stay::new(d("9999-12-30"), d("9999-12-31")).is_ok());
    }

    #[test]
    fn nights_run_from_check_in_to_the_day_before_check_out() {
        let s = Stay::new(d("2026-12-30"), d("2027-01-02")).unwrap();
        assert_eq!(s.nights(), 3);
        let nights: Vec<_> = s.each_night().collect();
        assert_eq!(
            nights,
            vec![d("2026-12-30"), d("2026-12-31"), d("2027-01-01")]
        );
        assert!(s.contains(d("2027-01-01")));
        assert!(!s.contains(d("2027-01-02")));
    }

    #[test]
    fn empty_inverted_and_overlong_stays_are_refused() {
        assert_eq!(
            Stay::new(d("2026-12-01"), d("2026-12-01")),
            Err(StayError::Empty)
        );
        assert_eq!(
            Stay::new(d("2026-12-02"), d("2026-12-01")),
            Err(StayError::Empty)
        );
        assert_eq!(
            Stay::new(d("2026-01-01"), d("2027-01-02")),
            Err(StayError::TooLong)
        );
        assert!(Stay::new(d("2026-01-01"), d("2027-01-01")).is_ok());
    }

    #[test]
    fn the_seeds_book_date_is_one_night_and_both_formats_parse() {
        let s = Stay::one_night(d("20201016")).unwrap();
        assert_eq!(
            (s.check_in(), s.check_out()),
            (d("2020-10-16"), d("2020-10-17"))
        );
        assert!(parse_date("2026-02-30").is_err());
        assert!(parse_date("2026-13-01").is_err());
        assert!(parse_date("' OR 1=1 --").is_err());
        assert!(Stay::one_night(NaiveDate::MAX).is_err());
    }

    #[test]
    fn only_a_four_digit_year_is_a_date() {
        for bad in [
            "+10000-01-01",
            "+2026-01-01",
            "-2026-01-01",
            "2026-1-1",
            "2026-01-1 ",
            "20260101 1",
            "2026/01/01",
            "٢٠٢٦-٠١-٠١",
            "202601011",
        ] {
            assert!(parse_date(bad).is_err(), "{bad:?} read as a date");
        }
        // As given, as the public document's `format: date` says: nothing is trimmed.
        for spaced in [" 2026-01-01", "2026-01-01 ", "2026-01-01\n"] {
            assert!(parse_date(spaced).is_err(), "{spaced:?} read as a date");
        }
        assert_eq!(d("2026-01-01"), d("20260101"));
        assert_eq!(d("0001-01-01").to_string(), "0001-01-01");
    }
}

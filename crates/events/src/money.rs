//! Money: whole currency units (the seed's `housePrice=200000`), always positive.

/// The largest amount accepted: far above any stay, far below overflow when summed.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;

/// A positive amount no larger than [`MAX_AMOUNT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Money(i64);

/// Why an amount is not money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Zero or negative.
    #[error("must be greater than 0")]
    NotPositive,
    /// Above [`MAX_AMOUNT`].
    #[error("must be at most {MAX_AMOUNT}")]
    TooLarge,
}

impl Money {
    /// Checks an amount.
    pub fn new(amount: i64) -> Result<Self, MoneyError> {
        if amount <= 0 {
            Err(MoneyError::NotPositive)
        } else if amount > MAX_AMOUNT {
            Err(MoneyError::TooLarge)
        } else {
            Ok(Self(amount))
        }
    }

    /// The amount.
    pub fn get(self) -> i64 {
        self.0
    }

    /// `self × n`, if it stays within bounds.
    pub fn times(self, n: i64) -> Result<Self, MoneyError> {
        self.0
            .checked_mul(n)
            .ok_or(MoneyError::TooLarge)
            .and_then(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_positive_and_bounded() {
        assert_eq!(Money::new(0), Err(MoneyError::NotPositive));
        assert_eq!(Money::new(-5), Err(MoneyError::NotPositive));
        assert_eq!(Money::new(MAX_AMOUNT + 1), Err(MoneyError::TooLarge));
        assert_eq!(Money::new(200_000).unwrap().get(), 200_000);
        assert_eq!(
            Money::new(200_000).unwrap().times(3).unwrap().get(),
            600_000
        );
        assert_eq!(
            Money::new(MAX_AMOUNT).unwrap().times(i64::MAX),
            Err(MoneyError::TooLarge)
        );
    }
}

//! What the payment domain needs from the outside world.

use async_trait::async_trait;

use super::models::{NewPayment, Payment};

/// Why a payment could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreatePaymentError {
    /// This booking was already paid with different values.
    #[error("booking {0} was already paid with different values")]
    Conflict(String),
    /// Anything else.
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

/// Why a payment could not be cancelled.
#[derive(Debug, thiserror::Error)]
pub enum CancelPaymentError {
    /// No such payment.
    #[error("no payment {0}")]
    NotFound(String),
    /// Anything else.
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

/// Which payments to list.
#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    /// Only this customer's.
    pub customer_id: Option<String>,
    /// Only this booking's.
    pub book_id: Option<String>,
    /// Page size.
    pub limit: i64,
    /// Page start.
    pub offset: i64,
}

/// Whether a call created or changed something, or found it already done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Created or changed now (an event was written).
    Done,
    /// It had been done before (no new event).
    AlreadyDone,
}

/// Payment storage. Each write commits the state change and its event together.
#[async_trait]
pub trait PaymentRepository: Send + Sync + 'static {
    /// Stores a payment and its `Paid` event, or returns the booking's existing payment.
    async fn create(&self, new: &NewPayment) -> Result<(Payment, Outcome), CreatePaymentError>;
    /// Refunds a payment with its `PaymentCanceled` event; a refunded one is returned as is.
    async fn cancel(&self, id: i64) -> Result<(Payment, Outcome), CancelPaymentError>;
    /// Refunds the payment of a booking (the caller knows only the booking).
    async fn cancel_by_book(&self, book_id: &str)
        -> Result<(Payment, Outcome), CancelPaymentError>;
    /// One payment.
    async fn get(&self, id: i64) -> anyhow::Result<Option<Payment>>;
    /// Payments, oldest first.
    async fn list(&self, filter: &PaymentFilter) -> anyhow::Result<Vec<Payment>>;
}

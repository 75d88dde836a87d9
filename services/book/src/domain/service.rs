//! The booking service: the saga's steps that `book` drives.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use events::EventKey;

use super::models::{
    BookStatus, Booking, BookingInvalid, BookingRequest, Horizon, InvalidTransition, Listing,
};
use super::ports::{
    Applied, BookRepository, BookingFilter, CancelError, Consumed, HouseLookupError, Houses,
    InsertBookedError, PaymentError, PaymentRequest, Payments,
};

/// Why a booking could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BookError {
    /// The request is not valid (422).
    #[error(transparent)]
    Invalid(#[from] BookingInvalid),
    /// Payment is unavailable: nothing was booked (503).
    #[error("{reason}")]
    PaymentUnavailable {
        /// What happened.
        reason: String,
        /// When to try again.
        retry_after: Duration,
    },
    /// Book does not know the house yet and house cannot be asked: nothing was booked
    /// (503).
    #[error("{reason}")]
    HouseUnavailable {
        /// What happened.
        reason: String,
        /// When to try again.
        retry_after: Duration,
    },
    /// Anything else (500).
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

/// Why a booking could not be cancelled.
#[derive(Debug, thiserror::Error)]
pub enum CancelBookingError {
    /// No such booking (404).
    #[error("no booking {0}")]
    NotFound(String),
    /// Someone else's booking (403).
    #[error("this booking belongs to someone else")]
    NotYours,
    /// Its status does not allow it, e.g. cancelled already (409).
    #[error(transparent)]
    Invalid(#[from] InvalidTransition),
    /// Anything else (500).
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

pub use platform::auth::Actor;

/// Books, cancels and follows the house's answers.
#[derive(Clone)]
pub struct BookService {
    repo: Arc<dyn BookRepository>,
    payments: Arc<dyn Payments>,
    houses: Arc<dyn Houses>,
    horizon: Horizon,
}

impl BookService {
    /// A service over its store and the payment and house contexts.
    pub fn new(
        repo: Arc<dyn BookRepository>,
        payments: Arc<dyn Payments>,
        houses: Arc<dyn Houses>,
    ) -> Self {
        Self {
            repo,
            payments,
            houses,
            horizon: Horizon::default(),
        }
    }

    /// The same service with bookings open `horizon` ahead.
    pub fn with_horizon(self, horizon: Horizon) -> Self {
        Self { horizon, ..self }
    }

    /// How far ahead bookings open.
    pub fn horizon(&self) -> Horizon {
        self.horizon
    }

    /// The listing of a house: book's own copy, else house's answer (kept).
    async fn listing(&self, house_id: i64) -> Result<Listing, BookError> {
        if let Some(l) = self.repo.listing(house_id).await? {
            return Ok(l);
        }
        let found = self.houses.listing(house_id).await.map_err(|e| match e {
            HouseLookupError::Unavailable {
                reason,
                retry_after,
            } => BookError::HouseUnavailable {
                reason,
                retry_after,
            },
        })?;
        let listing = found.ok_or(BookingInvalid::UnknownHouse(house_id))?;
        self.repo.remember_listing(&listing).await?;
        Ok(listing)
    }

    /// F2: price the stay from the listing, pay synchronously, then commit `BOOKED`.
    /// When payment fails nothing is stored; a payment that went through anyway (a
    /// timeout that in fact succeeded) is refunded by [`Self::reconcile`].
    #[tracing::instrument(skip(self, request), fields(house_id = request.house_id))]
    pub async fn book(
        &self,
        customer: &str,
        request: BookingRequest,
    ) -> Result<Booking, BookError> {
        let listing = self.listing(request.house_id).await?;
        let price = request.price(&listing)?;
        let id = uuid::Uuid::now_v7().to_string();
        let payment = PaymentRequest {
            book_id: id.clone(),
            house_id: listing.house_id,
            customer_id: customer.to_owned(),
            amount: price.get(),
            stay: request.stay,
        };
        let payment_id = match self.payments.pay(&payment).await {
            Ok(pid) => pid,
            Err(PaymentError::Unavailable {
                reason,
                retry_after,
            }) => {
                return Err(BookError::PaymentUnavailable {
                    reason,
                    retry_after,
                })
            }
            Err(e @ PaymentError::Refused(_)) => return Err(BookError::Unknown(e.into())),
        };
        let booking = Booking {
            id,
            customer_id: customer.to_owned(),
            house_id: listing.house_id,
            house_name: listing.name,
            price: price.get(),
            stay: request.stay,
            status: BookStatus::Booked,
            payment_id,
            created_at: platform::db::now(),
            book_cancel_date: None,
        };
        match self.repo.insert_booked(&booking).await {
            Ok(b) => Ok(b),
            // Committing took longer than the reconciler's grace: it refunds the payment.
            Err(InsertBookedError::Abandoned) => Err(BookError::PaymentUnavailable {
                reason: "the booking could not be confirmed in time; its payment is refunded"
                    .into(),
                retry_after: Duration::from_secs(1),
            }),
            Err(InsertBookedError::Unknown(e)) => Err(e.into()),
        }
    }

    /// F5: commit `BOOK_CANCELED` with its refund due, then refund; a refund that cannot be
    /// made now is made by the reconciler.
    #[tracing::instrument(skip(self, actor))]
    pub async fn cancel(&self, actor: &Actor, id: &str) -> Result<Booking, CancelBookingError> {
        let booking = self.get(actor, id).await.map_err(|e| match e {
            GetError::NotFound => CancelBookingError::NotFound(id.to_owned()),
            GetError::NotYours => CancelBookingError::NotYours,
            GetError::Unknown(e) => CancelBookingError::Unknown(e),
        })?;
        booking.status.cancel()?;
        // The cancellation and "refund due" commit first, together; the refund follows. A
        // crash or a payment outage in between leaves the refund due, and the reconciler
        // makes it: never a refunded payment under a booking that still stands.
        let cancelled = self
            .repo
            .cancel(id, platform::db::now())
            .await
            .map_err(|e| match e {
                CancelError::NotFound(id) => CancelBookingError::NotFound(id),
                CancelError::Invalid(t) => CancelBookingError::Invalid(t),
                CancelError::Unknown(e) => CancelBookingError::Unknown(e),
            })?;
        match self.payments.refund(id).await {
            Ok(()) => {
                if let Err(e) = self.repo.refund_done(id).await {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        book_id = id,
                        "refund made; marking it done failed (the reconciler's retry is harmless)"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, book_id = id, "refund not made now; the reconciler retries it");
            }
        }
        Ok(cancelled)
    }

    /// One booking, if the actor may see it.
    pub async fn get(&self, actor: &Actor, id: &str) -> Result<Booking, GetError> {
        let b = self.repo.get(id).await?.ok_or(GetError::NotFound)?;
        if !actor.may_see(&b.customer_id) {
            return Err(GetError::NotYours);
        }
        Ok(b)
    }

    /// The actor's bookings (all of them for an admin), of one status if given.
    pub async fn list(
        &self,
        actor: &Actor,
        status: Option<BookStatus>,
        limit: i64,
        offset: i64,
    ) -> anyhow::Result<Vec<Booking>> {
        let filter = BookingFilter {
            customer_id: actor.only_own().map(str::to_owned),
            status,
            limit,
            offset,
        };
        self.repo.list(&filter).await
    }

    /// Consumed events — listings, the house's decisions (F4), payments to match (I2) —
    /// applied in order, all in one transaction, each effectively once.
    #[tracing::instrument(skip_all, fields(events = events.len()))]
    pub async fn on_events(
        &self,
        events: &[(EventKey, Consumed)],
    ) -> anyhow::Result<Vec<Applied<()>>> {
        self.repo.apply_events(events).await
    }

    /// I2 and the compensation of F4: refunds payments whose booking never committed
    /// (seen more than `grace` ago) and rejected bookings' payments. Returns how many
    /// refunds went through; what fails is tried again next time.
    pub async fn reconcile(&self, grace: Duration) -> anyhow::Result<usize> {
        let mut done = 0;
        let before = Utc::now() - chrono::Duration::from_std(grace)?;
        for book_id in self.repo.unmatched_payments(before).await? {
            // Its booking committed, or wins the claim now: nothing to refund.
            if self.repo.get(&book_id).await?.is_some() || !self.repo.abandon(&book_id).await? {
                self.repo.forget_payment(&book_id).await?;
                continue;
            }
            match self.payments.refund(&book_id).await {
                Ok(()) => {
                    tracing::warn!(%book_id, "refunded a payment whose booking never committed");
                    self.repo.forget_payment(&book_id).await?;
                    done += 1;
                }
                Err(e) => {
                    tracing::warn!(%book_id, error = %e, "reconcile: refund failed, will retry")
                }
            }
        }
        for book_id in self.repo.refunds_due().await? {
            match self.payments.refund(&book_id).await {
                Ok(()) => {
                    self.repo.refund_done(&book_id).await?;
                    done += 1;
                }
                Err(e) => {
                    tracing::warn!(%book_id, error = %e, "reconcile: refund of a rejected booking failed, will retry")
                }
            }
        }
        Ok(done)
    }
}

/// Why a booking cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum GetError {
    /// No such booking (404).
    #[error("no such booking")]
    NotFound,
    /// Someone else's (403).
    #[error("this booking belongs to someone else")]
    NotYours,
    /// Anything else (500).
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

//! The booking service: the use cases `book`'s adapters call (book, cancel, read, apply
//! consumed events, reconcile). Each loads through a unit of work, asks the saga's rules
//! ([`super::saga`]) and has the unit store what they decide; the other contexts are
//! reached through ports ([`super::ports`]), the time through a clock.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use events::EventKey;
use platform::clock::{Clock, SystemClock};

use platform::limit::{Limiter, Rate};

use super::models::{
    BookStatus, Booking, BookingInvalid, BookingRequest, Holdings, Horizon, InvalidTransition,
    Listing,
};
use super::ports::{
    Applied, BookRepository, BookingFilter, HouseLookupError, Houses, PaymentError, PaymentRequest,
    Payments,
};
use super::saga::{self, Batch, Claim, Consumed};

/// Why a booking could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BookError {
    /// The caller may not book: customers and admins do (403).
    #[error("booking needs the CUSTOMER or ADMIN role")]
    NotAllowed,
    /// The request is not valid (422).
    #[error(transparent)]
    Invalid(#[from] BookingInvalid),
    /// The customer books faster than one customer may: nothing was booked (429).
    #[error("you are booking faster than one customer may; nothing was booked, try again shortly")]
    TooFast {
        /// When the next booking may come.
        retry_after: Duration,
    },
    /// Payment is unavailable: nothing was booked (503).
    #[error("payment is unavailable; nothing was booked, try again later")]
    PaymentUnavailable {
        /// What happened.
        reason: String,
        /// When to try again.
        retry_after: Duration,
    },
    /// Book does not know the house yet and house cannot be asked: nothing was booked
    /// (503).
    #[error("house is unavailable and this house is not known here yet; nothing was booked, try again later")]
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
    /// The stay has begun and the actor is not an admin (409).
    #[error("the stay began on {0}: only an admin can cancel it now")]
    StayBegun(chrono::NaiveDate),
    /// Anything else (500).
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

impl From<saga::CancelRefused> for CancelBookingError {
    fn from(refused: saga::CancelRefused) -> Self {
        match refused {
            saga::CancelRefused::Invalid(t) => Self::Invalid(t),
            saga::CancelRefused::StayBegun(on) => Self::StayBegun(on),
        }
    }
}

pub use platform::auth::Actor;

/// Books, cancels and follows the house's answers.
#[derive(Clone)]
pub struct BookService {
    repo: Arc<dyn BookRepository>,
    payments: Arc<dyn Payments>,
    houses: Arc<dyn Houses>,
    horizon: Horizon,
    holdings: Holdings,
    /// New bookings per customer (this replica's count).
    pace: Limiter,
    clock: Arc<dyn Clock>,
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
            holdings: Holdings::default(),
            pace: Limiter::new(Self::PACE),
            clock: Arc::new(SystemClock),
        }
    }

    /// The same service reading the time from `clock`.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        Self { clock, ..self }
    }

    /// Today's date, by the service's clock (what a booking's check-in is checked against).
    pub fn today(&self) -> NaiveDate {
        self.clock.now().date_naive()
    }

    /// The same service with bookings open `horizon` ahead.
    pub fn with_horizon(self, horizon: Horizon) -> Self {
        Self { horizon, ..self }
    }

    /// How far ahead bookings open.
    pub fn horizon(&self) -> Horizon {
        self.horizon
    }

    /// A person's pace: ten bookings at once, then one every five seconds.
    pub const PACE: Rate = Rate {
        per_second: 0.2,
        burst: 10.0,
    };

    /// The same service with what one customer may hold and how fast they may book
    /// (`per_second` 0: no pace).
    pub fn with_holdings(self, holdings: Holdings, pace: Rate) -> Self {
        Self {
            holdings,
            pace: Limiter::new(pace),
            ..self
        }
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
            } => {
                tracing::warn!(%reason, house_id, "house unavailable: nothing booked");
                BookError::HouseUnavailable {
                    reason,
                    retry_after,
                }
            }
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
        // What one customer may hold and how fast, before anything is charged. (Two of
        // one customer's bookings at the same instant may both pass the holdings check:
        // the pace bounds how many can.)
        if self.holdings.bounded() {
            let today = self.today();
            let held = self.repo.stays_held(customer, today).await?;
            self.holdings.admit(&held, request.stay, today)?;
        }
        self.pace
            .check(customer)
            .map_err(|wait| BookError::TooFast {
                retry_after: wait.max(Duration::from_secs(1)),
            })?;
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
                tracing::warn!(%reason, "payment unavailable: nothing booked");
                return Err(BookError::PaymentUnavailable {
                    reason,
                    retry_after,
                });
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
            created_at: self.clock.now(),
            book_cancel_date: None,
        };
        match self.commit(booking).await? {
            Some(b) => Ok(b),
            // Committing took longer than the reconciler's grace: it refunds the payment.
            None => Err(BookError::PaymentUnavailable {
                reason: "the booking could not be confirmed in time; its payment is refunded"
                    .into(),
                retry_after: Duration::from_secs(1),
            }),
        }
    }

    /// Commits a paid booking ([`saga::commit`]) unless the reconciler gave up on its id
    /// first (`None`: nothing stored, its payment is refunded).
    pub async fn commit(&self, booking: Booking) -> anyhow::Result<Option<Booking>> {
        let mut unit = self.repo.begin().await?;
        if unit.claim_id(&booking.id, Claim::Booked).await? != Claim::Booked {
            return Ok(None);
        }
        let early = unit.early_decision(&booking.id).await?;
        let changes = saga::commit(booking.clone(), early.as_ref());
        let moved = unit.save(&changes).await?;
        unit.commit().await?;
        let stored = changes
            .transitions
            .iter()
            .zip(moved)
            .filter(|(_, moved)| *moved)
            .fold(booking, |b, (t, _)| t.applied_to(b));
        Ok(Some(stored))
    }

    /// F5: commit `BOOK_CANCELED` with its refund due, then refund; a refund that cannot be
    /// made now is made by the reconciler.
    #[tracing::instrument(skip(self, actor))]
    pub async fn cancel(&self, actor: &Actor, id: &str) -> Result<Booking, CancelBookingError> {
        // The cancellation and "refund due" commit first, together; the refund follows. A
        // crash or a payment outage in between leaves the refund due, and the reconciler
        // makes it: never a refunded payment under a booking that still stands.
        let cancelled = self.cancel_stored(actor, id).await?;
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

    /// [`saga::cancel`] in a unit of work, on the booking as stored now.
    async fn cancel_stored(&self, actor: &Actor, id: &str) -> Result<Booking, CancelBookingError> {
        if !could_be_booking_id(id) {
            return Err(CancelBookingError::NotFound(id.to_owned()));
        }
        let mut unit = self.repo.begin().await?;
        let booking = unit
            .booking(id)
            .await?
            .ok_or_else(|| CancelBookingError::NotFound(id.to_owned()))?;
        if !actor.may_see(&booking.customer_id) {
            return Err(CancelBookingError::NotYours);
        }
        let changes = saga::cancel(&booking, self.clock.now(), actor.sees_all)?;
        let moved = unit.save(&changes).await?;
        let Some((t, _)) = changes.transitions.iter().zip(moved).find(|(_, m)| *m) else {
            // Another cancel (or a refund) committed between the read and the write.
            let done = BookStatus::BookCanceled.as_str();
            return Err(InvalidTransition {
                from: done,
                to: done,
            }
            .into());
        };
        let cancelled = t.applied_to(booking);
        unit.commit().await?;
        Ok(cancelled)
    }

    /// One booking, if the actor may see it.
    pub async fn get(&self, actor: &Actor, id: &str) -> Result<Booking, GetError> {
        if !could_be_booking_id(id) {
            return Err(GetError::NotFound(id.to_owned()));
        }
        let b = self
            .repo
            .get(id)
            .await?
            .ok_or_else(|| GetError::NotFound(id.to_owned()))?;
        if !actor.may_see(&b.customer_id) {
            return Err(GetError::NotYours);
        }
        Ok(b)
    }

    /// The actor's bookings (all of them for an admin), of one status if given, in
    /// `order`.
    pub async fn list(
        &self,
        actor: &Actor,
        status: Option<BookStatus>,
        limit: i64,
        offset: i64,
        order: platform::http::Order,
    ) -> anyhow::Result<Vec<Booking>> {
        let filter = BookingFilter {
            customer_id: actor.only_own().map(str::to_owned),
            status,
            limit,
            offset,
            order,
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
        let mut unit = self.repo.begin().await?;
        let named: Vec<&str> = events.iter().filter_map(|(_, e)| e.book_id()).collect();
        let mut known = unit.standings(&named).await?;
        // Only the events that can change something are claimed (and need an inbox row).
        let matters: Vec<bool> = events
            .iter()
            .map(|(_, e)| Batch::matters(&known, e))
            .collect();
        let keys: Vec<&EventKey> = events
            .iter()
            .zip(&matters)
            .filter(|(_, m)| **m)
            .map(|((k, _), _)| k)
            .collect();
        let mut claimed = unit.claim_events(&keys).await?.into_iter();
        let mut batch = Batch::new(&mut known, self.clock.now());
        let mut out = Vec::with_capacity(events.len());
        for ((_, event), matters) in events.iter().zip(matters) {
            if matters && !claimed.next().unwrap_or(false) {
                out.push(Applied::Duplicate);
                continue;
            }
            if matters {
                batch.react(event);
            }
            out.push(Applied::Now(()));
        }
        unit.save(&batch.into_changes()).await?;
        unit.commit().await?;
        Ok(out)
    }

    /// Gives up on a booking id whose payment is to be refunded: `false` if its booking
    /// committed (or is committing) first; `true` again for an id given up before (its
    /// refund may have failed and be tried again). A booking cannot commit after this.
    pub async fn abandon(&self, book_id: &str) -> anyhow::Result<bool> {
        let mut unit = self.repo.begin().await?;
        let holder = unit.claim_id(book_id, Claim::Abandoned).await?;
        unit.commit().await?;
        Ok(holder == Claim::Abandoned)
    }

    /// I2 and the compensation of F4: refunds payments whose booking never committed
    /// (seen more than `grace` ago) and rejected bookings' payments. Returns how many
    /// refunds went through; what fails is tried again next time.
    pub async fn reconcile(&self, grace: Duration) -> anyhow::Result<usize> {
        let mut done = 0;
        let before = self.clock.now() - chrono::Duration::from_std(grace)?;
        for book_id in self.repo.unmatched_payments(before).await? {
            // Its booking committed, or wins the claim now: nothing to refund.
            if self.repo.get(&book_id).await?.is_some() || !self.abandon(&book_id).await? {
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

/// Whether `id` could name a booking at all (book's ids are UUIDs): one that is empty, long
/// or has a control character names none, and is not looked up — PostgreSQL refuses text
/// with NUL, so the lookup would fail instead of finding nothing (REST refuses such paths
/// already; gRPC's `id` is any string).
fn could_be_booking_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && !id.chars().any(char::is_control)
}

/// Why a booking cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum GetError {
    /// No such booking (404).
    #[error("no booking {0}")]
    NotFound(String),
    /// Someone else's (403).
    #[error("this booking belongs to someone else")]
    NotYours,
    /// Anything else (500).
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

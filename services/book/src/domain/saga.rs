//! The booking saga's rules, as the booking context lives them: what a command (book,
//! cancel) and each consumed event (a listing, the house's decision, a payment, a refund)
//! does to a booking, and which events that publishes. Pure: no I/O, the time passed in.
//!
//! The service loads what these rules read through a unit of work
//! ([`super::ports::BookUnit`]), asks them, and has the unit store the [`Changes`] they
//! return in the same transaction — state, events, inbox rows together.
//!
//! One booking, followed through here:
//! 1. [`commit`]: paid, it becomes `BOOKED` with `Booked`; a house decision that arrived
//!    before it ([`Changes::early`]) applies at once; its payment is no longer unmatched.
//! 2. [`Batch::react`] to `HouseRented` / `HouseRentRejected`: `BOOKED` → `CONFIRMED` with
//!    `BookConfirmed`, or → `REJECTED` with `BookRejected` and its refund due. Any other
//!    status (cancelled meanwhile) ignores the decision: the house releases the nights on
//!    the cancel.
//! 3. [`cancel`]: `BOOKED`/`CONFIRMED` → `BOOK_CANCELED` with `BookCanceled`, refund due.
//! 4. `PaymentCanceled` under a booking that stands cancels it (`BookCanceled`, nothing
//!    left to refund): a booking never stands on a refunded payment, whoever refunded it.
//! 5. A `Paid` or a decision for a booking not committed (yet) is kept; the reconciler
//!    refunds payments whose booking never commits ([`super::service::BookService::reconcile`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use events::{BookCanceled, BookConfirmed, BookRejected, Booked, DomainEvent};

use super::models::{BookStatus, Booking, InvalidTransition, Listing};

/// The house's answer for a booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HouseDecision {
    /// Nights reserved.
    Rented,
    /// Refused, with the house's reason.
    Rejected(String),
}

/// An event the booking context consumes, as the domain sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumed {
    /// `HouseRegistered`: a listing to keep.
    Listing(Listing),
    /// `HouseRented` / `HouseRentRejected` for a booking.
    Decision {
        /// The booking.
        book_id: String,
        /// What house decided.
        decision: HouseDecision,
    },
    /// `Paid` for a booking.
    Paid {
        /// The booking.
        book_id: String,
        /// The payment.
        payment_id: i64,
    },
    /// `PaymentCanceled`: the booking's payment was refunded.
    Refunded {
        /// The booking.
        book_id: String,
    },
}

impl Consumed {
    /// The booking the event is about, if any.
    pub fn book_id(&self) -> Option<&str> {
        match self {
            Self::Decision { book_id, .. }
            | Self::Paid { book_id, .. }
            | Self::Refunded { book_id } => Some(book_id),
            Self::Listing(_) => None,
        }
    }
}

/// What the rules read of a committed booking: where it stands, and its house.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// Its status.
    pub status: BookStatus,
    /// Its house.
    pub house_id: i64,
}

/// The committed bookings a batch names, by id (those not found are not committed, and
/// the unit holds them so until it ends).
pub type Known = HashMap<String, Standing>;

/// One booking's change of status, with the event it publishes. The store applies it only
/// where it still finds the booking in a status the change may leave ([`Self::from`]): on
/// PostgreSQL another transaction (a cancel) can commit between the read and the write;
/// then nothing changes and nothing is published.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The booking.
    pub book_id: String,
    /// The statuses it may leave for [`Self::to`].
    pub from: &'static [BookStatus],
    /// Its new status.
    pub to: BookStatus,
    /// Whether its payment is to be refunded (by book: rejected or cancelled by the
    /// customer).
    pub refund_due: bool,
    /// When it was cancelled, for a cancel.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// What it publishes.
    pub event: DomainEvent,
}

/// A payment whose booking is not committed (yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmatched {
    /// The booking.
    pub book_id: String,
    /// The payment.
    pub payment_id: i64,
    /// When book saw it: the reconciler refunds it a grace period later.
    pub seen_at: DateTime<Utc>,
}

/// Everything a unit of work stores, all in one transaction.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Changes {
    /// New bookings, `BOOKED`; each publishes its `Booked`.
    pub booked: Vec<Booking>,
    /// Listings to keep or update (from `HouseRegistered`).
    pub listings: Vec<Listing>,
    /// Status changes.
    pub transitions: Vec<Transition>,
    /// House decisions for bookings not committed yet, kept for their commit.
    pub early: Vec<(String, HouseDecision)>,
    /// Payments whose booking is not committed (yet), for the reconciler.
    pub unmatched: Vec<Unmatched>,
    /// Bookings whose payment is no longer unmatched (and whose early decision is used).
    pub matched: Vec<String>,
}

impl Changes {
    /// The events the changes publish whatever the store finds (the new bookings').
    pub fn booked_events(&self) -> impl Iterator<Item = DomainEvent> + '_ {
        self.booked.iter().map(|b| {
            DomainEvent::Booked(Booked {
                book_id: b.id.clone(),
                customer_id: b.customer_id.clone(),
                house_id: b.house_id,
                house_name: b.house_name.clone(),
                house_price: b.price,
                check_in: b.stay.check_in(),
                check_out: b.stay.check_out(),
                payment_id: b.payment_id,
            })
        })
    }
}

impl BookStatus {
    /// The statuses a booking may become `next` from (the aggregate's transitions,
    /// backwards).
    pub fn sources(next: Self) -> &'static [Self] {
        match next {
            Self::Booked => &[],
            Self::Confirmed | Self::Rejected => &[Self::Booked],
            Self::BookCanceled => &[Self::Booked, Self::Confirmed],
        }
    }
}

impl Standing {
    /// The house's decision: `BOOKED` → `CONFIRMED` (`BookConfirmed`) or `REJECTED`
    /// (`BookRejected`, refund due). `None` where the status does not allow it (cancelled
    /// meanwhile: the house released, or will release, the nights).
    pub fn decide(self, book_id: &str, decision: &HouseDecision) -> Option<Transition> {
        let (book_id, house_id) = (book_id.to_owned(), self.house_id);
        let (to, event) = match decision {
            HouseDecision::Rented => (
                self.status.confirm().ok()?,
                DomainEvent::BookConfirmed(BookConfirmed {
                    book_id: book_id.clone(),
                    house_id,
                }),
            ),
            HouseDecision::Rejected(reason) => (
                self.status.reject().ok()?,
                DomainEvent::BookRejected(BookRejected {
                    book_id: book_id.clone(),
                    house_id,
                    reason: reason.clone(),
                }),
            ),
        };
        Some(Transition {
            book_id,
            from: BookStatus::sources(to),
            to,
            refund_due: to == BookStatus::Rejected,
            cancelled_at: None,
            event,
        })
    }

    /// A cancel at `at`: `BOOKED`/`CONFIRMED` → `BOOK_CANCELED` with `BookCanceled`;
    /// `refund_due` when book is to refund (the customer cancelled), not when the payment
    /// is refunded already.
    pub fn cancel(
        self,
        book_id: &str,
        at: DateTime<Utc>,
        refund_due: bool,
    ) -> Result<Transition, InvalidTransition> {
        let to = self.status.cancel()?;
        Ok(Transition {
            book_id: book_id.to_owned(),
            from: BookStatus::sources(to),
            to,
            refund_due,
            cancelled_at: Some(at),
            event: DomainEvent::BookCanceled(BookCanceled {
                book_id: book_id.to_owned(),
                house_id: self.house_id,
                book_cancel_date: at,
            }),
        })
    }
}

impl Transition {
    /// The booking after the change.
    pub fn applied_to(&self, mut booking: Booking) -> Booking {
        booking.status = self.to;
        if self.cancelled_at.is_some() {
            booking.book_cancel_date = self.cancelled_at;
        }
        booking
    }
}

/// F2's end: a paid booking commits as `BOOKED` with `Booked`, its payment matched; a
/// house decision kept for it (`early`: it arrived first) applies at once.
pub fn commit(booking: Booking, early: Option<&HouseDecision>) -> Changes {
    let mut changes = Changes {
        matched: vec![booking.id.clone()],
        ..Changes::default()
    };
    let standing = Standing {
        status: BookStatus::Booked,
        house_id: booking.house_id,
    };
    if let Some(t) = early.and_then(|d| standing.decide(&booking.id, d)) {
        changes.transitions.push(t);
    }
    changes.booked.push(Booking {
        status: BookStatus::Booked,
        book_cancel_date: None,
        ..booking
    });
    changes
}

/// Why a cancel is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CancelRefused {
    /// Its status does not allow it (cancelled or rejected already).
    #[error(transparent)]
    Invalid(#[from] InvalidTransition),
    /// The stay has begun (its check-in is today or earlier, UTC): only an admin may
    /// cancel it now, refunding as decided.
    #[error("the stay began on {0}: only an admin can cancel it now")]
    StayBegun(chrono::NaiveDate),
}

/// F5: the customer — before the stay begins — or an admin (`by_admin`, at any time)
/// cancels at `at`; book refunds after the commit.
pub fn cancel(
    booking: &Booking,
    at: DateTime<Utc>,
    by_admin: bool,
) -> Result<Changes, CancelRefused> {
    let standing = Standing {
        status: booking.status,
        house_id: booking.house_id,
    };
    let transition = standing.cancel(&booking.id, at, true)?;
    let begins = booking.stay.check_in();
    if !by_admin && begins <= at.date_naive() {
        return Err(CancelRefused::StayBegun(begins));
    }
    Ok(Changes {
        transitions: vec![transition],
        ..Changes::default()
    })
}

/// A batch of consumed events, applied in order.
#[derive(Debug)]
pub struct Batch<'a> {
    known: &'a mut Known,
    at: DateTime<Utc>,
    changes: Changes,
}

impl<'a> Batch<'a> {
    /// Whether an event can change anything, given the bookings known: a `Paid` for a
    /// committed booking cannot (the booking's own commit matched it), now or on any
    /// redelivery, so it needs no inbox row either.
    pub fn matters(known: &Known, event: &Consumed) -> bool {
        !matches!(event, Consumed::Paid { book_id, .. } if known.contains_key(book_id))
    }

    /// A batch over the bookings it names, at `at`.
    pub fn new(known: &'a mut Known, at: DateTime<Utc>) -> Self {
        Self {
            known,
            at,
            changes: Changes::default(),
        }
    }

    /// Applies one event (each is given once: the inbox has kept duplicates out).
    pub fn react(&mut self, event: &Consumed) {
        match event {
            Consumed::Listing(l) => self.changes.listings.push(l.clone()),
            Consumed::Decision { book_id, decision } => match self.known.get_mut(book_id) {
                Some(standing) => {
                    if let Some(t) = standing.decide(book_id, decision) {
                        standing.status = t.to;
                        self.changes.transitions.push(t);
                    }
                }
                None => self.changes.early.push((book_id.clone(), decision.clone())),
            },
            Consumed::Paid {
                book_id,
                payment_id,
            } => {
                if !self.known.contains_key(book_id) {
                    self.changes.unmatched.push(Unmatched {
                        book_id: book_id.clone(),
                        payment_id: *payment_id,
                        seen_at: self.at,
                    });
                }
            }
            // Refunded under a booking that stands: the booking falls with its payment.
            // Already cancelled or rejected (book's own refunds): nothing to do. Not
            // committed (yet): the reconciler's claim keeps a booking whose payment it
            // refunded from committing; a refund made elsewhere in that instant is not
            // covered (docs/guarantees.md).
            Consumed::Refunded { book_id } => {
                if let Some(standing) = self.known.get_mut(book_id) {
                    if let Ok(t) = standing.cancel(book_id, self.at, false) {
                        standing.status = t.to;
                        self.changes.transitions.push(t);
                    }
                }
            }
        }
    }

    /// What the batch changed.
    pub fn into_changes(self) -> Changes {
        self.changes
    }
}

/// Who holds a booking id: the booking that committed under it, or the reconciler that
/// gave up on it and refunds its payment. The first claim wins for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The booking committed.
    Booked,
    /// The reconciler gave up on it.
    Abandoned,
}

impl Claim {
    /// The storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Booked => "BOOKED",
            Self::Abandoned => "ABANDONED",
        }
    }

    /// Reads a storage name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "BOOKED" => Some(Self::Booked),
            "ABANDONED" => Some(Self::Abandoned),
            _ => None,
        }
    }
}

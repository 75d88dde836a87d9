//! The house calendar's rules: what a paid booking (hold its nights, or refuse) and a
//! cancelled one (release them) do, and which events that publishes. Pure: no I/O.
//!
//! The service loads what a batch of commands needs ([`Ledger`]: the houses, cancelled
//! bookings, earlier decisions and held nights it names) through a unit of work
//! ([`super::ports::HouseUnit`]), applies the commands here in order, and has the unit
//! store the [`Changes`] in the same transaction as the inbox rows.
//!
//! The rules:
//! - A booking is decided once: a reservation for a booking with a rental already (rented,
//!   rejected or released) changes nothing.
//! - A booking cancelled before its `Paid` arrived is never held (events from two
//!   contexts arrive in no fixed order).
//! - A stay is held all or none: every night free → `HouseRented`; else
//!   `HouseRentRejected` with why (nights taken, unknown house, impossible stay).
//! - A release frees a rented booking's nights (`HouseRentCanceled`) and remembers the
//!   booking as cancelled either way.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use events::{DomainEvent, HouseRentCanceled, HouseRentRejected, HouseRented, Stay};

use super::models::{RejectReason, ReleaseOutcome, Reservation, ReserveOutcome};

/// Where a booking's rental stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RentalStatus {
    /// Its nights are held.
    Rented,
    /// Refused.
    Rejected,
    /// Held, then released.
    Released,
}

impl RentalStatus {
    /// The storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rented => "RENTED",
            Self::Rejected => "REJECTED",
            Self::Released => "RELEASED",
        }
    }

    /// Reads a storage name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "RENTED" => Some(Self::Rented),
            "REJECTED" => Some(Self::Rejected),
            "RELEASED" => Some(Self::Released),
            _ => None,
        }
    }
}

/// The house's decision for one booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rental {
    /// The booking.
    pub book_id: String,
    /// The house.
    pub house_id: i64,
    /// The stay (none for an impossible one).
    pub stay: Option<Stay>,
    /// Where it stands.
    pub status: RentalStatus,
    /// Why it was refused.
    pub reason: Option<String>,
}

/// What the rules read for a batch: the part of the house context's state it names.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    /// Houses that exist, of those the batch's reservations name.
    pub houses: HashSet<i64>,
    /// Bookings cancelled, of those the batch names.
    pub canceled: HashSet<String>,
    /// Rentals, of the bookings the batch names.
    pub rentals: HashMap<String, Rental>,
    /// Held nights, (house, night) → booking, of those the batch's stays name.
    pub held: HashMap<(i64, NaiveDate), String>,
}

/// What a batch stores, all in one transaction.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Changes {
    /// Bookings to remember as cancelled (again is harmless).
    pub canceled: Vec<String>,
    /// New rentals (decided in this batch), as they stand at its end.
    pub rentals: Vec<Rental>,
    /// Rentals decided before the batch and released in it.
    pub released: Vec<String>,
    /// Nights to hold: (house, night, booking), of new rentals that stand rented.
    pub hold: Vec<(i64, NaiveDate, String)>,
    /// Bookings whose held nights (from before the batch) are freed.
    pub free: Vec<String>,
    /// What the batch publishes, in order.
    pub events: Vec<DomainEvent>,
}

/// A batch of commands over a ledger, applied in order.
#[derive(Debug)]
pub struct Batch {
    ledger: Ledger,
    changes: Changes,
    /// Rentals decided in this batch (their index in `changes.rentals`).
    new: HashMap<String, usize>,
}

impl Batch {
    /// A batch over what it names.
    pub fn new(ledger: Ledger) -> Self {
        Self {
            ledger,
            changes: Changes::default(),
            new: HashMap::new(),
        }
    }

    /// F3: a paid booking's nights held, all or none, or refused.
    pub fn reserve(&mut self, r: &Reservation) -> ReserveOutcome {
        if self.ledger.canceled.contains(&r.book_id) {
            return ReserveOutcome::BookingCanceled;
        }
        if self.ledger.rentals.contains_key(&r.book_id) {
            return ReserveOutcome::AlreadyDecided;
        }
        let Some(stay) = r.stay else {
            return self.reject(r, RejectReason::InvalidStay);
        };
        if !self.ledger.houses.contains(&r.house_id) {
            return self.reject(r, RejectReason::UnknownHouse);
        }
        if stay
            .each_night()
            .any(|n| self.ledger.held.contains_key(&(r.house_id, n)))
        {
            return self.reject(r, RejectReason::NightsTaken);
        }
        for night in stay.each_night() {
            self.ledger
                .held
                .insert((r.house_id, night), r.book_id.clone());
        }
        self.decided(Rental {
            book_id: r.book_id.clone(),
            house_id: r.house_id,
            stay: Some(stay),
            status: RentalStatus::Rented,
            reason: None,
        });
        self.changes
            .events
            .push(DomainEvent::HouseRented(HouseRented {
                house_id: r.house_id,
                book_id: r.book_id.clone(),
                check_in: stay.check_in(),
                check_out: stay.check_out(),
            }));
        ReserveOutcome::Rented
    }

    fn reject(&mut self, r: &Reservation, reason: RejectReason) -> ReserveOutcome {
        self.decided(Rental {
            book_id: r.book_id.clone(),
            house_id: r.house_id,
            stay: r.stay,
            status: RentalStatus::Rejected,
            reason: Some(reason.as_str().to_owned()),
        });
        self.changes
            .events
            .push(DomainEvent::HouseRentRejected(HouseRentRejected {
                house_id: r.house_id,
                book_id: r.book_id.clone(),
                reason: reason.as_str().to_owned(),
            }));
        ReserveOutcome::Rejected(reason)
    }

    fn decided(&mut self, rental: Rental) {
        self.new
            .insert(rental.book_id.clone(), self.changes.rentals.len());
        self.ledger
            .rentals
            .insert(rental.book_id.clone(), rental.clone());
        self.changes.rentals.push(rental);
    }

    /// F6: a cancelled booking's nights released; the booking remembered as cancelled.
    pub fn release(&mut self, book_id: &str) -> ReleaseOutcome {
        if self.ledger.canceled.insert(book_id.to_owned()) {
            self.changes.canceled.push(book_id.to_owned());
        }
        let Some(rental) = self
            .ledger
            .rentals
            .get_mut(book_id)
            .filter(|r| r.status == RentalStatus::Rented)
        else {
            return ReleaseOutcome::NothingHeld;
        };
        rental.status = RentalStatus::Released;
        let Some(stay) = rental.stay else {
            return ReleaseOutcome::NothingHeld;
        };
        let house_id = rental.house_id;
        for night in stay.each_night() {
            self.ledger.held.remove(&(house_id, night));
        }
        match self.new.get(book_id) {
            // Held in this batch: never stored as held.
            Some(&i) => {
                if let Some(r) = self.changes.rentals.get_mut(i) {
                    r.status = RentalStatus::Released;
                }
            }
            None => {
                self.changes.released.push(book_id.to_owned());
                self.changes.free.push(book_id.to_owned());
            }
        }
        self.changes
            .events
            .push(DomainEvent::HouseRentCanceled(HouseRentCanceled {
                house_id,
                book_id: book_id.to_owned(),
                check_in: stay.check_in(),
                check_out: stay.check_out(),
            }));
        ReleaseOutcome::Released
    }

    /// What the batch changed.
    pub fn into_changes(mut self) -> Changes {
        let standing: Vec<&Rental> = self
            .changes
            .rentals
            .iter()
            .filter(|r| r.status == RentalStatus::Rented)
            .collect();
        let mut hold = Vec::new();
        for r in standing {
            if let Some(stay) = r.stay {
                hold.extend(
                    stay.each_night()
                        .map(|n| (r.house_id, n, r.book_id.clone())),
                );
            }
        }
        self.changes.hold = hold;
        self.changes
    }
}

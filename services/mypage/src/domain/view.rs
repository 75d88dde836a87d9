//! The view's rules: how each event of the catalog changes the customer's row of its
//! booking and the houses' calendars. Pure: no I/O.
//!
//! Each column is owned by the context that produces it (book: the booking and its
//! status; payment: the payment; house: the house's answer and the nights), and each
//! producer's events of a booking arrive in order (one topic per producer, keyed by the
//! booking), so no event undoes a later one of the same producer. Across producers there is
//! no order: a `Paid` may come before `Booked`, so what both carry is filled by whichever
//! comes first and overwritten only by its owner (book), and a status is never set back
//! by a late first event.
//!
//! The service loads the rows a batch names through a unit of work
//! ([`super::ports::ViewUnit`]), folds the batch in here ([`Fold`]) and has the unit store
//! the [`Changes`] with the inbox rows, in one transaction.

use std::collections::HashMap;

use chrono::NaiveDate;
use events::{DomainEvent, Stay};
use platform::clock::text;

use super::models::BookingView;

/// A house as the view knows it (from `HouseRegistered`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HouseRow {
    /// The house.
    pub house_id: i64,
    /// Its name.
    pub name: String,
    /// Price of a night.
    pub price: i64,
}

/// A change of the houses' calendars, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NightChange {
    /// A night held for a booking (replacing whoever held it).
    Hold {
        /// The house.
        house_id: i64,
        /// The night.
        night: NaiveDate,
        /// The booking.
        book_id: String,
    },
    /// Every night a booking held, freed.
    Free {
        /// The booking.
        book_id: String,
    },
}

/// What a batch stores.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Changes {
    /// Rows changed, as they stand at the batch's end, in the order first changed.
    pub rows: Vec<BookingView>,
    /// Houses registered or changed.
    pub houses: Vec<HouseRow>,
    /// Calendar changes, in order.
    pub nights: Vec<NightChange>,
}

/// A batch of events folded into the rows it names.
#[derive(Debug, Default)]
pub struct Fold {
    rows: HashMap<String, BookingView>,
    /// Rows changed, in the order first changed (and as a set: a batch names hundreds).
    order: Vec<String>,
    changed: std::collections::HashSet<String>,
    houses: Vec<HouseRow>,
    nights: Vec<NightChange>,
}

/// The booking an event is about; `None` for a house's registration.
pub fn book_id(event: &DomainEvent) -> Option<&str> {
    Some(match event {
        DomainEvent::HouseRegistered(_) => return None,
        DomainEvent::Booked(e) => &e.book_id,
        DomainEvent::BookConfirmed(e) => &e.book_id,
        DomainEvent::BookRejected(e) => &e.book_id,
        DomainEvent::BookCanceled(e) => &e.book_id,
        DomainEvent::Paid(e) => &e.book_id,
        DomainEvent::PaymentCanceled(e) => &e.book_id,
        DomainEvent::HouseRented(e) => &e.book_id,
        DomainEvent::HouseRentRejected(e) => &e.book_id,
        DomainEvent::HouseRentCanceled(e) => &e.book_id,
    })
}

impl Fold {
    /// A fold over the stored rows the batch names (a booking without one gets a new row
    /// on its first event).
    pub fn new(rows: Vec<BookingView>) -> Self {
        Self {
            rows: rows.into_iter().map(|r| (r.book_id.clone(), r)).collect(),
            ..Self::default()
        }
    }

    fn row(&mut self, book_id: &str) -> &mut BookingView {
        if !self.changed.contains(book_id) {
            self.changed.insert(book_id.to_owned());
            self.order.push(book_id.to_owned());
        }
        self.rows
            .entry(book_id.to_owned())
            .or_insert_with(|| BookingView {
                book_id: book_id.to_owned(),
                ..BookingView::default()
            })
    }

    /// Folds one event in (each is given once: the inbox has kept duplicates out).
    pub fn apply(&mut self, event: &DomainEvent) {
        let Some(id) = book_id(event) else {
            if let DomainEvent::HouseRegistered(h) = event {
                self.houses.push(HouseRow {
                    house_id: h.house_id,
                    name: h.house_name.clone(),
                    price: h.house_price,
                });
            }
            return;
        };
        let id = id.to_owned();
        match event {
            // Book owns the booking's facts: they overwrite what `Paid` filled first.
            DomainEvent::Booked(b) => {
                let r = self.row(&id);
                r.customer_id = Some(b.customer_id.clone());
                r.house_id = Some(b.house_id);
                r.house_name = Some(b.house_name.clone());
                r.house_price = Some(b.house_price);
                r.check_in = Some(b.check_in);
                r.check_out = Some(b.check_out);
                r.payment_id = Some(b.payment_id);
                r.book_status.get_or_insert_with(|| "BOOKED".into());
            }
            DomainEvent::BookConfirmed(_) => self.row(&id).book_status = Some("CONFIRMED".into()),
            DomainEvent::BookRejected(b) => {
                let r = self.row(&id);
                r.book_status = Some("REJECTED".into());
                r.reason = Some(b.reason.clone());
            }
            DomainEvent::BookCanceled(b) => {
                let r = self.row(&id);
                r.book_status = Some("BOOK_CANCELED".into());
                r.book_cancel_date = Some(text(b.book_cancel_date));
            }
            // Payment's facts; the booking's only where book's have not arrived.
            DomainEvent::Paid(p) => {
                let r = self.row(&id);
                r.customer_id.get_or_insert_with(|| p.customer_id.clone());
                r.house_id.get_or_insert(p.house_id);
                r.house_price.get_or_insert(p.house_price);
                r.check_in.get_or_insert(p.check_in);
                r.check_out.get_or_insert(p.check_out);
                r.payment_id = Some(p.payment_id);
                r.payment_status.get_or_insert_with(|| "PAID".into());
                r.paid_at = Some(text(p.payment_date));
            }
            DomainEvent::PaymentCanceled(p) => {
                let r = self.row(&id);
                r.payment_status = Some("PAYMENT_CANCELED".into());
                r.refunded_at = Some(text(p.payment_cancel_date));
            }
            DomainEvent::HouseRented(h) => {
                self.row(&id).house_status = Some("RENTED".into());
                if let Ok(stay) = Stay::new(h.check_in, h.check_out) {
                    self.nights
                        .extend(stay.each_night().map(|night| NightChange::Hold {
                            house_id: h.house_id,
                            night,
                            book_id: id.clone(),
                        }));
                }
            }
            DomainEvent::HouseRentRejected(h) => {
                let r = self.row(&id);
                r.house_status = Some("REJECTED".into());
                r.reason = Some(h.reason.clone());
            }
            DomainEvent::HouseRentCanceled(_) => {
                self.row(&id).house_status = Some("RELEASED".into());
                self.nights.push(NightChange::Free { book_id: id });
            }
            DomainEvent::HouseRegistered(_) => {}
        }
    }

    /// What the batch changed.
    pub fn into_changes(mut self) -> Changes {
        let rows = self
            .order
            .iter()
            .filter_map(|id| self.rows.remove(id))
            .collect();
        Changes {
            rows,
            houses: self.houses,
            nights: self.nights,
        }
    }
}

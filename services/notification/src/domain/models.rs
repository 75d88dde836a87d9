//! What a customer is told, and when: one message per event about their booking or its
//! payment. Pure: no storage, no transport.

use events::DomainEvent;

/// A message for the owner of a booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The booking it is about.
    pub book_id: String,
    /// What happened: `PAYMENT_RECEIVED`, `BOOKING_CONFIRMED`, `BOOKING_REJECTED`,
    /// `BOOKING_CANCELED` or `PAYMENT_REFUNDED`.
    pub kind: &'static str,
    /// The text shown to the customer.
    pub text: String,
}

/// A stored message, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The event it came from (its id).
    pub id: String,
    /// The booking.
    pub book_id: String,
    /// Its owner, once known.
    pub customer_id: Option<String>,
    /// What happened.
    pub kind: String,
    /// The text.
    pub text: String,
    /// When it happened (the event's `occurredAt`, RFC 3339).
    pub occurred_at: String,
}

/// The event types this service reads: the booking outcomes, the payment events, and
/// `Booked` (which says whose booking it is, and tells nothing by itself).
pub const CONSUMES: &[&str] = &[
    "Booked",
    "BookConfirmed",
    "BookRejected",
    "BookCanceled",
    "Paid",
    "PaymentCanceled",
];

/// Whose booking an event says it is, if it says.
pub fn owner(event: &DomainEvent) -> Option<(&str, &str)> {
    match event {
        DomainEvent::Booked(b) => Some((&b.book_id, &b.customer_id)),
        DomainEvent::Paid(p) => Some((&p.book_id, &p.customer_id)),
        _ => None,
    }
}

/// The message an event makes, if any.
pub fn message(event: &DomainEvent) -> Option<Message> {
    let (book_id, kind, text) = match event {
        DomainEvent::Paid(p) => (
            &p.book_id,
            "PAYMENT_RECEIVED",
            format!(
                "We received your payment of {} for booking {} ({} to {}).",
                p.house_price, p.book_id, p.check_in, p.check_out
            ),
        ),
        DomainEvent::BookConfirmed(b) => (
            &b.book_id,
            "BOOKING_CONFIRMED",
            format!("Your booking {} is confirmed.", b.book_id),
        ),
        DomainEvent::BookRejected(b) => (
            &b.book_id,
            "BOOKING_REJECTED",
            format!(
                "Your booking {} could not be confirmed ({}); your payment is refunded.",
                b.book_id, b.reason
            ),
        ),
        DomainEvent::BookCanceled(b) => (
            &b.book_id,
            "BOOKING_CANCELED",
            format!("Your booking {} is cancelled.", b.book_id),
        ),
        DomainEvent::PaymentCanceled(p) => (
            &p.book_id,
            "PAYMENT_REFUNDED",
            format!(
                "Your payment of {} for booking {} is refunded.",
                p.house_price, p.book_id
            ),
        ),
        _ => return None,
    };
    Some(Message {
        book_id: book_id.clone(),
        kind,
        text,
    })
}

#[cfg(test)]
mod tests {
    use events::{BookConfirmed, Booked, HouseRented};

    use super::*;

    fn d(s: &str) -> chrono::NaiveDate {
        events::parse_date(s).unwrap()
    }

    #[test]
    fn outcomes_make_messages_and_owners_come_from_booked_and_paid() {
        let booked = DomainEvent::Booked(Booked {
            book_id: "b-1".into(),
            customer_id: "alice".into(),
            house_id: 1,
            house_name: "x".into(),
            house_price: 200,
            check_in: d("2031-01-01"),
            check_out: d("2031-01-03"),
            payment_id: 9,
        });
        assert_eq!(owner(&booked), Some(("b-1", "alice")));
        assert_eq!(
            message(&booked),
            None,
            "Booked tells the customer nothing new"
        );
        let confirmed = DomainEvent::BookConfirmed(BookConfirmed {
            book_id: "b-1".into(),
            house_id: 1,
        });
        assert_eq!(owner(&confirmed), None);
        assert_eq!(
            message(&confirmed),
            Some(Message {
                book_id: "b-1".into(),
                kind: "BOOKING_CONFIRMED",
                text: "Your booking b-1 is confirmed.".into()
            })
        );
        let rented = DomainEvent::HouseRented(HouseRented {
            house_id: 1,
            book_id: "b-1".into(),
            check_in: d("2031-01-01"),
            check_out: d("2031-01-03"),
        });
        assert_eq!(
            message(&rented),
            None,
            "house's events are not for customers"
        );
        for t in CONSUMES {
            assert!(events::EVENT_TYPES.contains(t), "{t}");
        }
    }
}

/// What a batch stores.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Owners learnt: (booking, customer); the first learnt stays.
    pub owners: Vec<(String, String)>,
    /// Messages to keep, with their owner where known.
    pub messages: Vec<Notification>,
}

/// A batch of events, applied in order over the owners known of the bookings it names.
#[derive(Debug, Default)]
pub struct Batch {
    owners: std::collections::HashMap<String, String>,
    changes: Changes,
}

impl Batch {
    /// A batch over the owners stored of the bookings it names.
    pub fn new(owners: std::collections::HashMap<String, String>) -> Self {
        Self {
            owners,
            changes: Changes::default(),
        }
    }

    /// Applies one event (each is given once): the owner it names is learnt (the first
    /// one stays), the message it makes is kept with its owner where known. Messages about
    /// a booking whose owner is not known yet — earlier in this batch or in one before —
    /// are kept without one (an admin sees them) and given it when the owner is saved
    /// ([`super::ports::NotificationUnit::save`]).
    pub fn apply(
        &mut self,
        id: &str,
        occurred_at: chrono::DateTime<chrono::Utc>,
        event: &DomainEvent,
    ) {
        if let Some((book_id, customer)) = owner(event) {
            if !self.owners.contains_key(book_id) {
                self.owners.insert(book_id.to_owned(), customer.to_owned());
                self.changes
                    .owners
                    .push((book_id.to_owned(), customer.to_owned()));
            }
        }
        if let Some(m) = message(event) {
            self.changes.messages.push(Notification {
                id: id.to_owned(),
                customer_id: self.owners.get(&m.book_id).cloned(),
                book_id: m.book_id,
                kind: m.kind.to_owned(),
                text: m.text,
                occurred_at: platform::clock::text(occurred_at),
            });
        }
    }

    /// What the batch changed.
    pub fn into_changes(self) -> Changes {
        self.changes
    }
}

/// The booking an event is about.
pub fn book_id(event: &DomainEvent) -> Option<&str> {
    match event {
        DomainEvent::Booked(e) => Some(&e.book_id),
        DomainEvent::BookConfirmed(e) => Some(&e.book_id),
        DomainEvent::BookRejected(e) => Some(&e.book_id),
        DomainEvent::BookCanceled(e) => Some(&e.book_id),
        DomainEvent::Paid(e) => Some(&e.book_id),
        DomainEvent::PaymentCanceled(e) => Some(&e.book_id),
        _ => None,
    }
}

/// A place in the live feed: after every message of the units of work numbered up to
/// `seq`, or — with `id` — after the messages of unit `seq` up to that id. A unit's
/// number is taken in commit order, so a reader at a cursor has missed nothing before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The unit of work's number.
    pub seq: i64,
    /// The last message seen of that unit; `None`: all of it.
    pub id: Option<String>,
}

impl Cursor {
    /// The place of one message: what a reader sends back to resume after it.
    pub fn at(seq: i64, id: &str) -> Self {
        Self {
            seq,
            id: Some(id.to_owned()),
        }
    }

    /// Reads a cursor as [`Cursor`]'s `Display` writes it (`SEQ` or `SEQ:ID`); `None`
    /// for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let (seq, id) = match text.split_once(':') {
            Some((seq, id)) if id_text(id) => (seq, Some(id.to_owned())),
            Some(_) => return None,
            None => (text, None),
        };
        // Digits as this service writes them: no sign, no leading zero, at most 18 (an i64).
        let written = (1..=18).contains(&seq.len())
            && seq.bytes().all(|b| b.is_ascii_digit())
            && (seq == "0" || !seq.starts_with('0'));
        Some(Self {
            seq: seq.parse().ok().filter(|_| written)?,
            id,
        })
    }
}

/// An id of a cursor: 1 to 128 visible ASCII characters but `:` (event ids are UUIDs).
fn id_text(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{}:{id}", self.seq),
            None => write!(f, "{}", self.seq),
        }
    }
}

#[cfg(test)]
mod cursor {
    use super::Cursor;

    #[test]
    fn a_cursor_reads_back_what_it_writes_and_nothing_else() {
        for c in [
            Cursor { seq: 0, id: None },
            Cursor { seq: 42, id: None },
            Cursor::at(7, "3f0c-aa"),
        ] {
            assert_eq!(Cursor::parse(&c.to_string()), Some(c));
        }
        for bad in [
            "",
            "-1",
            "+1",
            "01",
            "x",
            "1:",
            ":x",
            "1.5",
            "99999999999999999999",
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Cursor::parse(&format!("1:{}", "x".repeat(129))), None);
    }
}

//! The booking repository on SQLite or PostgreSQL: each change commits with its event.

use std::collections::{HashMap, HashSet};

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use events::{BookCanceled, BookConfirmed, BookRejected, Booked, Envelope, EventKey, Stay};
use platform::consumer::claim_all;
use platform::db::{
    now_text, parse_time, placeholders, rows_per_statement, time_text, values, Backend, Db,
};
use platform::outbox::Outbox;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::domain::models::{BookStatus, Booking, InvalidTransition, Listing};
use crate::domain::ports::InsertBookedError;
use crate::domain::ports::{
    Applied, BookRepository, BookingFilter, CancelError, Consumed, HouseDecision,
};

const COLUMNS: &str =
    "id, customer_id, house_id, house_name, house_price, check_in, check_out, status, \
                       payment_id, created_at, book_cancel_date";

/// Bookings in the service's own database.
#[derive(Clone, Debug)]
pub struct SqlBookings {
    db: Db,
    outbox: Outbox,
}

impl SqlBookings {
    /// A repository over a database and its outbox.
    pub fn new(db: Db, outbox: Outbox) -> Self {
        Self { db, outbox }
    }

    /// [`BookRepository::insert_booked`]'s transaction; `None`: the reconciler had
    /// claimed the id (abandoned), nothing stored.
    async fn commit_booked(&self, b: &Booking) -> anyhow::Result<Option<Booking>> {
        let mut tx = self.db.begin().await?;
        lock_booking_ids(&mut tx, self.db.backend(), &[b.id.as_str()]).await?;
        if !claim_booking_id(&mut tx, &b.id, "BOOKED").await? {
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO bookings (id, customer_id, house_id, house_name, house_price, check_in, check_out, \
             status, payment_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'BOOKED', $8, $9)",
        )
        .bind(b.id.clone())
        .bind(b.customer_id.clone())
        .bind(b.house_id)
        .bind(b.house_name.clone())
        .bind(b.price)
        .bind(b.stay.check_in().to_string())
        .bind(b.stay.check_out().to_string())
        .bind(b.payment_id)
        .bind(time_text(b.created_at))
        .execute(&mut *tx)
        .await?;
        let booked = Booked {
            book_id: b.id.clone(),
            customer_id: b.customer_id.clone(),
            house_id: b.house_id,
            house_name: b.house_name.clone(),
            house_price: b.price,
            check_in: b.stay.check_in(),
            check_out: b.stay.check_out(),
            payment_id: b.payment_id,
        };
        self.outbox.enqueue(&mut tx, &booked).await?;
        sqlx::query("DELETE FROM unmatched_payments WHERE book_id = $1")
            .bind(b.id.clone())
            .execute(&mut *tx)
            .await?;
        let mut stored = b.clone();
        let early = sqlx::query("SELECT outcome, reason FROM early_decisions WHERE book_id = $1")
            .bind(b.id.clone())
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = early {
            let outcome: String = row.try_get("outcome")?;
            let decision = if outcome == "RENTED" {
                HouseDecision::Rented
            } else {
                HouseDecision::Rejected(
                    row.try_get::<Option<String>, _>("reason")?
                        .unwrap_or_default(),
                )
            };
            // The booking was inserted above, so it is BOOKED and the decision moves it.
            let next = match decision {
                HouseDecision::Rented => BookStatus::Confirmed,
                HouseDecision::Rejected(_) => BookStatus::Rejected,
            };
            let events = decide_all(&mut tx, &[(b.id.clone(), b.house_id, decision)]).await?;
            if !events.is_empty() {
                stored.status = next;
            }
            self.outbox.insert(&mut tx, &events).await?;
            sqlx::query("DELETE FROM early_decisions WHERE book_id = $1")
                .bind(b.id.clone())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.outbox.notify();
        Ok(Some(stored))
    }
}

fn booking(row: &AnyRow) -> anyhow::Result<Booking> {
    let status: String = row.try_get("status")?;
    let cancel: Option<String> = row.try_get("book_cancel_date")?;
    Ok(Booking {
        id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        house_id: row.try_get("house_id")?,
        house_name: row.try_get("house_name")?,
        price: row.try_get("house_price")?,
        stay: Stay::new(
            events::parse_date(&row.try_get::<String, _>("check_in")?)?,
            events::parse_date(&row.try_get::<String, _>("check_out")?)?,
        )?,
        status: BookStatus::parse(&status).context("unknown status in the database")?,
        payment_id: row.try_get("payment_id")?,
        created_at: parse_time(&row.try_get::<String, _>("created_at")?)?,
        book_cancel_date: cancel.as_deref().map(parse_time).transpose()?,
    })
}

/// Claims a booking id for a booking or for the reconciler; `false` if the other has it
/// (a concurrent claim waits for the other transaction, then loses).
async fn claim_booking_id(
    conn: &mut AnyConnection,
    book_id: &str,
    claim: &str,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO booking_claims (book_id, claim) VALUES ($1, $2) ON CONFLICT (book_id) DO NOTHING",
    )
    .bind(book_id.to_owned())
    .bind(claim.to_owned())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn find(conn: &mut AnyConnection, id: &str) -> anyhow::Result<Option<Booking>> {
    let sql = format!("SELECT {COLUMNS} FROM bookings WHERE id = $1");
    sqlx::query(&sql)
        .bind(id.to_owned())
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(booking)
        .transpose()
}

/// The status and house of each named booking that exists, in one query.
/// On PostgreSQL, takes a transaction-long lock on each booking id, in order (two holders
/// never wait on each other in a circle). The commit of a booking takes its id's lock
/// first, and so does an event that finds its booking not committed: one then sees what
/// the other wrote (READ COMMITTED reads afresh at each statement). Without it, a house
/// decision (or a `Paid`) read "no booking yet" while the booking's commit read "no early
/// decision yet", both committed, and the booking stayed BOOKED for good (found by the
/// rolling restart of two book replicas). SQLite runs one writer at a time: nothing to
/// take. Returns whether it took any (then what was read before may have changed).
async fn lock_booking_ids(
    conn: &mut AnyConnection,
    backend: Backend,
    ids: &[&str],
) -> anyhow::Result<bool> {
    if backend != Backend::Postgres || ids.is_empty() {
        return Ok(false);
    }
    let mut unique = ids.to_vec();
    unique.sort_unstable();
    unique.dedup();
    for id in unique {
        // pg_advisory_xact_lock returns void, which the Any driver cannot read: count it.
        sqlx::query(
            "SELECT count(*) AS n FROM (SELECT pg_advisory_xact_lock(hashtextextended($1, 0))) AS held",
        )
        .bind(id.to_owned())
        .fetch_one(&mut *conn)
        .await?;
    }
    Ok(true)
}

async fn statuses(
    conn: &mut AnyConnection,
    ids: &[&str],
) -> anyhow::Result<HashMap<String, (BookStatus, i64)>> {
    let mut found = HashMap::new();
    let mut unique: Vec<&str> = ids.to_vec();
    unique.sort_unstable();
    unique.dedup();
    for chunk in unique.chunks(rows_per_statement(1)) {
        let sql = format!(
            "SELECT id, status, house_id FROM bookings WHERE id IN ({})",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind((*id).to_owned());
        }
        for row in q.fetch_all(&mut *conn).await? {
            let status: String = row.try_get("status")?;
            found.insert(
                row.try_get("id")?,
                (
                    BookStatus::parse(&status).context("unknown status in the database")?,
                    row.try_get("house_id")?,
                ),
            );
        }
    }
    Ok(found)
}

/// Applies house decisions to stored bookings, one `UPDATE` per outcome: each `BOOKED`
/// one becomes `CONFIRMED`, or `REJECTED` with a refund due. Returns the events of the
/// bookings it moved, in the decisions' order. One no longer `BOOKED` (on PostgreSQL a
/// concurrent cancel can commit between the read and this update) is not moved, and gets
/// no event.
async fn decide_all(
    conn: &mut AnyConnection,
    decisions: &[(String, i64, HouseDecision)],
) -> anyhow::Result<Vec<Envelope>> {
    let mut moved = HashSet::new();
    for (next, rented) in [(BookStatus::Confirmed, true), (BookStatus::Rejected, false)] {
        let ids: Vec<&str> = decisions
            .iter()
            .filter(|(_, _, d)| matches!(d, HouseDecision::Rented) == rented)
            .map(|(id, _, _)| id.as_str())
            .collect();
        let refund = i64::from(next == BookStatus::Rejected);
        for chunk in ids.chunks(rows_per_statement(1)) {
            let sql = format!(
                "UPDATE bookings SET status = $1, refund_pending = $2 WHERE status = 'BOOKED' AND id IN ({}) RETURNING id",
                placeholders(3, chunk.len())
            );
            let mut q = sqlx::query_scalar::<_, String>(&sql)
                .bind(next.as_str())
                .bind(refund);
            for id in chunk {
                q = q.bind((*id).to_owned());
            }
            moved.extend(q.fetch_all(&mut *conn).await?);
        }
    }
    let mut events = Vec::new();
    for (book_id, house_id, decision) in decisions {
        if !moved.remove(book_id) {
            continue;
        }
        let (book_id, house_id) = (book_id.clone(), *house_id);
        events.push(match decision {
            HouseDecision::Rented => Outbox::envelope(&BookConfirmed { book_id, house_id })?,
            HouseDecision::Rejected(reason) => Outbox::envelope(&BookRejected {
                book_id,
                house_id,
                reason: reason.clone(),
            })?,
        });
    }
    Ok(events)
}

/// Cancels the bookings (still `BOOKED` or `CONFIRMED`) whose payment was refunded, in one
/// statement per chunk, with nothing left to refund; their `BookCanceled` events.
async fn cancel_refunded(
    conn: &mut AnyConnection,
    refunded: &[(String, i64)],
) -> anyhow::Result<Vec<Envelope>> {
    let at = Utc::now();
    let mut moved = HashSet::new();
    for chunk in refunded.chunks(rows_per_statement(1)) {
        let sql = format!(
            "UPDATE bookings SET status = $1, book_cancel_date = $2, refund_pending = 0 \
             WHERE status IN ('BOOKED', 'CONFIRMED') AND id IN ({}) RETURNING id",
            placeholders(3, chunk.len())
        );
        let mut q = sqlx::query_scalar::<_, String>(&sql)
            .bind(BookStatus::BookCanceled.as_str())
            .bind(time_text(at));
        for (id, _) in chunk {
            q = q.bind(id.clone());
        }
        moved.extend(q.fetch_all(&mut *conn).await?);
    }
    refunded
        .iter()
        .filter(|(id, _)| moved.remove(id))
        .map(|(book_id, house_id)| {
            Outbox::envelope(&BookCanceled {
                book_id: book_id.clone(),
                house_id: *house_id,
                book_cancel_date: at,
            })
        })
        .collect()
}

/// Keeps the house's decisions for bookings not committed yet, in one statement.
async fn keep_early(
    conn: &mut AnyConnection,
    early: &[(String, HouseDecision)],
) -> anyhow::Result<()> {
    for chunk in early.chunks(rows_per_statement(4)) {
        let values = values(chunk.len(), 4);
        let sql = format!(
            "INSERT INTO early_decisions (book_id, outcome, reason, decided_at) VALUES {values} \
             ON CONFLICT (book_id) DO NOTHING"
        );
        let mut q = sqlx::query(&sql);
        let now = now_text();
        for (book_id, decision) in chunk {
            let (outcome, reason) = match decision {
                HouseDecision::Rented => ("RENTED", None),
                HouseDecision::Rejected(r) => ("REJECTED", Some(r.clone())),
            };
            q = q
                .bind(book_id.clone())
                .bind(outcome)
                .bind(reason)
                .bind(now.clone());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Notes payments for bookings not committed (yet), in one statement; the reconciler
/// refunds those that never get one.
async fn keep_unmatched(conn: &mut AnyConnection, paid: &[(String, i64)]) -> anyhow::Result<()> {
    for chunk in paid.chunks(rows_per_statement(3)) {
        let values = values(chunk.len(), 3);
        let sql = format!(
            "INSERT INTO unmatched_payments (book_id, payment_id, seen_at) VALUES {values} \
             ON CONFLICT (book_id) DO NOTHING"
        );
        let mut q = sqlx::query(&sql);
        let now = now_text();
        for (book_id, payment_id) in chunk {
            q = q.bind(book_id.clone()).bind(*payment_id).bind(now.clone());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

#[async_trait]
impl BookRepository for SqlBookings {
    async fn remember_listing(&self, l: &Listing) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO listings (house_id, house_name, house_price) VALUES ($1, $2, $3) \
             ON CONFLICT (house_id) DO NOTHING",
        )
        .bind(l.house_id)
        .bind(l.name.clone())
        .bind(l.price)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    async fn listing(&self, house_id: i64) -> anyhow::Result<Option<Listing>> {
        let row = sqlx::query(
            "SELECT house_id, house_name, house_price FROM listings WHERE house_id = $1",
        )
        .bind(house_id)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|r| {
            Ok(Listing {
                house_id: r.try_get("house_id")?,
                name: r.try_get("house_name")?,
                price: r.try_get("house_price")?,
            })
        })
        .transpose()
    }

    async fn insert_booked(&self, b: &Booking) -> Result<Booking, InsertBookedError> {
        self.commit_booked(b)
            .await?
            .ok_or(InsertBookedError::Abandoned)
    }

    async fn get(&self, id: &str) -> anyhow::Result<Option<Booking>> {
        let mut conn = self.db.pool().acquire().await?;
        find(&mut conn, id).await
    }

    async fn list(&self, f: &BookingFilter) -> anyhow::Result<Vec<Booking>> {
        // Placeholders are numbered in the order the optional filters are bound.
        let mut clauses = Vec::new();
        if f.customer_id.is_some() {
            clauses.push(format!("customer_id = ${}", clauses.len() + 1));
        }
        if f.status.is_some() {
            clauses.push(format!("status = ${}", clauses.len() + 1));
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let n = clauses.len();
        let sql = format!(
            "SELECT {COLUMNS} FROM bookings {filter} ORDER BY id LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let mut q = sqlx::query(&sql);
        if let Some(c) = &f.customer_id {
            q = q.bind(c.clone());
        }
        if let Some(s) = f.status {
            q = q.bind(s.as_str());
        }
        let rows = q
            .bind(f.limit)
            .bind(f.offset)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(booking).collect()
    }

    /// A batch in a fixed number of round trips, whatever its size: the bookings it names
    /// in one query, its inbox rows in one statement, the decisions as one update per
    /// outcome, their events in one insert. (One statement per event made book's
    /// consumer the saga's bottleneck on PostgreSQL: docs/performance.md.)
    async fn apply_events(
        &self,
        events: &[(EventKey, Consumed)],
    ) -> anyhow::Result<Vec<Applied<()>>> {
        let mut tx = self.db.begin().await?;
        let named: Vec<&str> = events
            .iter()
            .filter_map(|(_, e)| match e {
                Consumed::Paid { book_id, .. }
                | Consumed::Decision { book_id, .. }
                | Consumed::Refunded { book_id } => Some(book_id.as_str()),
                Consumed::Listing(_) => None,
            })
            .collect();
        let mut known = statuses(&mut tx, &named).await?;
        // Bookings not committed (yet): wait for a commit in progress, then look again.
        let unknown: Vec<&str> = named
            .iter()
            .copied()
            .filter(|id| !known.contains_key(*id))
            .collect();
        if lock_booking_ids(&mut tx, self.db.backend(), &unknown).await? {
            known.extend(statuses(&mut tx, &unknown).await?);
        }
        // Usually a booking committed before its Paid arrives: then there is nothing to
        // note, now or on any redelivery, and no inbox row is needed.
        let needs_claim: Vec<bool> = events
            .iter()
            .map(|(_, e)| !matches!(e, Consumed::Paid { book_id, .. } if known.contains_key(book_id)))
            .collect();
        let keys: Vec<&EventKey> = events
            .iter()
            .zip(&needs_claim)
            .filter(|(_, n)| **n)
            .map(|((k, _), _)| k)
            .collect();
        let mut claimed = claim_all(&mut tx, &keys).await?.into_iter();
        let mut out = Vec::with_capacity(events.len());
        let (mut decided, mut refunded) = (Vec::new(), Vec::new());
        let (mut early, mut unmatched) = (Vec::new(), Vec::new());
        for ((_, event), needs) in events.iter().zip(needs_claim) {
            if !needs {
                out.push(Applied::Now(()));
                continue;
            }
            if !claimed.next().unwrap_or(false) {
                out.push(Applied::Duplicate);
                continue;
            }
            match event {
                Consumed::Listing(l) => {
                    sqlx::query(
                        "INSERT INTO listings (house_id, house_name, house_price) VALUES ($1, $2, $3) \
                         ON CONFLICT (house_id) DO UPDATE SET house_name = excluded.house_name, house_price = excluded.house_price",
                    )
                    .bind(l.house_id)
                    .bind(l.name.clone())
                    .bind(l.price)
                    .execute(&mut *tx)
                    .await?;
                }
                Consumed::Decision { book_id, decision } => match known.get_mut(book_id) {
                    Some((status, house_id)) => {
                        let next = match decision {
                            HouseDecision::Rented => status.confirm(),
                            HouseDecision::Rejected(_) => status.reject(),
                        };
                        // Not allowed (e.g. cancelled meanwhile: the house released, or
                        // will release, the nights): nothing to do.
                        if let Ok(next) = next {
                            *status = next;
                            decided.push((book_id.clone(), *house_id, decision.clone()));
                        }
                    }
                    None => early.push((book_id.clone(), decision.clone())),
                },
                Consumed::Paid {
                    book_id,
                    payment_id,
                } => unmatched.push((book_id.clone(), *payment_id)),
                // Refunded under a booking that stands: the booking falls with its payment.
                // Already cancelled or rejected (book's own refunds): nothing to do. Not
                // committed (yet): the reconciler's claim keeps a booking whose payment it
                // refunded from committing; a refund made elsewhere in that instant is not
                // covered (docs/guarantees.md).
                Consumed::Refunded { book_id } => {
                    if let Some((status, house_id)) = known.get_mut(book_id) {
                        if let Ok(next) = status.cancel() {
                            *status = next;
                            refunded.push((book_id.clone(), *house_id));
                        }
                    }
                }
            }
            out.push(Applied::Now(()));
        }
        let mut envelopes = decide_all(&mut tx, &decided).await?;
        envelopes.extend(cancel_refunded(&mut tx, &refunded).await?);
        self.outbox.insert(&mut tx, &envelopes).await?;
        keep_early(&mut tx, &early).await?;
        keep_unmatched(&mut tx, &unmatched).await?;
        tx.commit().await?;
        if !envelopes.is_empty() {
            self.outbox.notify();
        }
        Ok(out)
    }

    async fn cancel(&self, id: &str, at: DateTime<Utc>) -> Result<Booking, CancelError> {
        let mut tx = self.db.begin().await.map_err(anyhow::Error::from)?;
        let mut b = find(&mut tx, id)
            .await?
            .ok_or_else(|| CancelError::NotFound(id.to_owned()))?;
        let next = b.status.cancel()?;
        let changed = sqlx::query(
            "UPDATE bookings SET status = $1, book_cancel_date = $2, refund_pending = 1 WHERE id = $3 AND status IN ('BOOKED', 'CONFIRMED')",
        )
        .bind(next.as_str())
        .bind(time_text(at))
        .bind(id.to_owned())
        .execute(&mut *tx)
        .await
        .map_err(anyhow::Error::from)?
        .rows_affected();
        if changed == 0 {
            // A concurrent cancel won.
            let done = BookStatus::BookCanceled.as_str();
            return Err(InvalidTransition {
                from: done,
                to: done,
            }
            .into());
        }
        self.outbox
            .enqueue(
                &mut tx,
                &BookCanceled {
                    book_id: b.id.clone(),
                    house_id: b.house_id,
                    book_cancel_date: at,
                },
            )
            .await?;
        tx.commit().await.map_err(anyhow::Error::from)?;
        self.outbox.notify();
        b.status = next;
        b.book_cancel_date = Some(at);
        Ok(b)
    }

    async fn unmatched_payments(&self, before: DateTime<Utc>) -> anyhow::Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT book_id FROM unmatched_payments WHERE seen_at < $1 ORDER BY seen_at LIMIT 500",
        )
        .bind(time_text(before))
        .fetch_all(self.db.pool())
        .await?)
    }

    async fn abandon(&self, book_id: &str) -> anyhow::Result<bool> {
        let mut tx = self.db.begin().await?;
        // Ours already when an earlier round abandoned it and its refund failed.
        let won = claim_booking_id(&mut tx, book_id, "ABANDONED").await?
            || sqlx::query_scalar::<_, String>(
                "SELECT claim FROM booking_claims WHERE book_id = $1",
            )
            .bind(book_id.to_owned())
            .fetch_optional(&mut *tx)
            .await?
            .as_deref()
                == Some("ABANDONED");
        tx.commit().await?;
        Ok(won)
    }

    async fn forget_payment(&self, book_id: &str) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM unmatched_payments WHERE book_id = $1")
            .bind(book_id.to_owned())
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    async fn refunds_due(&self) -> anyhow::Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM bookings WHERE refund_pending = 1 ORDER BY id LIMIT 500",
        )
        .fetch_all(self.db.pool())
        .await?)
    }

    async fn refund_done(&self, book_id: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE bookings SET refund_pending = 0 WHERE id = $1")
            .bind(book_id.to_owned())
            .execute(self.db.pool())
            .await?;
        Ok(())
    }
}

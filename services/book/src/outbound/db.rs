//! The booking repository on SQLite or PostgreSQL: reads, and units of work that store
//! what the domain decided (`domain::saga`) — state, events and inbox rows in one
//! transaction. Nothing here decides: a transition is written only where the booking is
//! still in a status it may leave, and that is all the adapter checks.

use std::collections::HashSet;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use events::{EventKey, Stay};
use platform::consumer::claim_all;
use platform::db::{
    now_text, parse_time, placeholders, rows_per_statement, time_text, values, Backend, Db,
};
use platform::outbox::{Outbox, OutboxTx};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::domain::models::{BookStatus, Booking, Listing};
use crate::domain::ports::{BookRepository, BookUnit, BookingFilter};
use crate::domain::saga::{Changes, Claim, HouseDecision, Known, Standing, Transition, Unmatched};

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
}

/// A row's `check_in` and `check_out`.
fn stay(row: &AnyRow) -> anyhow::Result<Stay> {
    Ok(Stay::new(
        events::parse_date(&row.try_get::<String, _>("check_in")?)?,
        events::parse_date(&row.try_get::<String, _>("check_out")?)?,
    )?)
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
        stay: stay(row)?,
        status: BookStatus::parse(&status).context("unknown status in the database")?,
        payment_id: row.try_get("payment_id")?,
        created_at: parse_time(&row.try_get::<String, _>("created_at")?)?,
        book_cancel_date: cancel.as_deref().map(parse_time).transpose()?,
    })
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

async fn standings(conn: &mut AnyConnection, ids: &[&str]) -> anyhow::Result<Known> {
    let mut found = Known::new();
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
                Standing {
                    status: BookStatus::parse(&status).context("unknown status in the database")?,
                    house_id: row.try_get("house_id")?,
                },
            );
        }
    }
    Ok(found)
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
async fn keep_unmatched(conn: &mut AnyConnection, paid: &[Unmatched]) -> anyhow::Result<()> {
    for chunk in paid.chunks(rows_per_statement(3)) {
        let values = values(chunk.len(), 3);
        let sql = format!(
            "INSERT INTO unmatched_payments (book_id, payment_id, seen_at) VALUES {values} \
             ON CONFLICT (book_id) DO NOTHING"
        );
        let mut q = sqlx::query(&sql);
        for p in chunk {
            q = q
                .bind(p.book_id.clone())
                .bind(p.payment_id)
                .bind(time_text(p.seen_at));
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
            "SELECT {COLUMNS} FROM bookings {filter} ORDER BY {} LIMIT ${} OFFSET ${}",
            f.order.sql("id"),
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

    async fn stays_held(&self, customer_id: &str, after: NaiveDate) -> anyhow::Result<Vec<Stay>> {
        // Dates are stored as YYYY-MM-DD text: their order is the dates' order.
        let rows = sqlx::query(
            "SELECT check_in, check_out FROM bookings \
             WHERE customer_id = $1 AND status IN ($2, $3) AND check_out > $4",
        )
        .bind(customer_id.to_owned())
        .bind(BookStatus::Booked.as_str())
        .bind(BookStatus::Confirmed.as_str())
        .bind(after.to_string())
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(stay).collect()
    }

    async fn unmatched_payments(&self, before: DateTime<Utc>) -> anyhow::Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT book_id FROM unmatched_payments WHERE seen_at < $1 ORDER BY seen_at LIMIT 500",
        )
        .bind(time_text(before))
        .fetch_all(self.db.pool())
        .await?)
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

    async fn begin(&self) -> anyhow::Result<Box<dyn BookUnit>> {
        Ok(Box::new(SqlUnit {
            tx: OutboxTx::begin(&self.db, &self.outbox).await?,
            backend: self.db.backend(),
        }))
    }
}

/// One transaction over the booking tables.
struct SqlUnit {
    tx: OutboxTx,
    backend: Backend,
}

#[async_trait]
impl BookUnit for SqlUnit {
    async fn standings(&mut self, ids: &[&str]) -> anyhow::Result<Known> {
        let mut known = standings(self.tx.conn(), ids).await?;
        // Bookings not committed (yet): wait for a commit in progress, then look again.
        let unknown: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|id| !known.contains_key(*id))
            .collect();
        if lock_booking_ids(self.tx.conn(), self.backend, &unknown).await? {
            known.extend(standings(self.tx.conn(), &unknown).await?);
        }
        Ok(known)
    }

    async fn booking(&mut self, id: &str) -> anyhow::Result<Option<Booking>> {
        find(self.tx.conn(), id).await
    }

    async fn claim_events(&mut self, keys: &[&EventKey]) -> anyhow::Result<Vec<bool>> {
        Ok(claim_all(self.tx.conn(), keys).await?)
    }

    async fn claim_id(&mut self, book_id: &str, claim: Claim) -> anyhow::Result<Claim> {
        lock_booking_ids(self.tx.conn(), self.backend, &[book_id]).await?;
        // A concurrent claim waits for the other transaction, then loses.
        let done = sqlx::query(
            "INSERT INTO booking_claims (book_id, claim) VALUES ($1, $2) ON CONFLICT (book_id) DO NOTHING",
        )
        .bind(book_id.to_owned())
        .bind(claim.as_str())
        .execute(self.tx.conn())
        .await?;
        if done.rows_affected() == 1 {
            return Ok(claim);
        }
        let held: String =
            sqlx::query_scalar("SELECT claim FROM booking_claims WHERE book_id = $1")
                .bind(book_id.to_owned())
                .fetch_one(self.tx.conn())
                .await?;
        Claim::parse(&held).with_context(|| format!("unknown claim {held:?} in the database"))
    }

    async fn early_decision(&mut self, book_id: &str) -> anyhow::Result<Option<HouseDecision>> {
        // Taken: a booking commits once, and its early decision applies then.
        let row =
            sqlx::query("DELETE FROM early_decisions WHERE book_id = $1 RETURNING outcome, reason")
                .bind(book_id.to_owned())
                .fetch_optional(self.tx.conn())
                .await?;
        let Some(row) = row else { return Ok(None) };
        let outcome: String = row.try_get("outcome")?;
        Ok(Some(match outcome.as_str() {
            "RENTED" => HouseDecision::Rented,
            _ => HouseDecision::Rejected(
                row.try_get::<Option<String>, _>("reason")?
                    .unwrap_or_default(),
            ),
        }))
    }

    async fn save(&mut self, changes: &Changes) -> anyhow::Result<Vec<bool>> {
        let conn = self.tx.conn();
        for b in &changes.booked {
            insert_booking(conn, b).await?;
        }
        for l in &changes.listings {
            sqlx::query(
                "INSERT INTO listings (house_id, house_name, house_price) VALUES ($1, $2, $3) \
                 ON CONFLICT (house_id) DO UPDATE SET house_name = excluded.house_name, house_price = excluded.house_price",
            )
            .bind(l.house_id)
            .bind(l.name.clone())
            .bind(l.price)
            .execute(&mut *conn)
            .await?;
        }
        let moved = write_transitions(conn, &changes.transitions).await?;
        keep_early(conn, &changes.early).await?;
        keep_unmatched(conn, &changes.unmatched).await?;
        forget_unmatched(conn, &changes.matched).await?;
        // The new bookings' events, then those of the transitions that applied.
        let booked: Vec<_> = changes.booked_events().collect();
        let moved_events = changes
            .transitions
            .iter()
            .zip(&moved)
            .filter(|(_, m)| **m)
            .map(|(t, _)| &t.event);
        self.tx.publish(booked.iter().chain(moved_events)).await?;
        Ok(moved)
    }

    async fn commit(self: Box<Self>) -> anyhow::Result<()> {
        self.tx.commit().await
    }
}

async fn insert_booking(conn: &mut AnyConnection, b: &Booking) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO bookings (id, customer_id, house_id, house_name, house_price, check_in, check_out, \
         status, payment_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(b.id.clone())
    .bind(b.customer_id.clone())
    .bind(b.house_id)
    .bind(b.house_name.clone())
    .bind(b.price)
    .bind(b.stay.check_in().to_string())
    .bind(b.stay.check_out().to_string())
    .bind(b.status.as_str())
    .bind(b.payment_id)
    .bind(time_text(b.created_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes transitions, each only where its booking is still in a status it may leave;
/// returns, in order, whether each was. A booking's n-th transition is written in the
/// n-th round, and each round holds one `UPDATE` per kind of change (same new status,
/// refund flag and cancel time) for all its bookings: a batch of decisions costs one or two
/// statements, whatever its size. (One statement per event made book's consumer the
/// saga's bottleneck on PostgreSQL: docs/performance.md.)
async fn write_transitions(
    conn: &mut AnyConnection,
    transitions: &[Transition],
) -> anyhow::Result<Vec<bool>> {
    let mut moved = vec![false; transitions.len()];
    let mut round_of = Vec::with_capacity(transitions.len());
    let mut seen = std::collections::HashMap::<&str, usize>::new();
    for t in transitions {
        let n = seen.entry(t.book_id.as_str()).or_insert(0);
        round_of.push(*n);
        *n += 1;
    }
    let rounds = round_of.iter().max().map_or(0, |m| m + 1);
    for round in 0..rounds {
        let mut kinds: Vec<&Transition> = Vec::new();
        for (i, t) in transitions.iter().enumerate() {
            if round_of[i] == round && !kinds.iter().any(|k| same_kind(k, t)) {
                kinds.push(t);
            }
        }
        for kind in kinds {
            let ids: Vec<usize> = (0..transitions.len())
                .filter(|&i| round_of[i] == round && same_kind(kind, &transitions[i]))
                .collect();
            let mut done = HashSet::new();
            for chunk in ids.chunks(rows_per_statement(1)) {
                let from = kind
                    .from
                    .iter()
                    .map(|s| format!("'{}'", s.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql = format!(
                    "UPDATE bookings SET status = $1, refund_pending = $2, book_cancel_date = COALESCE($3, book_cancel_date) \
                     WHERE status IN ({from}) AND id IN ({}) RETURNING id",
                    placeholders(4, chunk.len())
                );
                let mut q = sqlx::query_scalar::<_, String>(&sql)
                    .bind(kind.to.as_str())
                    .bind(i64::from(kind.refund_due))
                    .bind(kind.cancelled_at.map(time_text));
                for &i in chunk {
                    q = q.bind(transitions[i].book_id.clone());
                }
                done.extend(q.fetch_all(&mut *conn).await?);
            }
            for i in ids {
                moved[i] = done.contains(&transitions[i].book_id);
            }
        }
    }
    Ok(moved)
}

fn same_kind(a: &Transition, b: &Transition) -> bool {
    a.to == b.to
        && a.from == b.from
        && a.refund_due == b.refund_due
        && a.cancelled_at == b.cancelled_at
}

/// Forgets the unmatched payments of bookings that committed.
async fn forget_unmatched(conn: &mut AnyConnection, ids: &[String]) -> anyhow::Result<()> {
    for chunk in ids.chunks(rows_per_statement(1)) {
        let sql = format!(
            "DELETE FROM unmatched_payments WHERE book_id IN ({})",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id.clone());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

//! The view on SQLite or PostgreSQL. Each event is one small update of its booking's row
//! (created on first sight, whatever event comes first), committed with its inbox row; a
//! batch of events commits in one transaction.
//! Columns are owned by the context that produces them, and each producer's events of a
//! booking arrive in order on the booking's partition, so no update can undo a later one.

use async_trait::async_trait;
use events::{DomainEvent, EventKey, Stay};
use platform::consumer::claim;
use platform::db::{now_text, time_text, Db};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::domain::models::{Availability, BookingView};
use crate::domain::ports::{Applied, ViewRepository};

const COLUMNS: &str = "book_id, customer_id, house_id, house_name, house_price, check_in, check_out, book_status, \
                       payment_id, payment_status, house_status, reason, paid_at, refunded_at, book_cancel_date";

/// The view in the service's own database.
#[derive(Clone, Debug)]
pub struct SqlView {
    db: Db,
}

impl SqlView {
    /// A view over a database.
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn row(r: &AnyRow) -> anyhow::Result<BookingView> {
    let date = |c: &str| -> anyhow::Result<Option<chrono::NaiveDate>> {
        Ok(r.try_get::<Option<String>, _>(c)?
            .as_deref()
            .map(events::parse_date)
            .transpose()?)
    };
    Ok(BookingView {
        book_id: r.try_get("book_id")?,
        customer_id: r.try_get("customer_id")?,
        house_id: r.try_get("house_id")?,
        house_name: r.try_get("house_name")?,
        house_price: r.try_get("house_price")?,
        check_in: date("check_in")?,
        check_out: date("check_out")?,
        book_status: r.try_get("book_status")?,
        payment_id: r.try_get("payment_id")?,
        payment_status: r.try_get("payment_status")?,
        house_status: r.try_get("house_status")?,
        reason: r.try_get("reason")?,
        paid_at: r.try_get("paid_at")?,
        refunded_at: r.try_get("refunded_at")?,
        book_cancel_date: r.try_get("book_cancel_date")?,
    })
}

/// Runs `UPDATE mypages SET {set} WHERE book_id = $1` with `binds` as `$2…`, creating the
/// row first if this is the booking's first event.
async fn update(
    tx: &mut Transaction<'static, Any>,
    book_id: &str,
    set: &str,
    binds: Vec<Bind>,
) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO mypages (book_id, updated_at) VALUES ($1, $2) ON CONFLICT (book_id) DO NOTHING")
        .bind(book_id.to_owned())
        .bind(now_text())
        .execute(&mut **tx)
        .await?;
    let n = binds.len();
    let sql = format!(
        "UPDATE mypages SET {set}, updated_at = ${} WHERE book_id = $1",
        n + 2
    );
    let mut q = sqlx::query(&sql).bind(book_id.to_owned());
    for b in binds {
        q = match b {
            Bind::Text(t) => q.bind(t),
            Bind::Int(i) => q.bind(i),
        };
    }
    q.bind(now_text()).execute(&mut **tx).await?;
    Ok(())
}

enum Bind {
    Text(String),
    Int(i64),
}

fn t(s: impl ToString) -> Bind {
    Bind::Text(s.to_string())
}

/// Folds one event into the view inside the caller's transaction.
async fn fold(tx: &mut Transaction<'static, Any>, event: &DomainEvent) -> anyhow::Result<()> {
    match event {
        DomainEvent::HouseRegistered(h) => {
            sqlx::query(
                "INSERT INTO houses (house_id, house_name, house_price) VALUES ($1, $2, $3) ON CONFLICT (house_id) \
                 DO UPDATE SET house_name = excluded.house_name, house_price = excluded.house_price",
            )
            .bind(h.house_id)
            .bind(h.house_name.clone())
            .bind(h.house_price)
            .execute(&mut **tx)
            .await?;
        }
        DomainEvent::Booked(b) => {
            update(
                tx,
                &b.book_id,
                "customer_id = $2, house_id = $3, house_name = $4, house_price = $5, check_in = $6, \
                 check_out = $7, payment_id = $8, book_status = COALESCE(book_status, 'BOOKED')",
                vec![
                    t(&b.customer_id),
                    Bind::Int(b.house_id),
                    t(&b.house_name),
                    Bind::Int(b.house_price),
                    t(b.check_in),
                    t(b.check_out),
                    Bind::Int(b.payment_id),
                ],
            )
            .await?;
        }
        DomainEvent::BookConfirmed(b) => {
            update(tx, &b.book_id, "book_status = $2", vec![t("CONFIRMED")]).await?;
        }
        DomainEvent::BookRejected(b) => {
            update(
                tx,
                &b.book_id,
                "book_status = $2, reason = $3",
                vec![t("REJECTED"), t(&b.reason)],
            )
            .await?;
        }
        DomainEvent::BookCanceled(b) => {
            let at = time_text(b.book_cancel_date);
            update(
                tx,
                &b.book_id,
                "book_status = $2, book_cancel_date = $3",
                vec![t("BOOK_CANCELED"), t(at)],
            )
            .await?;
        }
        DomainEvent::Paid(p) => {
            update(
                tx,
                &p.book_id,
                "customer_id = COALESCE(customer_id, $2), house_id = COALESCE(house_id, $3), \
                 house_price = COALESCE(house_price, $4), check_in = COALESCE(check_in, $5), \
                 check_out = COALESCE(check_out, $6), payment_id = $7, \
                 payment_status = COALESCE(payment_status, 'PAID'), paid_at = $8",
                vec![
                    t(&p.customer_id),
                    Bind::Int(p.house_id),
                    Bind::Int(p.house_price),
                    t(p.check_in),
                    t(p.check_out),
                    Bind::Int(p.payment_id),
                    t(time_text(p.payment_date)),
                ],
            )
            .await?;
        }
        DomainEvent::PaymentCanceled(p) => {
            let at = time_text(p.payment_cancel_date);
            update(
                tx,
                &p.book_id,
                "payment_status = $2, refunded_at = $3",
                vec![t("PAYMENT_CANCELED"), t(at)],
            )
            .await?;
        }
        DomainEvent::HouseRented(h) => {
            update(tx, &h.book_id, "house_status = $2", vec![t("RENTED")]).await?;
            let stay = Stay::new(h.check_in, h.check_out)?;
            for night in stay.each_night() {
                sqlx::query(
                    "INSERT INTO house_nights (house_id, night, book_id) VALUES ($1, $2, $3) \
                     ON CONFLICT (house_id, night) DO UPDATE SET book_id = excluded.book_id",
                )
                .bind(h.house_id)
                .bind(night.to_string())
                .bind(h.book_id.clone())
                .execute(&mut **tx)
                .await?;
            }
        }
        DomainEvent::HouseRentRejected(h) => {
            update(
                tx,
                &h.book_id,
                "house_status = $2, reason = $3",
                vec![t("REJECTED"), t(&h.reason)],
            )
            .await?;
        }
        DomainEvent::HouseRentCanceled(h) => {
            update(tx, &h.book_id, "house_status = $2", vec![t("RELEASED")]).await?;
            sqlx::query("DELETE FROM house_nights WHERE book_id = $1")
                .bind(h.book_id.clone())
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

#[async_trait]
impl ViewRepository for SqlView {
    async fn apply_all(&self, events: &[(EventKey, DomainEvent)]) -> anyhow::Result<Vec<Applied>> {
        let mut tx = self.db.begin().await?;
        let mut applied = Vec::with_capacity(events.len());
        for (key, event) in events {
            if claim(&mut tx, key).await? {
                fold(&mut tx, event).await?;
                applied.push(Applied::Now);
            } else {
                applied.push(Applied::Duplicate);
            }
        }
        tx.commit().await?;
        Ok(applied)
    }

    async fn get(&self, book_id: &str) -> anyhow::Result<Option<BookingView>> {
        let sql = format!("SELECT {COLUMNS} FROM mypages WHERE book_id = $1");
        sqlx::query(&sql)
            .bind(book_id.to_owned())
            .fetch_optional(self.db.pool())
            .await?
            .as_ref()
            .map(row)
            .transpose()
    }

    async fn list(
        &self,
        customer: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> anyhow::Result<Vec<BookingView>> {
        let select = format!("SELECT {COLUMNS} FROM mypages");
        let rows = self
            .db
            .page(&select, "customer_id", customer, "book_id", limit, offset)
            .await?;
        rows.iter().map(row).collect()
    }

    async fn availability(
        &self,
        house_id: i64,
        stay: &Stay,
    ) -> anyhow::Result<Option<Availability>> {
        let known = sqlx::query("SELECT 1 FROM houses WHERE house_id = $1")
            .bind(house_id)
            .fetch_optional(self.db.pool())
            .await?;
        if known.is_none() {
            return Ok(None);
        }
        let nights: Vec<String> = sqlx::query_scalar(
            "SELECT night FROM house_nights WHERE house_id = $1 AND night >= $2 AND night < $3 ORDER BY night",
        )
        .bind(house_id)
        .bind(stay.check_in().to_string())
        .bind(stay.check_out().to_string())
        .fetch_all(self.db.pool())
        .await?;
        let taken = nights
            .iter()
            .map(|n| events::parse_date(n))
            .collect::<Result<_, _>>()?;
        Ok(Some(Availability { house_id, taken }))
    }

    async fn clear(&self) -> anyhow::Result<()> {
        let mut tx = self.db.begin().await?;
        for table in ["mypages", "house_nights", "houses", "inbox"] {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

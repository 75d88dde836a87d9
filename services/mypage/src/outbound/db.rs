//! The view on SQLite or PostgreSQL: reads, and units of work that store what the view's
//! rules (`domain::view`) made of a batch — whole rows, houses, nights — with its inbox
//! rows in one transaction, in a few statements whatever the batch's size.

use async_trait::async_trait;
use events::{EventKey, Stay};
use platform::consumer::claim_all;
use platform::db::{now_text, placeholders, rows_per_statement, values, Backend, Db};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Row, Transaction};

use crate::domain::models::{Availability, BookingView};
use crate::domain::ports::{ViewRepository, ViewUnit};
use crate::domain::view::{Changes, NightChange};

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

#[async_trait]
impl ViewRepository for SqlView {
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
        order: platform::http::Order,
    ) -> anyhow::Result<Vec<BookingView>> {
        let select = format!("SELECT {COLUMNS} FROM mypages");
        let rows = self
            .db
            .page(
                &select,
                "customer_id",
                customer,
                &order.sql("book_id"),
                limit,
                offset,
            )
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

    async fn begin(&self) -> anyhow::Result<Box<dyn ViewUnit>> {
        Ok(Box::new(SqlUnit {
            tx: self.db.begin().await?,
            backend: self.db.backend(),
        }))
    }
}

/// One transaction over the view's tables.
struct SqlUnit {
    tx: Transaction<'static, Any>,
    backend: Backend,
}

#[async_trait]
impl ViewUnit for SqlUnit {
    async fn claim_events(&mut self, keys: &[&EventKey]) -> anyhow::Result<Vec<bool>> {
        Ok(claim_all(&mut self.tx, keys).await?)
    }

    /// On PostgreSQL the rows are locked until the unit ends (created first where
    /// missing, and locked in id order): a row is read, folded and written whole, so two
    /// replicas folding events of one booking at once (only in a rebalance: a booking's
    /// events reach one consumer) must take turns, or one would write over the other's.
    /// SQLite runs one writer at a time.
    async fn rows(&mut self, book_ids: &[&str]) -> anyhow::Result<Vec<BookingView>> {
        let mut unique = book_ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let lock = self.backend == Backend::Postgres;
        if lock {
            let now = now_text();
            for chunk in unique.chunks(rows_per_statement(2)) {
                let sql = format!(
                    "INSERT INTO mypages (book_id, updated_at) VALUES {} ON CONFLICT (book_id) DO NOTHING",
                    values(chunk.len(), 2)
                );
                let mut q = sqlx::query(&sql);
                for id in chunk {
                    q = q.bind((*id).to_owned()).bind(now.clone());
                }
                q.execute(&mut *self.tx).await?;
            }
        }
        let mut found = Vec::new();
        for chunk in unique.chunks(rows_per_statement(1)) {
            let sql = format!(
                "SELECT {COLUMNS} FROM mypages WHERE book_id IN ({}) ORDER BY book_id{}",
                placeholders(1, chunk.len()),
                if lock { " FOR UPDATE" } else { "" }
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind((*id).to_owned());
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                found.push(row(&r)?);
            }
        }
        Ok(found)
    }

    /// One statement for the rows, one per run of held nights and per freed booking, one
    /// per house registered.
    async fn save(&mut self, changes: &Changes) -> anyhow::Result<()> {
        let conn = &mut *self.tx;
        for h in &changes.houses {
            sqlx::query(
                "INSERT INTO houses (house_id, house_name, house_price) VALUES ($1, $2, $3) ON CONFLICT (house_id) \
                 DO UPDATE SET house_name = excluded.house_name, house_price = excluded.house_price",
            )
            .bind(h.house_id)
            .bind(h.name.clone())
            .bind(h.price)
            .execute(&mut *conn)
            .await?;
        }
        write_rows(conn, &changes.rows).await?;
        // Runs of holds in one statement each, a free between them in its own, in order.
        let mut run: Vec<(i64, String, String)> = Vec::new();
        for change in &changes.nights {
            match change {
                NightChange::Hold {
                    house_id,
                    night,
                    book_id,
                } => run.push((*house_id, night.to_string(), book_id.clone())),
                NightChange::Free { book_id } => {
                    hold(conn, std::mem::take(&mut run)).await?;
                    sqlx::query("DELETE FROM house_nights WHERE book_id = $1")
                        .bind(book_id.clone())
                        .execute(&mut *conn)
                        .await?;
                }
            }
        }
        hold(conn, run).await
    }

    async fn commit(self: Box<Self>) -> anyhow::Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

const ROW_COLUMNS: usize = 16;

/// Writes whole rows, inserted or replaced, in one statement per
/// [`rows_per_statement`].
async fn write_rows(conn: &mut AnyConnection, rows: &[BookingView]) -> anyhow::Result<()> {
    let now = now_text();
    for chunk in rows.chunks(rows_per_statement(ROW_COLUMNS)) {
        let updates = COLUMNS
            .split(", ")
            .filter(|c| *c != "book_id")
            .chain(["updated_at"])
            .map(|c| format!("{c} = excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO mypages ({COLUMNS}, updated_at) VALUES {} ON CONFLICT (book_id) DO UPDATE SET {updates}",
            values(chunk.len(), ROW_COLUMNS)
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(r.book_id.clone())
                .bind(r.customer_id.clone())
                .bind(r.house_id)
                .bind(r.house_name.clone())
                .bind(r.house_price)
                .bind(r.check_in.map(|d| d.to_string()))
                .bind(r.check_out.map(|d| d.to_string()))
                .bind(r.book_status.clone())
                .bind(r.payment_id)
                .bind(r.payment_status.clone())
                .bind(r.house_status.clone())
                .bind(r.reason.clone())
                .bind(r.paid_at.clone())
                .bind(r.refunded_at.clone())
                .bind(r.book_cancel_date.clone())
                .bind(now.clone());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Holds nights, replacing whoever held them; the last hold of a night in one run wins.
async fn hold(conn: &mut AnyConnection, run: Vec<(i64, String, String)>) -> anyhow::Result<()> {
    let mut last = std::collections::BTreeMap::new();
    for (house_id, night, book_id) in run {
        last.insert((house_id, night), book_id);
    }
    let nights: Vec<_> = last.into_iter().collect();
    for chunk in nights.chunks(rows_per_statement(3)) {
        let sql = format!(
            "INSERT INTO house_nights (house_id, night, book_id) VALUES {} \
             ON CONFLICT (house_id, night) DO UPDATE SET book_id = excluded.book_id",
            values(chunk.len(), 3)
        );
        let mut q = sqlx::query(&sql);
        for ((house_id, night), book_id) in chunk {
            q = q.bind(*house_id).bind(night.clone()).bind(book_id.clone());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

//! The payment repository on SQLite or PostgreSQL: reads, and units of work that store
//! what the aggregate decided with its outbox event in one transaction. The unique
//! `book_id` makes paying twice impossible even when two identical requests race.

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use events::{DomainEvent, Stay};
use platform::db::{is_unique_violation, parse_time as time, time_text as text, Db};
use platform::outbox::{Outbox, OutboxTx};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::domain::models::{NewPayment, Payment, PaymentStatus};
use crate::domain::ports::{PaymentFilter, PaymentKey, PaymentRepository, PaymentUnit};

const COLUMNS: &str = "id, book_id, house_id, customer_id, house_price, check_in, check_out, \
                       status, payment_date, payment_cancel_date";

/// Payments in the service's own database.
#[derive(Clone, Debug)]
pub struct SqlPayments {
    db: Db,
    outbox: Outbox,
}

impl SqlPayments {
    /// A repository over a database and its outbox.
    pub fn new(db: Db, outbox: Outbox) -> Self {
        Self { db, outbox }
    }
}

fn from_row(row: &AnyRow) -> anyhow::Result<Payment> {
    let status: String = row.try_get("status")?;
    let cancel: Option<String> = row.try_get("payment_cancel_date")?;
    let check_in = events::parse_date(&row.try_get::<String, _>("check_in")?)?;
    let check_out = events::parse_date(&row.try_get::<String, _>("check_out")?)?;
    Ok(Payment {
        id: row.try_get("id")?,
        book_id: row.try_get("book_id")?,
        house_id: row.try_get("house_id")?,
        customer_id: row.try_get("customer_id")?,
        amount: row.try_get("house_price")?,
        stay: Stay::new(check_in, check_out)?,
        status: PaymentStatus::parse(&status).context("unknown status in the database")?,
        payment_date: time(&row.try_get::<String, _>("payment_date")?)?,
        payment_cancel_date: cancel.as_deref().map(time).transpose()?,
    })
}

async fn find(conn: &mut AnyConnection, key: PaymentKey<'_>) -> anyhow::Result<Option<Payment>> {
    let column = match key {
        PaymentKey::Id(_) => "id",
        PaymentKey::Book(_) => "book_id",
    };
    let sql = format!("SELECT {COLUMNS} FROM payments WHERE {column} = $1");
    let q = sqlx::query(&sql);
    let q = match key {
        PaymentKey::Id(id) => q.bind(id),
        PaymentKey::Book(b) => q.bind(b.to_owned()),
    };
    q.fetch_optional(conn)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

#[async_trait]
impl PaymentRepository for SqlPayments {
    async fn get(&self, key: PaymentKey<'_>) -> anyhow::Result<Option<Payment>> {
        let mut conn = self.db.pool().acquire().await?;
        find(&mut conn, key).await
    }

    async fn list(&self, filter: &PaymentFilter) -> anyhow::Result<Vec<Payment>> {
        let mut clauses = Vec::new();
        let mut binds = Vec::new();
        if let Some(c) = &filter.customer_id {
            binds.push(c.clone());
            clauses.push(format!("customer_id = ${}", binds.len()));
        }
        if let Some(b) = &filter.book_id {
            binds.push(b.clone());
            clauses.push(format!("book_id = ${}", binds.len()));
        }
        let filter_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let n = binds.len();
        let sql = format!(
            "SELECT {COLUMNS} FROM payments {filter_sql} ORDER BY {} LIMIT ${} OFFSET ${}",
            filter.order.sql("id"),
            n + 1,
            n + 2
        );
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(b);
        }
        let rows = q
            .bind(filter.limit)
            .bind(filter.offset)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(from_row).collect()
    }

    async fn begin(&self) -> anyhow::Result<Box<dyn PaymentUnit>> {
        Ok(Box::new(SqlUnit {
            tx: OutboxTx::begin(&self.db, &self.outbox).await?,
        }))
    }
}

/// One transaction over the payments table.
struct SqlUnit {
    tx: OutboxTx,
}

#[async_trait]
impl PaymentUnit for SqlUnit {
    async fn payment(&mut self, key: PaymentKey<'_>) -> anyhow::Result<Option<Payment>> {
        find(self.tx.conn(), key).await
    }

    async fn insert(&mut self, new: &NewPayment, at: DateTime<Utc>) -> anyhow::Result<Option<i64>> {
        let inserted = sqlx::query(
            "INSERT INTO payments (book_id, house_id, customer_id, house_price, check_in, check_out, \
             status, payment_date) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(new.book_id.as_str().to_owned())
        .bind(new.house_id)
        .bind(new.customer_id.clone())
        .bind(new.amount.get())
        .bind(new.stay.check_in().to_string())
        .bind(new.stay.check_out().to_string())
        .bind(PaymentStatus::Paid.as_str())
        .bind(text(at))
        .fetch_one(self.tx.conn())
        .await;
        match inserted {
            Ok(row) => Ok(Some(row.try_get("id")?)),
            Err(e) if is_unique_violation(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn refund(&mut self, refunded: &Payment) -> anyhow::Result<bool> {
        let changed = sqlx::query(
            "UPDATE payments SET status = $1, payment_cancel_date = $2 WHERE id = $3 AND status = $4",
        )
        .bind(refunded.status.as_str())
        .bind(refunded.payment_cancel_date.map(text))
        .bind(refunded.id)
        .bind(PaymentStatus::Paid.as_str())
        .execute(self.tx.conn())
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    async fn publish(&mut self, events: &[DomainEvent]) -> anyhow::Result<()> {
        self.tx.publish(events).await
    }

    async fn commit(self: Box<Self>) -> anyhow::Result<()> {
        self.tx.commit().await
    }
}

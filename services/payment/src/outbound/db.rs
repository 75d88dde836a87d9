//! The payment repository on SQLite or PostgreSQL. Every write commits the row change and
//! its outbox event in one transaction; the unique `book_id` makes paying twice impossible
//! even when two identical requests race.

use anyhow::Context as _;
use async_trait::async_trait;
use events::{Paid, PaymentCanceled, Stay};
use platform::db::{is_unique_violation, now, parse_time as time, time_text as text, Db};
use platform::outbox::Outbox;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::domain::models::{NewPayment, Payment, PaymentStatus};
use crate::domain::ports::{
    CancelPaymentError, CreatePaymentError, Outcome, PaymentFilter, PaymentRepository,
};

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

async fn find(
    conn: &mut AnyConnection,
    column: &str,
    value: Key<'_>,
) -> anyhow::Result<Option<Payment>> {
    let sql = format!("SELECT {COLUMNS} FROM payments WHERE {column} = $1");
    let q = sqlx::query(&sql);
    let q = match value {
        Key::Id(id) => q.bind(id),
        Key::Book(b) => q.bind(b.to_owned()),
    };
    q.fetch_optional(conn)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

#[derive(Clone, Copy)]
enum Key<'a> {
    Id(i64),
    Book(&'a str),
}

impl SqlPayments {
    async fn cancel_where(&self, key: Key<'_>) -> Result<(Payment, Outcome), CancelPaymentError> {
        let (column, shown) = match key {
            Key::Id(id) => ("id", id.to_string()),
            Key::Book(b) => ("book_id", b.to_owned()),
        };
        let mut tx = self.db.begin().await.map_err(anyhow::Error::from)?;
        let Some(mut payment) = find(&mut tx, column, key).await? else {
            return Err(CancelPaymentError::NotFound(shown));
        };
        if payment.status == PaymentStatus::PaymentCanceled {
            return Ok((payment, Outcome::AlreadyDone));
        }
        let now = now();
        let changed = sqlx::query(
            "UPDATE payments SET status = 'PAYMENT_CANCELED', payment_cancel_date = $1 \
             WHERE id = $2 AND status = 'PAID'",
        )
        .bind(text(now))
        .bind(payment.id)
        .execute(&mut *tx)
        .await
        .map_err(anyhow::Error::from)?
        .rows_affected();
        if changed == 0 {
            // A concurrent cancel won; report what it stored.
            drop(tx);
            let mut conn = self
                .db
                .pool()
                .acquire()
                .await
                .map_err(anyhow::Error::from)?;
            let p = find(&mut conn, column, key)
                .await?
                .context("payment vanished")?;
            return Ok((p, Outcome::AlreadyDone));
        }
        payment.status = PaymentStatus::PaymentCanceled;
        payment.payment_cancel_date = Some(now);
        let event = PaymentCanceled {
            payment_id: payment.id,
            book_id: payment.book_id.clone(),
            house_id: payment.house_id,
            house_price: payment.amount,
            payment_cancel_date: now,
        };
        self.outbox.enqueue(&mut tx, &event).await?;
        tx.commit().await.map_err(anyhow::Error::from)?;
        self.outbox.notify();
        Ok((payment, Outcome::Done))
    }
}

#[async_trait]
impl PaymentRepository for SqlPayments {
    async fn create(&self, new: &NewPayment) -> Result<(Payment, Outcome), CreatePaymentError> {
        let book = new.book_id.as_str();
        let mut tx = self.db.begin().await.map_err(anyhow::Error::from)?;
        if let Some(existing) = find(&mut tx, "book_id", Key::Book(book)).await? {
            return Ok((existing, Outcome::AlreadyDone));
        }
        let now = now();
        let inserted = sqlx::query(
            "INSERT INTO payments (book_id, house_id, customer_id, house_price, check_in, check_out, \
             status, payment_date) VALUES ($1, $2, $3, $4, $5, $6, 'PAID', $7) RETURNING id",
        )
        .bind(book.to_owned())
        .bind(new.house_id)
        .bind(new.customer_id.clone())
        .bind(new.amount.get())
        .bind(new.stay.check_in().to_string())
        .bind(new.stay.check_out().to_string())
        .bind(text(now))
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match inserted {
            Ok(row) => row.try_get("id").map_err(anyhow::Error::from)?,
            Err(e) if is_unique_violation(&e) => {
                // The same booking raced us and won: answer with its payment.
                drop(tx);
                let mut conn = self
                    .db
                    .pool()
                    .acquire()
                    .await
                    .map_err(anyhow::Error::from)?;
                let p = find(&mut conn, "book_id", Key::Book(book))
                    .await?
                    .context("payment vanished")?;
                return Ok((p, Outcome::AlreadyDone));
            }
            Err(e) => return Err(anyhow::Error::from(e).into()),
        };
        let payment = Payment {
            id,
            book_id: book.to_owned(),
            house_id: new.house_id,
            customer_id: new.customer_id.clone(),
            amount: new.amount.get(),
            stay: new.stay,
            status: PaymentStatus::Paid,
            payment_date: now,
            payment_cancel_date: None,
        };
        let event = Paid {
            payment_id: id,
            book_id: payment.book_id.clone(),
            house_id: payment.house_id,
            customer_id: payment.customer_id.clone(),
            house_price: payment.amount,
            check_in: payment.stay.check_in(),
            check_out: payment.stay.check_out(),
            payment_date: now,
        };
        self.outbox.enqueue(&mut tx, &event).await?;
        tx.commit().await.map_err(anyhow::Error::from)?;
        self.outbox.notify();
        Ok((payment, Outcome::Done))
    }

    async fn cancel(&self, id: i64) -> Result<(Payment, Outcome), CancelPaymentError> {
        self.cancel_where(Key::Id(id)).await
    }

    async fn cancel_by_book(
        &self,
        book_id: &str,
    ) -> Result<(Payment, Outcome), CancelPaymentError> {
        self.cancel_where(Key::Book(book_id)).await
    }

    async fn get(&self, id: i64) -> anyhow::Result<Option<Payment>> {
        let mut conn = self.db.pool().acquire().await?;
        find(&mut conn, "id", Key::Id(id)).await
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
            "SELECT {COLUMNS} FROM payments {filter_sql} ORDER BY id LIMIT ${} OFFSET ${}",
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
}

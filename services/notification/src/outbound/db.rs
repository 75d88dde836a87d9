//! Messages and booking owners on SQLite or PostgreSQL: reads, and units of work that
//! store what the rules made of a batch (`domain::Batch`) with its inbox rows in one
//! transaction, in a few statements whatever the batch's size.

use std::collections::HashMap;

use async_trait::async_trait;
use events::EventKey;
use platform::consumer::claim_all;
use platform::db::{placeholders, rows_per_statement, values, Db};
use platform::http::Order;
use sqlx::{Any, Row, Transaction};

use crate::domain::ports::{NotificationStore, NotificationUnit};
use crate::domain::{Changes, Cursor, Notification};

/// The service's own database.
#[derive(Clone, Debug)]
pub struct SqlNotifications {
    db: Db,
}

impl SqlNotifications {
    /// A store over a database.
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl NotificationStore for SqlNotifications {
    async fn list(
        &self,
        customer: Option<&str>,
        limit: i64,
        offset: i64,
        order: Order,
    ) -> anyhow::Result<Vec<Notification>> {
        let select = format!("SELECT {COLUMNS} FROM notifications");
        let rows = self
            .db
            .page(
                &select,
                "customer_id",
                customer,
                &order.sql("occurred_at, id"),
                limit,
                offset,
            )
            .await?;
        rows.iter().map(notification).collect()
    }

    async fn feed(
        &self,
        customer: Option<&str>,
        after: &Cursor,
        limit: i64,
    ) -> anyhow::Result<Vec<(Cursor, Notification)>> {
        // Placeholders in order of use: the owner (if any), the cursor, the limit.
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        let mut wheres = Vec::new();
        if customer.is_some() {
            wheres.push(format!("customer_id = {}", next()));
        }
        wheres.push(match after.id {
            None => format!("seq > {}", next()),
            // A row value: both stores read it as a range of the (…, seq, id) index.
            Some(_) => format!("(seq, id) > ({}, {})", next(), next()),
        });
        let sql = format!(
            "SELECT seq, {COLUMNS} FROM notifications WHERE {} ORDER BY seq, id LIMIT {}",
            wheres.join(" AND "),
            next()
        );
        let mut q = sqlx::query(&sql);
        if let Some(c) = customer {
            q = q.bind(c.to_owned());
        }
        q = q.bind(after.seq);
        if let Some(id) = &after.id {
            q = q.bind(id.clone());
        }
        let rows = q.bind(limit).fetch_all(self.db.pool()).await?;
        rows.iter()
            .map(|r| {
                let n = notification(r)?;
                Ok((Cursor::at(r.try_get("seq")?, &n.id), n))
            })
            .collect()
    }

    async fn feed_head(&self) -> anyhow::Result<Cursor> {
        let seq: i64 = sqlx::query_scalar("SELECT last FROM feed_seq WHERE id = 1")
            .fetch_one(self.db.pool())
            .await?;
        Ok(Cursor { seq, id: None })
    }

    async fn begin(&self) -> anyhow::Result<Box<dyn NotificationUnit>> {
        Ok(Box::new(SqlUnit {
            tx: self.db.begin().await?,
        }))
    }
}

const COLUMNS: &str = "id, book_id, customer_id, kind, message, occurred_at";

fn notification(r: &sqlx::any::AnyRow) -> anyhow::Result<Notification> {
    Ok(Notification {
        id: r.try_get("id")?,
        book_id: r.try_get("book_id")?,
        customer_id: r.try_get("customer_id")?,
        kind: r.try_get("kind")?,
        text: r.try_get("message")?,
        occurred_at: r.try_get("occurred_at")?,
    })
}

/// One transaction over the store.
struct SqlUnit {
    tx: Transaction<'static, Any>,
}

#[async_trait]
impl NotificationUnit for SqlUnit {
    async fn claim_events(&mut self, keys: &[&EventKey]) -> anyhow::Result<Vec<bool>> {
        Ok(claim_all(&mut self.tx, keys).await?)
    }

    async fn owners(&mut self, book_ids: &[&str]) -> anyhow::Result<HashMap<String, String>> {
        let mut unique = book_ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let mut found = HashMap::new();
        for chunk in unique.chunks(rows_per_statement(1)) {
            let sql = format!(
                "SELECT book_id, customer_id FROM owners WHERE book_id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind((*id).to_owned());
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                found.insert(r.try_get("book_id")?, r.try_get("customer_id")?);
            }
        }
        Ok(found)
    }

    /// One statement for the feed's number, one for the owners, one for the messages, then
    /// one per owner learnt for the messages stored before it.
    async fn save(&mut self, changes: &Changes) -> anyhow::Result<()> {
        if changes.owners.is_empty() && changes.messages.is_empty() {
            return Ok(());
        }
        let conn = &mut *self.tx;
        // The counter row stays locked until this transaction ends: the next unit's
        // number is taken after this one commits (or rolls back, and this one is unused).
        let seq: i64 =
            sqlx::query_scalar("UPDATE feed_seq SET last = last + 1 WHERE id = 1 RETURNING last")
                .fetch_one(&mut *conn)
                .await?;
        for chunk in changes.owners.chunks(rows_per_statement(2)) {
            let sql = format!(
                "INSERT INTO owners (book_id, customer_id) VALUES {} ON CONFLICT (book_id) DO NOTHING",
                values(chunk.len(), 2)
            );
            let mut q = sqlx::query(&sql);
            for (book_id, customer) in chunk {
                q = q.bind(book_id.clone()).bind(customer.clone());
            }
            q.execute(&mut *conn).await?;
        }
        for chunk in changes.messages.chunks(rows_per_statement(7)) {
            let sql = format!(
                "INSERT INTO notifications (id, book_id, customer_id, kind, message, occurred_at, seq) \
                 VALUES {} ON CONFLICT (id) DO NOTHING",
                values(chunk.len(), 7)
            );
            let mut q = sqlx::query(&sql);
            for m in chunk {
                q = q
                    .bind(m.id.clone())
                    .bind(m.book_id.clone())
                    .bind(m.customer_id.clone())
                    .bind(m.kind.clone())
                    .bind(m.text.clone())
                    .bind(m.occurred_at.clone())
                    .bind(seq);
            }
            q.execute(&mut *conn).await?;
        }
        for (book_id, customer) in &changes.owners {
            // Messages that came before their owner was known (this batch's too) get it now.
            sqlx::query(
                "UPDATE notifications SET customer_id = $2, seq = $3 \
                 WHERE book_id = $1 AND customer_id IS NULL",
            )
            .bind(book_id.clone())
            .bind(customer.clone())
            .bind(seq)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    async fn commit(self: Box<Self>) -> anyhow::Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

//! Messages and booking owners on SQLite or PostgreSQL. A batch of events commits in one
//! transaction, each event with its inbox row.

use async_trait::async_trait;
use platform::consumer::{claim, Handled};
use platform::db::{time_text, Db};
use sqlx::Row;

use crate::domain::ports::{Item, NotificationStore};
use crate::domain::{self, Notification};

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
    async fn apply_all(&self, items: &[Item]) -> anyhow::Result<Vec<Handled>> {
        let mut tx = self.db.begin().await?;
        let mut done = Vec::with_capacity(items.len());
        for (key, at, event) in items {
            if !claim(&mut tx, key).await? {
                done.push(Handled::Duplicate);
                continue;
            }
            if let Some((book_id, customer)) = domain::owner(event) {
                sqlx::query(
                    "INSERT INTO owners (book_id, customer_id) VALUES ($1, $2) ON CONFLICT (book_id) DO NOTHING",
                )
                .bind(book_id.to_owned())
                .bind(customer.to_owned())
                .execute(&mut *tx)
                .await?;
                // Messages that came before their owner was known get it now.
                sqlx::query(
                    "UPDATE notifications SET customer_id = $2 WHERE book_id = $1 AND customer_id IS NULL",
                )
                .bind(book_id.to_owned())
                .bind(customer.to_owned())
                .execute(&mut *tx)
                .await?;
            }
            if let Some(m) = domain::message(event) {
                sqlx::query(
                    "INSERT INTO notifications (id, book_id, customer_id, kind, message, occurred_at) \
                     VALUES ($1, $2, (SELECT customer_id FROM owners WHERE book_id = $2), $3, $4, $5) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(key.event_id.clone())
                .bind(m.book_id)
                .bind(m.kind.to_owned())
                .bind(m.text)
                .bind(time_text(*at))
                .execute(&mut *tx)
                .await?;
            }
            done.push(Handled::Applied);
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn list(
        &self,
        customer: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> anyhow::Result<Vec<Notification>> {
        const COLUMNS: &str = "id, book_id, customer_id, kind, message, occurred_at";
        let select = format!("SELECT {COLUMNS} FROM notifications");
        let rows = self
            .db
            .page(
                &select,
                "customer_id",
                customer,
                "occurred_at, id",
                limit,
                offset,
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Notification {
                    id: r.try_get("id")?,
                    book_id: r.try_get("book_id")?,
                    customer_id: r.try_get("customer_id")?,
                    kind: r.try_get("kind")?,
                    text: r.try_get("message")?,
                    occurred_at: r.try_get("occurred_at")?,
                })
            })
            .collect()
    }
}

//! The house repository on SQLite or PostgreSQL: reads, registration, and units of work
//! that store what the calendar's rules decided (`domain::calendar`) with the inbox rows.
//!
//! Nights are held under the (house, night) primary key. The rules decide from what the
//! unit read; if another replica held one of those nights since, or released a rental to
//! release, the write finds it and the unit fails, storing nothing, and the batch is tried
//! again on fresh state (a booking's events reach one consumer, so only a rebalance or
//! two bookings of the same nights meet here).

use std::collections::HashSet;

use anyhow::Context as _;
use async_trait::async_trait;
use chrono::NaiveDate;
use events::{EventKey, Stay};

use platform::consumer::claim_all;
use platform::db::{now_text, placeholders, rows_per_statement, values, Db};
use platform::outbox::{Outbox, OutboxTx};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Row};

use crate::domain::calendar::{Changes, Ledger, Rental, RentalStatus};
use crate::domain::models::{House, NewHouse, Reservation, ReservedNight};
use crate::domain::ports::{HouseRepository, HouseUnit};

/// Houses in the service's own database.
#[derive(Clone, Debug)]
pub struct SqlHouses {
    db: Db,
    outbox: Outbox,
}

impl SqlHouses {
    /// A repository over a database and its outbox.
    pub fn new(db: Db, outbox: Outbox) -> Self {
        Self { db, outbox }
    }
}

fn house(row: &AnyRow) -> Result<House, sqlx::Error> {
    Ok(House {
        id: row.try_get("id")?,
        name: row.try_get("house_name")?,
        price: row.try_get("house_price")?,
        description: row.try_get("house_description")?,
    })
}

/// `{select} (…keys…)`: the keys found, in one query per [`rows_per_statement`].
async fn in_set<T>(conn: &mut AnyConnection, select: &str, keys: &[T]) -> anyhow::Result<HashSet<T>>
where
    T: Clone + Eq + std::hash::Hash + Send + Sync + Unpin + 'static,
    T: for<'q> sqlx::Encode<'q, Any> + sqlx::Type<Any>,
    (T,): for<'r> sqlx::FromRow<'r, AnyRow>,
{
    let mut found = HashSet::new();
    for chunk in keys.chunks(rows_per_statement(1)) {
        let sql = format!("{select} ({})", placeholders(1, chunk.len()));
        let mut q = sqlx::query_scalar::<_, T>(&sql);
        for k in chunk {
            q = q.bind(k.clone());
        }
        found.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(found)
}

#[async_trait]
impl HouseRepository for SqlHouses {
    async fn register(&self, new: &NewHouse) -> anyhow::Result<House> {
        let mut tx = OutboxTx::begin(&self.db, &self.outbox).await?;
        let row = sqlx::query(
            "INSERT INTO houses (house_name, house_price, house_description, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(new.name.as_str().to_owned())
        .bind(new.price.get())
        .bind(new.description.clone())
        .bind(now_text())
        .fetch_one(tx.conn())
        .await?;
        let house = House {
            id: row.try_get("id")?,
            name: new.name.as_str().to_owned(),
            price: new.price.get(),
            description: new.description.clone(),
        };
        tx.publish(&[house.registered()]).await?;
        tx.commit().await?;
        Ok(house)
    }

    async fn get(&self, id: i64) -> anyhow::Result<Option<House>> {
        let row = sqlx::query(
            "SELECT id, house_name, house_price, house_description FROM houses WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.as_ref().map(house).transpose()?)
    }

    async fn list(
        &self,
        night: NaiveDate,
        limit: i64,
        offset: i64,
        order: platform::http::Order,
    ) -> anyhow::Result<Vec<(House, bool)>> {
        let sql = format!(
            "SELECT h.id, h.house_name, h.house_price, h.house_description, \
             CAST(CASE WHEN EXISTS (SELECT 1 FROM reserved_nights r WHERE r.house_id = h.id AND r.night = $1) \
                  THEN 1 ELSE 0 END AS BIGINT) AS rented \
             FROM houses h ORDER BY {} LIMIT $2 OFFSET $3",
            order.sql("h.id")
        );
        let rows = sqlx::query(&sql)
            .bind(night.to_string())
            .bind(limit)
            .bind(offset)
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((house(r)?, r.try_get::<i64, _>("rented")? == 1)))
            .collect()
    }

    async fn reserved_nights(
        &self,
        house_id: i64,
        from: NaiveDate,
        limit: i64,
    ) -> anyhow::Result<Vec<ReservedNight>> {
        let rows = sqlx::query(
            "SELECT night, book_id FROM reserved_nights WHERE house_id = $1 AND night >= $2 ORDER BY night LIMIT $3",
        )
        .bind(house_id)
        .bind(from.to_string())
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ReservedNight {
                    night: events::parse_date(&r.try_get::<String, _>("night")?)?,
                    book_id: r.try_get("book_id")?,
                })
            })
            .collect()
    }

    async fn begin(&self) -> anyhow::Result<Box<dyn HouseUnit>> {
        Ok(Box::new(SqlUnit {
            tx: OutboxTx::begin(&self.db, &self.outbox).await?,
        }))
    }
}

/// One transaction over the house tables.
struct SqlUnit {
    tx: OutboxTx,
}

#[async_trait]
impl HouseUnit for SqlUnit {
    async fn claim_events(&mut self, keys: &[&EventKey]) -> anyhow::Result<Vec<bool>> {
        Ok(claim_all(self.tx.conn(), keys).await?)
    }

    /// One query each: houses, cancelled bookings, rentals, and the nights held within
    /// the stays.
    async fn ledger(
        &mut self,
        reservations: &[&Reservation],
        releases: &[&str],
    ) -> anyhow::Result<Ledger> {
        let conn = self.tx.conn();
        let reserved: Vec<String> = reservations.iter().map(|r| r.book_id.clone()).collect();
        let houses: Vec<i64> = reservations.iter().map(|r| r.house_id).collect();
        let mut named = reserved.clone();
        named.extend(releases.iter().map(|id| (*id).to_owned()));
        let stays: Vec<(i64, Stay)> = reservations
            .iter()
            .filter_map(|r| r.stay.map(|s| (r.house_id, s)))
            .collect();
        Ok(Ledger {
            houses: in_set(conn, "SELECT id FROM houses WHERE id IN", &houses).await?,
            canceled: in_set(
                conn,
                "SELECT book_id FROM canceled_bookings WHERE book_id IN",
                &reserved,
            )
            .await?,
            rentals: rentals(conn, &named).await?,
            held: held(conn, &stays).await?,
        })
    }

    /// One statement each: cancelled bookings, nights freed, rentals released, new
    /// rentals, nights held, events.
    async fn save(&mut self, changes: &Changes) -> anyhow::Result<()> {
        let conn = self.tx.conn();
        let now = now_text();
        for chunk in changes.canceled.chunks(rows_per_statement(2)) {
            let sql = format!(
                "INSERT INTO canceled_bookings (book_id, canceled_at) VALUES {} ON CONFLICT (book_id) DO NOTHING",
                values(chunk.len(), 2)
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id.clone()).bind(now.clone());
            }
            q.execute(&mut *conn).await?;
        }
        for chunk in changes.free.chunks(rows_per_statement(1)) {
            let sql = format!(
                "DELETE FROM reserved_nights WHERE book_id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id.clone());
            }
            q.execute(&mut *conn).await?;
        }
        let mut released = 0;
        for chunk in changes.released.chunks(rows_per_statement(1)) {
            let sql = format!(
                "UPDATE rentals SET status = 'RELEASED', updated_at = $1 WHERE status = 'RENTED' AND book_id IN ({})",
                placeholders(2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(now.clone());
            for id in chunk {
                q = q.bind(id.clone());
            }
            released += q.execute(&mut *conn).await?.rows_affected();
        }
        anyhow::ensure!(
            released == changes.released.len() as u64,
            "a rental to release was released meanwhile (another replica's batch): trying again"
        );
        for chunk in changes.rentals.chunks(rows_per_statement(7)) {
            let sql = format!(
                "INSERT INTO rentals (book_id, house_id, check_in, check_out, status, reason, updated_at) VALUES {}",
                values(chunk.len(), 7)
            );
            let mut q = sqlx::query(&sql);
            for r in chunk {
                let (check_in, check_out) = r
                    .stay
                    .map(|s| (s.check_in().to_string(), s.check_out().to_string()))
                    .unwrap_or_default();
                q = q
                    .bind(r.book_id.clone())
                    .bind(r.house_id)
                    .bind(check_in)
                    .bind(check_out)
                    .bind(r.status.as_str())
                    .bind(r.reason.clone())
                    .bind(now.clone());
            }
            q.execute(&mut *conn).await?;
        }
        // In (house, night) order: two replicas holding overlapping nights wait on each
        // other in the same order, never in a circle.
        let mut hold: Vec<&(i64, NaiveDate, String)> = changes.hold.iter().collect();
        hold.sort_unstable();
        let mut held = 0;
        for chunk in hold.chunks(rows_per_statement(3)) {
            let sql = format!(
                "INSERT INTO reserved_nights (house_id, night, book_id) VALUES {} ON CONFLICT (house_id, night) DO NOTHING",
                values(chunk.len(), 3)
            );
            let mut q = sqlx::query(&sql);
            for (house_id, night, book_id) in chunk {
                q = q
                    .bind(*house_id)
                    .bind(night.to_string())
                    .bind(book_id.clone());
            }
            held += q.execute(&mut *conn).await?.rows_affected();
        }
        anyhow::ensure!(
            held == changes.hold.len() as u64,
            "a night to hold was taken meanwhile (another replica's batch): trying again"
        );
        self.tx.publish(&changes.events).await?;
        Ok(())
    }

    async fn commit(self: Box<Self>) -> anyhow::Result<()> {
        self.tx.commit().await
    }
}

/// The rentals of the named bookings.
async fn rentals(
    conn: &mut AnyConnection,
    ids: &[String],
) -> anyhow::Result<std::collections::HashMap<String, Rental>> {
    let mut found = std::collections::HashMap::new();
    for chunk in ids.chunks(rows_per_statement(1)) {
        let sql = format!(
            "SELECT book_id, house_id, check_in, check_out, status, reason FROM rentals WHERE book_id IN ({})",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id.clone());
        }
        for row in q.fetch_all(&mut *conn).await? {
            let (check_in, check_out): (String, String) =
                (row.try_get("check_in")?, row.try_get("check_out")?);
            // A rejected impossible stay is stored with empty dates.
            let stay = match (
                events::parse_date(&check_in),
                events::parse_date(&check_out),
            ) {
                (Ok(i), Ok(o)) => Stay::new(i, o).ok(),
                _ => None,
            };
            let status: String = row.try_get("status")?;
            let rental = Rental {
                book_id: row.try_get("book_id")?,
                house_id: row.try_get("house_id")?,
                stay,
                status: RentalStatus::parse(&status)
                    .with_context(|| format!("unknown rental status {status:?} in the database"))?,
                reason: row.try_get("reason")?,
            };
            found.insert(rental.book_id.clone(), rental);
        }
    }
    Ok(found)
}

/// The nights held within the stays, (house, night) → booking.
async fn held(
    conn: &mut AnyConnection,
    stays: &[(i64, Stay)],
) -> anyhow::Result<std::collections::HashMap<(i64, NaiveDate), String>> {
    let mut found = std::collections::HashMap::new();
    for chunk in stays.chunks(rows_per_statement(3)) {
        let ranges = (0..chunk.len())
            .map(|i| {
                format!(
                    "(house_id = ${} AND night >= ${} AND night < ${})",
                    3 * i + 1,
                    3 * i + 2,
                    3 * i + 3
                )
            })
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!("SELECT house_id, night, book_id FROM reserved_nights WHERE {ranges}");
        let mut q = sqlx::query(&sql);
        for (house_id, stay) in chunk {
            q = q
                .bind(*house_id)
                .bind(stay.check_in().to_string())
                .bind(stay.check_out().to_string());
        }
        for row in q.fetch_all(&mut *conn).await? {
            found.insert(
                (
                    row.try_get("house_id")?,
                    events::parse_date(&row.try_get::<String, _>("night")?)?,
                ),
                row.try_get("book_id")?,
            );
        }
    }
    Ok(found)
}

//! The house repository on SQLite or PostgreSQL.
//!
//! Reserving inserts one row per night under the (house, night) primary key with
//! `ON CONFLICT DO NOTHING`; if fewer rows went in than the stay has nights, another
//! booking holds one of them, and this booking's rows are removed before commit — all
//! nights or none. Nights are inserted in date order, so two overlapping reservations
//! always lock in the same order and cannot deadlock.

use async_trait::async_trait;
use chrono::NaiveDate;
use events::{EventKey, HouseRegistered, HouseRentCanceled, HouseRentRejected, HouseRented, Stay};
use std::collections::HashSet;

use platform::consumer::claim_all;
use platform::db::{now_text, placeholders, rows_per_statement, values, Db};
use platform::outbox::Outbox;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::domain::models::{
    House, NewHouse, RejectReason, ReleaseOutcome, Reservation, ReserveOutcome, ReservedNight,
};
use crate::domain::ports::{Applied, Command, Decided, HouseRepository};

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

    async fn commit(&self, tx: Transaction<'static, Any>, wrote_event: bool) -> anyhow::Result<()> {
        tx.commit().await?;
        if wrote_event {
            self.outbox.notify();
        }
        Ok(())
    }

    /// Holds a booking's nights or refuses, inside the caller's transaction, given what
    /// the batch already knows ([`Known`]); the rental row and the event join `pending`.
    /// One statement for a stay that can be held (its nights), none for one that cannot.
    async fn reserve_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        known: &mut Known,
        pending: &mut Pending,
        r: &Reservation,
    ) -> anyhow::Result<ReserveOutcome> {
        if known.canceled.contains(&r.book_id) {
            return Ok(ReserveOutcome::BookingCanceled);
        }
        if !known.decided.insert(r.book_id.clone()) {
            return Ok(ReserveOutcome::AlreadyDecided);
        }
        let Some(stay) = r.stay else {
            return pending.reject(r, RejectReason::InvalidStay);
        };
        if !known.houses.contains(&r.house_id) {
            return pending.reject(r, RejectReason::UnknownHouse);
        }
        let nights: Vec<String> = stay.each_night().map(|n| n.to_string()).collect();
        let values = (0..nights.len())
            .map(|i| format!("($1, $2, ${})", i + 3))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO reserved_nights (house_id, book_id, night) VALUES {values} \
             ON CONFLICT (house_id, night) DO NOTHING"
        );
        let mut q = sqlx::query(&sql).bind(r.house_id).bind(r.book_id.clone());
        for n in &nights {
            q = q.bind(n.clone());
        }
        let inserted = q.execute(&mut **tx).await?.rows_affected();
        if inserted != nights.len() as u64 {
            sqlx::query("DELETE FROM reserved_nights WHERE book_id = $1")
                .bind(r.book_id.clone())
                .execute(&mut **tx)
                .await?;
            return pending.reject(r, RejectReason::NightsTaken);
        }
        pending.rental(r, Some(stay), "RENTED", None);
        pending.envelopes.push(Outbox::envelope(&HouseRented {
            house_id: r.house_id,
            book_id: r.book_id.clone(),
            check_in: stay.check_in(),
            check_out: stay.check_out(),
        })?);
        Ok(ReserveOutcome::Rented)
    }

    /// Writes the rentals and events `pending` holds, in one statement each.
    async fn flush(
        &self,
        tx: &mut Transaction<'static, Any>,
        pending: &mut Pending,
    ) -> anyhow::Result<()> {
        for chunk in pending.rentals.chunks(rows_per_statement(7)) {
            let values = values(chunk.len(), 7);
            let sql = format!(
                "INSERT INTO rentals (book_id, house_id, check_in, check_out, status, reason, updated_at) VALUES {values}"
            );
            let mut q = sqlx::query(&sql);
            let now = now_text();
            for r in chunk {
                q = q
                    .bind(r.book_id.clone())
                    .bind(r.house_id)
                    .bind(r.check_in.clone())
                    .bind(r.check_out.clone())
                    .bind(r.status)
                    .bind(r.reason.clone())
                    .bind(now.clone());
            }
            q.execute(&mut **tx).await?;
        }
        pending.rentals.clear();
        self.outbox.insert(tx, &pending.envelopes).await?;
        pending.envelopes.clear();
        Ok(())
    }

    /// Releases a booking's nights, inside the caller's transaction.
    async fn release_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        book_id: &str,
    ) -> anyhow::Result<ReleaseOutcome> {
        sqlx::query("INSERT INTO canceled_bookings (book_id, canceled_at) VALUES ($1, $2) ON CONFLICT (book_id) DO NOTHING")
            .bind(book_id.to_owned())
            .bind(now_text())
            .execute(&mut **tx)
            .await?;
        let rental = sqlx::query("SELECT house_id, check_in, check_out FROM rentals WHERE book_id = $1 AND status = 'RENTED'")
            .bind(book_id.to_owned())
            .fetch_optional(&mut **tx)
            .await?;
        let Some(rental) = rental else {
            return Ok(ReleaseOutcome::NothingHeld);
        };
        sqlx::query("DELETE FROM reserved_nights WHERE book_id = $1")
            .bind(book_id.to_owned())
            .execute(&mut **tx)
            .await?;
        sqlx::query("UPDATE rentals SET status = 'RELEASED', updated_at = $1 WHERE book_id = $2")
            .bind(now_text())
            .bind(book_id.to_owned())
            .execute(&mut **tx)
            .await?;
        let event = HouseRentCanceled {
            house_id: rental.try_get("house_id")?,
            book_id: book_id.to_owned(),
            check_in: events::parse_date(&rental.try_get::<String, _>("check_in")?)?,
            check_out: events::parse_date(&rental.try_get::<String, _>("check_out")?)?,
        };
        self.outbox.enqueue(tx, &event).await?;
        Ok(ReleaseOutcome::Released)
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

/// What a batch of commands needs to know before it decides, read in one query each.
struct Known {
    /// Bookings cancelled here (before or within the batch).
    canceled: HashSet<String>,
    /// Bookings with a rental row (decided before or within the batch).
    decided: HashSet<String>,
    /// Houses that exist, of those the batch names.
    houses: HashSet<i64>,
}

impl Known {
    async fn read(
        tx: &mut Transaction<'static, Any>,
        reserves: &[&Reservation],
    ) -> anyhow::Result<Self> {
        let books: Vec<String> = reserves.iter().map(|r| r.book_id.clone()).collect();
        let houses: Vec<i64> = reserves.iter().map(|r| r.house_id).collect();
        Ok(Self {
            canceled: in_set(
                tx,
                "SELECT book_id FROM canceled_bookings WHERE book_id IN",
                &books,
            )
            .await?,
            decided: in_set(tx, "SELECT book_id FROM rentals WHERE book_id IN", &books).await?,
            houses: in_set(tx, "SELECT id FROM houses WHERE id IN", &houses).await?,
        })
    }
}

/// `{select} (…keys…)`: the keys found, in one query per [`rows_per_statement`].
async fn in_set<T>(
    tx: &mut Transaction<'static, Any>,
    select: &str,
    keys: &[T],
) -> anyhow::Result<HashSet<T>>
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
        found.extend(q.fetch_all(&mut **tx).await?);
    }
    Ok(found)
}

/// A rental row to write.
struct PendingRental {
    book_id: String,
    house_id: i64,
    check_in: String,
    check_out: String,
    status: &'static str,
    reason: Option<String>,
}

/// The rentals and events a batch decided, written together ([`SqlHouses::flush`]).
#[derive(Default)]
struct Pending {
    rentals: Vec<PendingRental>,
    envelopes: Vec<events::Envelope>,
}

impl Pending {
    fn rental(
        &mut self,
        r: &Reservation,
        stay: Option<Stay>,
        status: &'static str,
        reason: Option<&str>,
    ) {
        let (check_in, check_out) = stay
            .map(|s| (s.check_in().to_string(), s.check_out().to_string()))
            .unwrap_or_default();
        self.rentals.push(PendingRental {
            book_id: r.book_id.clone(),
            house_id: r.house_id,
            check_in,
            check_out,
            status,
            reason: reason.map(str::to_owned),
        });
    }

    fn reject(&mut self, r: &Reservation, reason: RejectReason) -> anyhow::Result<ReserveOutcome> {
        self.rental(r, r.stay, "REJECTED", Some(reason.as_str()));
        self.envelopes.push(Outbox::envelope(&HouseRentRejected {
            house_id: r.house_id,
            book_id: r.book_id.clone(),
            reason: reason.as_str().to_owned(),
        })?);
        Ok(ReserveOutcome::Rejected(reason))
    }
}

#[async_trait]
impl HouseRepository for SqlHouses {
    async fn register(&self, new: &NewHouse) -> anyhow::Result<House> {
        let mut tx = self.db.begin().await?;
        let row = sqlx::query(
            "INSERT INTO houses (house_name, house_price, house_description, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(new.name.as_str().to_owned())
        .bind(new.price.get())
        .bind(new.description.clone())
        .bind(now_text())
        .fetch_one(&mut *tx)
        .await?;
        let house = House {
            id: row.try_get("id")?,
            name: new.name.as_str().to_owned(),
            price: new.price.get(),
            description: new.description.clone(),
        };
        let event = HouseRegistered {
            house_id: house.id,
            house_name: house.name.clone(),
            house_price: house.price,
        };
        self.outbox.enqueue(&mut tx, &event).await?;
        self.commit(tx, true).await?;
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
    ) -> anyhow::Result<Vec<(House, bool)>> {
        let rows = sqlx::query(
            "SELECT h.id, h.house_name, h.house_price, h.house_description, \
             CAST(CASE WHEN EXISTS (SELECT 1 FROM reserved_nights r WHERE r.house_id = h.id AND r.night = $1) \
                  THEN 1 ELSE 0 END AS BIGINT) AS rented \
             FROM houses h ORDER BY h.id LIMIT $2 OFFSET $3",
        )
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

    /// A batch in few round trips: its inbox rows in one statement, what it needs to know
    /// (cancelled and decided bookings, houses) in one query each, one statement per
    /// stay that can be held, the rentals and events it decided in one each.
    async fn apply_all(
        &self,
        commands: &[(EventKey, Command)],
    ) -> anyhow::Result<Vec<Applied<Decided>>> {
        let mut tx = self.db.begin().await?;
        let keys: Vec<&EventKey> = commands.iter().map(|(k, _)| k).collect();
        let claimed = claim_all(&mut tx, &keys).await?;
        let reserves: Vec<&Reservation> = commands
            .iter()
            .zip(&claimed)
            .filter_map(|((_, c), claimed)| match c {
                Command::Reserve(r) if *claimed => Some(r),
                _ => None,
            })
            .collect();
        let mut known = Known::read(&mut tx, &reserves).await?;
        let mut pending = Pending::default();
        let mut out = Vec::with_capacity(commands.len());
        for ((_, command), claimed) in commands.iter().zip(claimed) {
            if !claimed {
                out.push(Applied::Duplicate);
                continue;
            }
            let decided = match command {
                Command::Reserve(r) => Decided::Reserve(
                    self.reserve_in(&mut tx, &mut known, &mut pending, r)
                        .await?,
                ),
                Command::Release(book_id) => {
                    // What the batch decided so far is in the tables before it is released.
                    self.flush(&mut tx, &mut pending).await?;
                    known.canceled.insert(book_id.clone());
                    Decided::Release(self.release_in(&mut tx, book_id).await?)
                }
            };
            out.push(Applied::Now(decided));
        }
        self.flush(&mut tx, &mut pending).await?;
        // Most applied commands write an event; waking the relay for one that did not
        // costs it one empty look at the outbox.
        let notify = out.iter().any(|a| matches!(a, Applied::Now(_)));
        self.commit(tx, notify).await?;
        Ok(out)
    }
}

//! What the house domain needs from the outside world: its store — reads, and units of
//! work that store what the calendar's rules decide.

use async_trait::async_trait;
use chrono::NaiveDate;
use events::EventKey;

use super::calendar::{Changes, Ledger};
use super::models::{House, NewHouse, ReleaseOutcome, Reservation, ReserveOutcome, ReservedNight};

/// Whether an event was applied now or had been applied before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied<T> {
    /// Applied now, with this result.
    Now(T),
    /// Its key was already in the inbox: nothing changed.
    Duplicate,
}

/// House storage. Each write commits the change, its event and (for consumed events) the
/// inbox row together.
#[async_trait]
pub trait HouseRepository: Send + Sync + 'static {
    /// Stores a house with its `HouseRegistered` event.
    async fn register(&self, new: &NewHouse) -> anyhow::Result<House>;
    /// One house.
    async fn get(&self, id: i64) -> anyhow::Result<Option<House>>;
    /// Houses by id in `order`, with whether each is reserved on `night`.
    async fn list(
        &self,
        night: NaiveDate,
        limit: i64,
        offset: i64,
        order: platform::http::Order,
    ) -> anyhow::Result<Vec<(House, bool)>>;
    /// A house's first `limit` reserved nights from `from` on, in order.
    async fn reserved_nights(
        &self,
        house_id: i64,
        from: NaiveDate,
        limit: i64,
    ) -> anyhow::Result<Vec<ReservedNight>>;
    /// Opens a unit of work: one transaction, committed by [`HouseUnit::commit`] and
    /// rolled back when dropped without it.
    async fn begin(&self) -> anyhow::Result<Box<dyn HouseUnit>>;
}

/// One transaction over the house store. It reads what the calendar's rules need and
/// stores what they decide ([`Changes`]) with the inbox rows; it decides nothing itself.
#[async_trait]
pub trait HouseUnit: Send {
    /// Claims consumed events by key, in order: `false` for one claimed before (a
    /// duplicate, to skip).
    async fn claim_events(&mut self, keys: &[&EventKey]) -> anyhow::Result<Vec<bool>>;
    /// What a batch names ([`Ledger`]): the houses and cancelled bookings of its
    /// reservations, the rentals of all its bookings, the nights held within its stays.
    async fn ledger(
        &mut self,
        reservations: &[&Reservation],
        releases: &[&str],
    ) -> anyhow::Result<Ledger>;
    /// Stores what a batch decided. Fails, storing nothing, if a night to hold was taken
    /// or a rental to release was released since [`Self::ledger`] read them (by another
    /// replica): the batch is then tried again on what is stored by then.
    async fn save(&mut self, changes: &Changes) -> anyhow::Result<()>;
    /// Commits everything saved.
    async fn commit(self: Box<Self>) -> anyhow::Result<()>;
}

/// What an event asks of the house context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A booking was paid: hold its nights (F3).
    Reserve(Reservation),
    /// A booking or its payment was cancelled: release its nights (F6).
    Release(String),
}

/// What a [`Command`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    /// A reservation's outcome.
    Reserve(ReserveOutcome),
    /// A release's outcome.
    Release(ReleaseOutcome),
}

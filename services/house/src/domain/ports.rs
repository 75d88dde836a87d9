//! What the house domain needs from the outside world.

use async_trait::async_trait;
use chrono::NaiveDate;
use events::EventKey;

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
    /// Houses by id, with whether each is reserved on `night`.
    async fn list(
        &self,
        night: NaiveDate,
        limit: i64,
        offset: i64,
    ) -> anyhow::Result<Vec<(House, bool)>>;
    /// A house's first `limit` reserved nights from `from` on, in order.
    async fn reserved_nights(
        &self,
        house_id: i64,
        from: NaiveDate,
        limit: i64,
    ) -> anyhow::Result<Vec<ReservedNight>>;
    /// Carries out commands in order, each with its inbox row and its event, all in one
    /// transaction (all or none). A reservation holds a booking's nights, all or none,
    /// with `HouseRented`, or refuses with `HouseRentRejected`; a release frees them with
    /// `HouseRentCanceled` and remembers the booking as cancelled, so that a late `Paid`
    /// cannot hold them again.
    async fn apply_all(
        &self,
        commands: &[(EventKey, Command)],
    ) -> anyhow::Result<Vec<Applied<Decided>>>;
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

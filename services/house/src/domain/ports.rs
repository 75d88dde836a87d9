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
    /// A house's reserved nights from `from` on.
    async fn reserved_nights(
        &self,
        house_id: i64,
        from: NaiveDate,
    ) -> anyhow::Result<Vec<ReservedNight>>;
    /// Holds a booking's nights, all or none, with `HouseRented` or `HouseRentRejected`.
    async fn reserve(
        &self,
        key: &EventKey,
        r: &Reservation,
    ) -> anyhow::Result<Applied<ReserveOutcome>>;
    /// Releases a booking's nights with `HouseRentCanceled`, and remembers the booking as
    /// cancelled so that a late `Paid` cannot hold them again.
    async fn release(
        &self,
        key: &EventKey,
        book_id: &str,
    ) -> anyhow::Result<Applied<ReleaseOutcome>>;
}

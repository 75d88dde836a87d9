//! The house service: what the inbound adapters (HTTP and events) call. Commands from
//! events go through a unit of work and the calendar's rules ([`super::calendar`]).

use std::sync::Arc;

use chrono::NaiveDate;
use events::EventKey;

use super::calendar;
use super::models::{House, NewHouse, Reservation, ReservedNight};
use super::ports::{Applied, Command, Decided, HouseRepository};

/// Reserved nights in one calendar answer at most (a year's worth), whatever date is
/// asked: the answer and the work behind it stay bounded.
pub const CALENDAR_MAX_NIGHTS: i64 = 366;

/// A house with its calendar as of one date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HouseCalendar {
    /// The house.
    pub house: House,
    /// Whether the asked-for night is reserved.
    pub rented_on_date: bool,
    /// Reserved nights from the asked-for date on.
    pub reserved: Vec<ReservedNight>,
}

/// Registers houses and keeps their calendars.
#[derive(Clone)]
pub struct HouseService {
    repo: Arc<dyn HouseRepository>,
}

impl HouseService {
    /// A service over a repository.
    pub fn new(repo: Arc<dyn HouseRepository>) -> Self {
        Self { repo }
    }

    /// Registers a house (F1).
    #[tracing::instrument(skip(self, new), fields(name = new.name.as_str()))]
    pub async fn register(&self, new: NewHouse) -> anyhow::Result<House> {
        self.repo.register(&new).await
    }

    /// A house and its calendar: its first [`CALENDAR_MAX_NIGHTS`] reserved nights from
    /// `date` on (a client pages on by asking from the day after the last one).
    pub async fn calendar(
        &self,
        id: i64,
        date: NaiveDate,
    ) -> anyhow::Result<Option<HouseCalendar>> {
        let Some(house) = self.repo.get(id).await? else {
            return Ok(None);
        };
        let reserved = self
            .repo
            .reserved_nights(id, date, CALENDAR_MAX_NIGHTS)
            .await?;
        let rented_on_date = reserved.first().is_some_and(|n| n.night == date);
        Ok(Some(HouseCalendar {
            house,
            rented_on_date,
            reserved,
        }))
    }

    /// Houses with whether each is reserved on `date`.
    pub async fn list(
        &self,
        date: NaiveDate,
        limit: i64,
        offset: i64,
        order: platform::http::Order,
    ) -> anyhow::Result<Vec<(House, bool)>> {
        self.repo.list(date, limit, offset, order).await
    }

    /// Carries out what events ask — hold a paid booking's nights or refuse (F3), release
    /// a cancelled one's (F6) — by the calendar's rules ([`calendar::Batch`]), in order,
    /// all in one transaction, each effectively once.
    #[tracing::instrument(skip_all, fields(commands = commands.len()))]
    pub async fn apply_all(
        &self,
        commands: &[(EventKey, Command)],
    ) -> anyhow::Result<Vec<Applied<Decided>>> {
        let mut unit = self.repo.begin().await?;
        let keys: Vec<&EventKey> = commands.iter().map(|(k, _)| k).collect();
        let claimed = unit.claim_events(&keys).await?;
        let fresh = || {
            commands
                .iter()
                .zip(&claimed)
                .filter(|(_, c)| **c)
                .map(|((_, command), _)| command)
        };
        let reservations: Vec<&Reservation> = fresh()
            .filter_map(|c| match c {
                Command::Reserve(r) => Some(r),
                Command::Release(_) => None,
            })
            .collect();
        let releases: Vec<&str> = fresh()
            .filter_map(|c| match c {
                Command::Release(id) => Some(id.as_str()),
                Command::Reserve(_) => None,
            })
            .collect();
        let mut batch = calendar::Batch::new(unit.ledger(&reservations, &releases).await?);
        let out = commands
            .iter()
            .zip(&claimed)
            .map(|((_, command), claimed)| {
                if !claimed {
                    return Applied::Duplicate;
                }
                Applied::Now(match command {
                    Command::Reserve(r) => Decided::Reserve(batch.reserve(r)),
                    Command::Release(id) => Decided::Release(batch.release(id)),
                })
            })
            .collect();
        unit.save(&batch.into_changes()).await?;
        unit.commit().await?;
        Ok(out)
    }
}

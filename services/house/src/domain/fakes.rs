//! An in-memory fake of the house store, for domain tests without a database. It keeps
//! what the SQL adapter keeps and runs one unit of work at a time on a copy
//! (`testkit::fake`).

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use chrono::NaiveDate;
use events::{DomainEvent, EventKey};
use testkit::fake::{FakeStore, Staged};

use super::calendar::{Changes, Ledger, Rental, RentalStatus};
use super::models::{House, NewHouse, Reservation, ReservedNight};
use super::ports::{HouseRepository, HouseUnit};

/// What the house store holds.
#[derive(Debug, Default, Clone)]
pub struct Store {
    /// Houses by id.
    pub houses: BTreeMap<i64, House>,
    /// Bookings cancelled.
    pub canceled: HashSet<String>,
    /// Rentals by booking.
    pub rentals: HashMap<String, Rental>,
    /// Held nights: (house, night) → booking.
    pub held: BTreeMap<(i64, NaiveDate), String>,
    /// Event ids applied.
    pub inbox: HashSet<String>,
    /// Events published, in order.
    pub outbox: Vec<DomainEvent>,
}

/// The house store in memory.
#[derive(Clone, Default)]
pub struct FakeHouses {
    store: FakeStore<Store>,
}

impl FakeHouses {
    /// What it holds now.
    pub async fn snapshot(&self) -> Store {
        self.store.snapshot().await
    }

    /// Takes the events published so far.
    pub async fn take_events(&self) -> Vec<DomainEvent> {
        std::mem::take(&mut self.store.lock().await.outbox)
    }
}

#[async_trait]
impl HouseRepository for FakeHouses {
    async fn register(&self, new: &NewHouse) -> anyhow::Result<House> {
        let mut s = self.store.lock().await;
        let id = s.houses.keys().next_back().map_or(1, |last| last + 1);
        let house = House {
            id,
            name: new.name.as_str().to_owned(),
            price: new.price.get(),
            description: new.description.clone(),
        };
        s.houses.insert(id, house.clone());
        Ok(house)
    }
    async fn get(&self, id: i64) -> anyhow::Result<Option<House>> {
        Ok(self.store.lock().await.houses.get(&id).cloned())
    }
    async fn list(
        &self,
        night: NaiveDate,
        limit: i64,
        offset: i64,
        order: platform::http::Order,
    ) -> anyhow::Result<Vec<(House, bool)>> {
        let s = self.store.lock().await;
        let houses: Box<dyn Iterator<Item = &House>> = match order {
            platform::http::Order::Oldest => Box::new(s.houses.values()),
            platform::http::Order::Newest => Box::new(s.houses.values().rev()),
        };
        Ok(houses
            .skip(usize::try_from(offset)?)
            .take(usize::try_from(limit)?)
            .map(|h| (h.clone(), s.held.contains_key(&(h.id, night))))
            .collect())
    }
    async fn reserved_nights(
        &self,
        house_id: i64,
        from: NaiveDate,
        limit: i64,
    ) -> anyhow::Result<Vec<ReservedNight>> {
        let s = self.store.lock().await;
        Ok(s.held
            .range((house_id, from)..=(house_id, NaiveDate::MAX))
            .take(usize::try_from(limit)?)
            .map(|((_, night), book_id)| ReservedNight {
                night: *night,
                book_id: book_id.clone(),
            })
            .collect())
    }
    async fn begin(&self) -> anyhow::Result<Box<dyn HouseUnit>> {
        Ok(Box::new(FakeUnit {
            staged: self.store.begin().await,
        }))
    }
}

struct FakeUnit {
    staged: Staged<Store>,
}

#[async_trait]
impl HouseUnit for FakeUnit {
    async fn claim_events(&mut self, keys: &[&EventKey]) -> anyhow::Result<Vec<bool>> {
        Ok(keys
            .iter()
            .map(|k| self.staged.inbox.insert(k.event_id.clone()))
            .collect())
    }
    async fn ledger(
        &mut self,
        reservations: &[&Reservation],
        releases: &[&str],
    ) -> anyhow::Result<Ledger> {
        let s = &self.staged;
        let named = reservations
            .iter()
            .map(|r| r.book_id.as_str())
            .chain(releases.iter().copied());
        Ok(Ledger {
            houses: reservations
                .iter()
                .map(|r| r.house_id)
                .filter(|h| s.houses.contains_key(h))
                .collect(),
            canceled: reservations
                .iter()
                .filter(|r| s.canceled.contains(&r.book_id))
                .map(|r| r.book_id.clone())
                .collect(),
            rentals: named
                .filter_map(|id| s.rentals.get(id).map(|r| (id.to_owned(), r.clone())))
                .collect(),
            held: reservations
                .iter()
                .filter_map(|r| r.stay.map(|stay| (r.house_id, stay)))
                .flat_map(|(house, stay)| {
                    stay.each_night()
                        .filter_map(|n| s.held.get(&(house, n)).map(|b| ((house, n), b.clone())))
                        .collect::<Vec<_>>()
                })
                .collect(),
        })
    }
    async fn save(&mut self, changes: &Changes) -> anyhow::Result<()> {
        let s = &mut self.staged;
        s.canceled.extend(changes.canceled.iter().cloned());
        for id in &changes.free {
            s.held.retain(|_, b| b != id);
        }
        for id in &changes.released {
            if let Some(r) = s.rentals.get_mut(id) {
                r.status = RentalStatus::Released;
            }
        }
        for r in &changes.rentals {
            anyhow::ensure!(
                s.rentals.insert(r.book_id.clone(), r.clone()).is_none(),
                "rental {} exists",
                r.book_id
            );
        }
        for (house, night, book_id) in &changes.hold {
            anyhow::ensure!(
                s.held.insert((*house, *night), book_id.clone()).is_none(),
                "night {night} of house {house} held twice"
            );
        }
        s.outbox.extend(changes.events.iter().cloned());
        Ok(())
    }
    async fn commit(self: Box<Self>) -> anyhow::Result<()> {
        self.staged.commit();
        Ok(())
    }
}

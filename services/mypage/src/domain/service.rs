//! The view service: folds events in, answers queries with ownership applied.

use std::sync::Arc;

use events::{DomainEvent, EventKey, Stay};
use platform::auth::Actor;

use super::models::{Availability, BookingView};
use super::ports::{Applied, ViewRepository};
use super::view;

/// Why a row cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// No such row (404).
    #[error("no such booking")]
    NotFound,
    /// Someone else's (403).
    #[error("this booking belongs to someone else")]
    NotYours,
    /// Anything else (500).
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

/// The read side.
#[derive(Clone)]
pub struct ViewService {
    repo: Arc<dyn ViewRepository>,
}

impl ViewService {
    /// A service over its store.
    pub fn new(repo: Arc<dyn ViewRepository>) -> Self {
        Self { repo }
    }

    /// Folds events in by the view's rules ([`view::Fold`]), in order, all or none,
    /// effectively once each.
    pub async fn apply_all(
        &self,
        events: &[(EventKey, DomainEvent)],
    ) -> anyhow::Result<Vec<Applied>> {
        let mut unit = self.repo.begin().await?;
        let keys: Vec<&EventKey> = events.iter().map(|(k, _)| k).collect();
        let claimed = unit.claim_events(&keys).await?;
        let named: Vec<&str> = events
            .iter()
            .zip(&claimed)
            .filter(|(_, c)| **c)
            .filter_map(|((_, e), _)| view::book_id(e))
            .collect();
        let mut fold = view::Fold::new(unit.rows(&named).await?);
        let mut out = Vec::with_capacity(events.len());
        for ((_, event), claimed) in events.iter().zip(claimed) {
            if claimed {
                fold.apply(event);
                out.push(Applied::Now);
            } else {
                out.push(Applied::Duplicate);
            }
        }
        unit.save(&fold.into_changes()).await?;
        unit.commit().await?;
        Ok(out)
    }

    /// One row, if `actor` may see it (a row whose owner is not known yet: admins only).
    pub async fn get(&self, actor: &Actor, book_id: &str) -> Result<BookingView, ViewError> {
        let row = self.repo.get(book_id).await?.ok_or(ViewError::NotFound)?;
        let owner = row.customer_id.as_deref();
        if !owner.map_or(actor.sees_all, |o| actor.may_see(o)) {
            return Err(ViewError::NotYours);
        }
        Ok(row)
    }

    /// The actor's rows (every row for an admin).
    pub async fn list(
        &self,
        actor: &Actor,
        limit: i64,
        offset: i64,
        order: platform::http::Order,
    ) -> anyhow::Result<Vec<BookingView>> {
        self.repo.list(actor.only_own(), limit, offset, order).await
    }

    /// F7: whether a house is free for a stay.
    pub async fn availability(
        &self,
        house_id: i64,
        stay: &Stay,
    ) -> anyhow::Result<Option<Availability>> {
        self.repo.availability(house_id, stay).await
    }

    /// Empties the view before a rebuild.
    pub async fn clear(&self) -> anyhow::Result<()> {
        self.repo.clear().await
    }
}

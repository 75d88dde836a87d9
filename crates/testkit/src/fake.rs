//! What every in-memory fake of a unit-of-work port shares (the domain tests' fakes in
//! book, house, payment, mypage and notification): a store that runs one unit of work at a
//! time, as SQLite does, each on a copy of the store that replaces it on commit and is
//! dropped otherwise (a rollback).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

/// A fake's whole state `S`, shared by its clones.
pub struct FakeStore<S>(Arc<Mutex<S>>);

impl<S> Clone for FakeStore<S> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<S: Default> Default for FakeStore<S> {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(S::default())))
    }
}

impl<S: Clone + Default + Send + 'static> FakeStore<S> {
    /// What it holds now.
    pub async fn snapshot(&self) -> S {
        self.0.lock().await.clone()
    }

    /// The store itself, outside a unit of work (a port's plain reads and writes).
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, S> {
        self.0.lock().await
    }

    /// Begins a unit of work: the store is held until it ends, and the unit works on a
    /// copy.
    pub async fn begin(&self) -> Staged<S> {
        let guard = self.0.clone().lock_owned().await;
        let staged = guard.clone();
        Staged { guard, staged }
    }
}

/// A unit of work's copy of the store; dereferences to it.
pub struct Staged<S> {
    guard: OwnedMutexGuard<S>,
    staged: S,
}

impl<S: Default> Staged<S> {
    /// Makes the copy the store.
    pub fn commit(mut self) {
        *self.guard = std::mem::take(&mut self.staged);
    }
}

impl<S> Deref for Staged<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.staged
    }
}

impl<S> DerefMut for Staged<S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.staged
    }
}

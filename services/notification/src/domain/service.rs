//! The use cases: apply what arrived, and show a reader the messages they may see.

use std::sync::Arc;

use platform::auth::Actor;
use platform::consumer::Handled;

use super::models::Notification;
use super::ports::{Item, NotificationStore};

/// Notifications over a store.
#[derive(Clone)]
pub struct NotificationService {
    store: Arc<dyn NotificationStore>,
}

impl NotificationService {
    /// A service over its store.
    pub fn new(store: Arc<dyn NotificationStore>) -> Self {
        Self { store }
    }

    /// Applies a batch of events (each once).
    pub async fn apply(&self, items: &[Item]) -> anyhow::Result<Vec<Handled>> {
        self.store.apply_all(items).await
    }

    /// The messages `reader` may see, oldest first: their own, or all for an admin.
    pub async fn list(
        &self,
        reader: &Actor,
        limit: i64,
        offset: i64,
    ) -> anyhow::Result<Vec<Notification>> {
        self.store.list(reader.only_own(), limit, offset).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;

    /// Remembers the owner each listing asked for.
    #[derive(Default)]
    struct Asked(Mutex<Vec<Option<String>>>);

    #[async_trait]
    impl NotificationStore for Asked {
        async fn apply_all(&self, items: &[Item]) -> anyhow::Result<Vec<Handled>> {
            Ok(vec![Handled::Applied; items.len()])
        }
        async fn list(
            &self,
            customer: Option<&str>,
            _limit: i64,
            _offset: i64,
        ) -> anyhow::Result<Vec<Notification>> {
            self.0.lock().unwrap().push(customer.map(str::to_owned));
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn a_customer_reads_their_own_messages_and_an_admin_everyones() {
        let store = Arc::new(Asked::default());
        let service = NotificationService::new(store.clone());
        let reader = |id: &str, sees_all| Actor {
            id: id.to_owned(),
            sees_all,
        };
        service.list(&reader("alice", false), 10, 0).await.unwrap();
        service.list(&reader("admin", true), 10, 0).await.unwrap();
        assert_eq!(
            *store.0.lock().unwrap(),
            vec![Some("alice".to_owned()), None]
        );
    }
}

//! The store behind a mutex, called on the blocking pool: SQLite calls take
//! milliseconds, which the async threads should not spend.

use std::sync::{Arc, Mutex, PoisonError};

use crescendo_store::{Store, StoreError};

use crate::error::ServiceError;

/// A shared handle on the service's store.
#[derive(Debug, Clone)]
pub(crate) struct Db(Arc<Mutex<Store>>);

impl Db {
    pub(crate) fn new(store: Store) -> Self {
        Self(Arc::new(Mutex::new(store)))
    }

    /// Run `f` on the store off the async threads.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || {
            // A call that panicked left no half-done transaction: rusqlite rolls back.
            let store = store.lock().unwrap_or_else(PoisonError::into_inner);
            f(&store)
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?
        .map_err(ServiceError::Store)
    }
}

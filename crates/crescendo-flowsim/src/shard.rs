//! A map split over cache-line-padded mutexes, so concurrent requests for different keys
//! or flows rarely wait on each other. Locks are held for a few field updates and never
//! across an `.await`.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Keeps neighbouring shards' locks off each other's cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(Mutex<T>);

/// `N` independently locked `T`s, chosen by hash.
#[derive(Debug)]
pub(crate) struct Sharded<T> {
    shards: Box<[Padded<T>]>,
}

impl<T: Default> Sharded<T> {
    pub(crate) fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1)).map(|_| Padded::default()).collect(),
        }
    }
}

impl<T> Sharded<T> {
    /// Locks the shard for `hash`.
    pub(crate) fn lock(&self, hash: u64) -> MutexGuard<'_, T> {
        // the high bits are the best mixed ones of SipHash and ahash alike
        let index = (hash >> 32) as usize % self.shards.len();
        lock(&self.shards[index].0)
    }

    /// Locks each shard in turn (never two at once).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&mut T)) {
        for shard in &*self.shards {
            f(&mut lock(&shard.0));
        }
    }
}

/// Locks a mutex; a panic elsewhere cannot leave these plain counters half-updated in a
/// way that matters, so a poisoned lock is used as is.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

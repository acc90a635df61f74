//! The retry budget shared by one agent's request tasks.

use std::sync::atomic::{AtomicU64, Ordering};

/// Caps retries at a fraction of first attempts, so that a throttled API is never
/// answered with a retry storm (the 10–20 % retry budgets of gRPC and Finagle).
///
/// The exact rule: a retry is allowed while
/// `retries_spent < max(MIN_RETRIES, ⌊ratio × first_attempts⌋)`, so with the default
/// ratio 0.2 the first 10 retries are always allowed (up to 50 first attempts the floor
/// is what counts; a run's very first throttle can still be retried), and after that
/// retries track 20 % of first attempts. A ratio of zero, negative or NaN disables
/// retries entirely (no floor); an infinite ratio never refuses.
///
/// Lock-free and `Sync`: share it with `Arc` between the tasks of one agent.
#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    first_attempts: AtomicU64,
    retries: AtomicU64,
}

impl RetryBudget {
    /// Retries allowed whatever the number of first attempts (when the ratio is positive).
    pub const MIN_RETRIES: u64 = 10;

    /// A budget of `ratio` retries per first attempt (the plan's `retry_budget`).
    pub fn new(ratio: f64) -> Self {
        Self {
            ratio,
            first_attempts: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        }
    }

    /// Counts a request's first attempt (not its retries).
    pub fn record_first_attempt(&self) {
        self.first_attempts.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one retry from the budget; false when it is spent.
    pub fn try_spend_retry(&self) -> bool {
        let allowance = self.allowance();
        self.retries
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |spent| {
                (spent < allowance).then_some(spent + 1)
            })
            .is_ok()
    }

    /// Retries allowed so far in total (spent ones included).
    pub fn allowance(&self) -> u64 {
        if self.ratio.is_nan() || self.ratio <= 0.0 {
            return 0;
        }
        if self.ratio.is_infinite() {
            return u64::MAX;
        }
        let first = self.first_attempts.load(Ordering::Relaxed) as f64;
        // `as` saturates on overflow.
        let earned = (self.ratio * first).floor() as u64;
        earned.max(Self::MIN_RETRIES)
    }

    /// First attempts recorded so far.
    pub fn first_attempts(&self) -> u64 {
        self.first_attempts.load(Ordering::Relaxed)
    }

    /// Retries spent so far.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
}

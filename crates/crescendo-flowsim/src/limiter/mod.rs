//! Rate-limiter math: pure functions of `(state, policy, now)` with `now` injected as the
//! time since an arbitrary origin, so every algorithm is unit-tested without sockets or
//! sleeps.
//!
//! Each algorithm's `decide` returns the decision together with the state it *would*
//! move to; the caller commits that state only when it admits the request. That is what
//! lets [`admit`] check a per-token limit and the organisation limit together without a
//! throttled request consuming either quota.
//!
//! Integer arithmetic throughout (nanoseconds in `u128`, scaled where a rate is
//! fractional), so Retry-After and remaining values are exact and reproducible.

mod combined;
mod fixed_window;
mod gcra;
mod sliding_window;
mod token_bucket;

use std::time::Duration;

pub use crate::config::Algorithm;
pub use combined::{Report, Scope, Verdict, admit};
pub use fixed_window::FixedWindow;
pub use gcra::Gcra;
pub use sliding_window::SlidingWindow;
pub use token_bucket::TokenBucket;

/// One limit: `limit` requests per `window`, counted by `algorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How requests are counted.
    pub algorithm: Algorithm,
    /// Requests per window (at least 1).
    pub limit: u64,
    /// Window length (longer than zero).
    pub window: Duration,
    /// Requests that may pass at once for token bucket and GCRA (at least 1).
    pub burst: u64,
}

impl Policy {
    /// The policy for `limit` per `window`, or `None` when `limit` is 0 (limiting off) or
    /// the window is empty. `burst` defaults to `limit`.
    pub fn new(
        algorithm: Algorithm,
        limit: u64,
        window: Duration,
        burst: Option<u64>,
    ) -> Option<Self> {
        (limit > 0 && !window.is_zero()).then(|| Self {
            algorithm,
            limit,
            window,
            burst: burst.unwrap_or(limit).max(1),
        })
    }

    fn window_ns(&self) -> u128 {
        self.window.as_nanos()
    }
}

/// What the limiter tells the caller about its quota, for the rate-limit headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// The quota size: `limit` for window algorithms, `burst` for token bucket and GCRA.
    pub limit: u64,
    /// Requests still allowed right now (after this one, when it was admitted).
    pub remaining: u64,
    /// Time until the quota is whole again (window end, or bucket full).
    pub reset: Duration,
}

impl Quota {
    /// Requests used so far: what `inin-ratelimit-count` reports.
    pub fn used(&self) -> u64 {
        self.limit.saturating_sub(self.remaining)
    }
}

/// One limiter's answer to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The request may pass; `Quota` is the state after counting it.
    Allowed(Quota),
    /// The request is refused until `retry_after` has passed.
    Throttled {
        /// Time until this limiter would admit a request.
        retry_after: Duration,
        /// The quota as it stands (remaining is 0).
        quota: Quota,
    },
}

impl Decision {
    /// The quota this decision reports.
    pub fn quota(&self) -> Quota {
        match *self {
            Self::Allowed(q) | Self::Throttled { quota: q, .. } => q,
        }
    }

    /// Whether the request may pass.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed(_))
    }
}

/// The per-key (or organisation) state of whichever algorithm the policy names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// See [`FixedWindow`].
    FixedWindow(FixedWindow),
    /// See [`SlidingWindow`].
    SlidingWindow(SlidingWindow),
    /// See [`TokenBucket`].
    TokenBucket(TokenBucket),
    /// See [`Gcra`].
    Gcra(Gcra),
}

impl State {
    /// A fresh state (full quota) for `policy`.
    pub fn new(policy: &Policy) -> Self {
        match policy.algorithm {
            Algorithm::FixedWindow => Self::FixedWindow(FixedWindow::default()),
            Algorithm::SlidingWindow => Self::SlidingWindow(SlidingWindow::default()),
            Algorithm::TokenBucket => Self::TokenBucket(TokenBucket::default()),
            Algorithm::Gcra => Self::Gcra(Gcra::default()),
        }
    }

    /// Decides without changing anything; returns the state to commit if admitted.
    pub fn decide(&self, policy: &Policy, now: Duration) -> (Decision, Self) {
        match self {
            Self::FixedWindow(s) => wrap(s.decide(policy, now), Self::FixedWindow),
            Self::SlidingWindow(s) => wrap(s.decide(policy, now), Self::SlidingWindow),
            Self::TokenBucket(s) => wrap(s.decide(policy, now), Self::TokenBucket),
            Self::Gcra(s) => wrap(s.decide(policy, now), Self::Gcra),
        }
    }

    /// Decides and, when admitted, counts the request.
    pub fn acquire(&mut self, policy: &Policy, now: Duration) -> Decision {
        let (decision, next) = self.decide(policy, now);
        if decision.is_allowed() {
            *self = next;
        }
        decision
    }
}

fn wrap<T>((decision, next): (Decision, T), f: impl FnOnce(T) -> State) -> (Decision, State) {
    (decision, f(next))
}

/// A `u128` count of nanoseconds as a `Duration` (saturating; never reached in practice).
fn from_nanos(ns: u128) -> Duration {
    Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    pub(crate) fn policy(
        algorithm: Algorithm,
        limit: u64,
        window_s: u64,
        burst: Option<u64>,
    ) -> Policy {
        Policy::new(algorithm, limit, Duration::from_secs(window_s), burst).unwrap()
    }

    pub(crate) fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    pub(crate) fn secs(v: u64) -> Duration {
        Duration::from_secs(v)
    }

    /// Admits as many requests as possible at `now` (bounded) and returns how many passed.
    pub(crate) fn drain(state: &mut State, policy: &Policy, now: Duration) -> u64 {
        (0..100_000)
            .take_while(|_| state.acquire(policy, now).is_allowed())
            .count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn zero_limit_means_no_policy() {
        assert!(Policy::new(Algorithm::Gcra, 0, secs(60), None).is_none());
        assert!(Policy::new(Algorithm::Gcra, 5, Duration::ZERO, None).is_none());
        assert_eq!(policy(Algorithm::Gcra, 5, 60, None).burst, 5);
    }

    #[test]
    fn every_algorithm_admits_limit_from_fresh_and_never_more() {
        for algorithm in [
            Algorithm::FixedWindow,
            Algorithm::SlidingWindow,
            Algorithm::TokenBucket,
            Algorithm::Gcra,
        ] {
            let p = policy(algorithm, 300, 60, None);
            let mut s = State::new(&p);
            assert_eq!(drain(&mut s, &p, secs(1)), 300, "{algorithm}");
            let d = s.acquire(&p, secs(1));
            assert!(!d.is_allowed(), "{algorithm}");
            assert_eq!(d.quota().remaining, 0, "{algorithm}");
            assert_eq!(d.quota().used(), 300, "{algorithm}");
        }
    }

    #[test]
    fn throttled_decision_leaves_state_unchanged() {
        let p = policy(Algorithm::SlidingWindow, 2, 10, None);
        let mut s = State::new(&p);
        drain(&mut s, &p, secs(1));
        let before = s;
        assert!(!s.acquire(&p, secs(2)).is_allowed());
        assert_eq!(s, before);
    }
}

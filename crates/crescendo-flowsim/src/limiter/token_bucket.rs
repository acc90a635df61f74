//! Token bucket: capacity `burst`, refilled continuously at `limit/window`.
//! `Retry-After = (1 − tokens) / refill_rate`.
//!
//! Tokens are kept in units of `1/W_ns` of a token, so the refill per nanosecond is exactly
//! `limit` units and every value stays an integer.

use std::time::Duration;

use super::{Decision, Policy, Quota, from_nanos};

/// Per-key token-bucket state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenBucket {
    /// Tokens (scaled by `W_ns`) at `last`; `None` = a full, never used bucket.
    level: Option<u128>,
    /// When `level` was measured.
    last: Duration,
}

impl TokenBucket {
    /// Decides at `now`; the returned state counts the request.
    pub fn decide(&self, policy: &Policy, now: Duration) -> (Decision, Self) {
        let one = policy.window_ns();
        let refill = u128::from(policy.limit);
        let capacity = u128::from(policy.burst) * one;
        let level = match self.level {
            None => capacity,
            Some(level) => {
                let dt = now.saturating_sub(self.last).as_nanos();
                capacity.min(level + refill * dt)
            }
        };
        let time_to_full = |level: u128| from_nanos((capacity - level).div_ceil(refill));
        if level >= one {
            let left = level - one;
            let quota = Quota {
                limit: policy.burst,
                remaining: u64::try_from(left / one).unwrap_or(u64::MAX),
                reset: time_to_full(left),
            };
            let next = Self {
                level: Some(left),
                last: now.max(self.last),
            };
            (Decision::Allowed(quota), next)
        } else {
            let quota = Quota {
                limit: policy.burst,
                remaining: 0,
                reset: time_to_full(level),
            };
            let decision = Decision::Throttled {
                retry_after: from_nanos((one - level).div_ceil(refill)),
                quota,
            };
            (decision, *self)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{Algorithm, State};
    use super::*;

    #[test]
    fn burst_then_refill_rate() {
        // 300/min = 5 per second, bucket of 10
        let p = policy(Algorithm::TokenBucket, 300, 60, Some(10));
        let mut s = State::new(&p);
        assert_eq!(drain(&mut s, &p, secs(5)), 10);
        match s.acquire(&p, secs(5)) {
            // (1 − 0) / 5 per s = 200 ms; the bucket is full again after 10 / 5 = 2 s
            Decision::Throttled { retry_after, quota } => {
                assert_eq!(retry_after, ms(200));
                assert_eq!(
                    quota,
                    Quota {
                        limit: 10,
                        remaining: 0,
                        reset: secs(2)
                    }
                );
            }
            other => panic!("expected throttle, got {other:?}"),
        }
        assert!(!s.acquire(&p, ms(5_199)).is_allowed());
        assert!(s.acquire(&p, ms(5_200)).is_allowed());
        // one second refills five tokens
        assert_eq!(drain(&mut s, &p, ms(6_200)), 5);
    }

    #[test]
    fn partial_token_shortens_retry_after() {
        let p = policy(Algorithm::TokenBucket, 1, 10, Some(1));
        let mut s = State::new(&p);
        assert!(s.acquire(&p, secs(0)).is_allowed());
        match s.acquire(&p, secs(4)) {
            // 0.4 tokens refilled: (1 − 0.4) / 0.1 = 6 s
            Decision::Throttled { retry_after, .. } => assert_eq!(retry_after, secs(6)),
            other => panic!("expected throttle, got {other:?}"),
        }
    }

    #[test]
    fn remaining_and_reset() {
        let p = policy(Algorithm::TokenBucket, 60, 60, None);
        let mut s = State::new(&p);
        let q = s.acquire(&p, secs(0)).quota();
        assert_eq!(
            q,
            Quota {
                limit: 60,
                remaining: 59,
                reset: secs(1)
            }
        );
        let q = s.acquire(&p, secs(0)).quota();
        assert_eq!(
            q,
            Quota {
                limit: 60,
                remaining: 58,
                reset: secs(2)
            }
        );
        // never more than the capacity, however long the idle time
        assert_eq!(drain(&mut s, &p, secs(10_000)), 60);
    }
}

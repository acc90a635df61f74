//! Sliding window counter (Cloudflare style): windows on a fixed grid from the origin;
//! the estimate `prev·(1 − elapsed/W) + current` must stay within the limit. Smoother
//! than a fixed window: throttled callers are released one by one as the previous
//! window's weight decays.

use std::time::Duration;

use super::{Decision, Policy, Quota, from_nanos};

/// Per-key sliding-window-counter state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlidingWindow {
    /// Grid index of the current window (`now / W`).
    index: u64,
    /// Requests admitted in the window before `index`.
    prev: u64,
    /// Requests admitted in window `index`.
    current: u64,
}

impl SlidingWindow {
    /// Decides at `now`; the returned state counts the request.
    pub fn decide(&self, policy: &Policy, now: Duration) -> (Decision, Self) {
        let w = policy.window_ns();
        let limit = u128::from(policy.limit);
        let now_ns = now.as_nanos();
        let index = u64::try_from(now_ns / w).unwrap_or(u64::MAX);
        let rolled = match index {
            i if i <= self.index => *self,
            i if i == self.index + 1 => Self {
                index,
                prev: self.current,
                current: 0,
            },
            _ => Self {
                index,
                prev: 0,
                current: 0,
            },
        };
        let elapsed = now_ns.saturating_sub(u128::from(rolled.index) * w).min(w);
        let to_window_end = w - elapsed;
        let prev = u128::from(rolled.prev);
        let current = u128::from(rolled.current);
        // estimate·W, kept in integers: prev·(W − elapsed) + current·W
        let weighted_prev = prev * to_window_end;
        let budget = limit * w;
        let reset = from_nanos(to_window_end);

        if weighted_prev + (current + 1) * w <= budget {
            let used = weighted_prev + (current + 1) * w;
            let quota = Quota {
                limit: policy.limit,
                remaining: u64::try_from((budget - used) / w).unwrap_or(u64::MAX),
                reset,
            };
            let next = Self {
                current: rolled.current + 1,
                ..rolled
            };
            return (Decision::Allowed(quota), next);
        }

        let wait = if current < limit {
            // The previous window's weight must decay: prev·(W − elapsed − t) ≤ (limit − current − 1)·W.
            // Throttled here implies prev > 0.
            (weighted_prev - (limit - current - 1) * w).div_ceil(prev.max(1))
        } else {
            // Full this window: wait for the next one, where this window becomes `prev`:
            // current·(W − t') ≤ (limit − 1)·W.
            to_window_end + ((current + 1 - limit) * w).div_ceil(current)
        };
        let quota = Quota {
            limit: policy.limit,
            remaining: 0,
            reset,
        };
        let decision = Decision::Throttled {
            retry_after: from_nanos(wait),
            quota,
        };
        (decision, *self)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{Algorithm, State};
    use super::*;

    fn p(limit: u64, window_s: u64) -> Policy {
        policy(Algorithm::SlidingWindow, limit, window_s, None)
    }

    #[test]
    fn first_window_allows_limit_then_waits_into_the_next() {
        let p = p(10, 60);
        let mut s = State::new(&p);
        assert_eq!(drain(&mut s, &p, secs(15)), 10);
        match s.acquire(&p, secs(30)) {
            // 30 s to the window end, then 10·(1 − t/60) ≤ 9 needs t = 6 s
            Decision::Throttled { retry_after, quota } => {
                assert_eq!(retry_after, secs(36));
                assert_eq!(quota.reset, secs(30));
                assert_eq!(quota.remaining, 0);
            }
            other => panic!("expected throttle, got {other:?}"),
        }
        // just before the computed instant: still throttled; at it: admitted
        assert!(!s.acquire(&p, ms(65_999)).is_allowed());
        assert!(s.acquire(&p, secs(66)).is_allowed());
    }

    #[test]
    fn estimate_weighs_the_previous_window() {
        let p = p(10, 60);
        let mut s = State::new(&p);
        assert_eq!(drain(&mut s, &p, secs(0)), 10);
        // at 90 s: elapsed 30 of 60, estimate = 10·0.5 + current → 5 more fit
        assert_eq!(drain(&mut s, &p, secs(90)), 5);
        match s.acquire(&p, secs(90)) {
            // 10·(1 − (30 + t)/60) + 5 ≤ 9 → t = 6 s
            Decision::Throttled { retry_after, .. } => assert_eq!(retry_after, secs(6)),
            other => panic!("expected throttle, got {other:?}"),
        }
        assert!(s.acquire(&p, secs(96)).is_allowed());
    }

    #[test]
    fn remaining_counts_the_weighted_estimate() {
        let p = p(10, 60);
        let mut s = State::new(&p);
        drain(&mut s, &p, secs(0));
        // at 120 s the window before (60..120) was empty: full quota again
        let q = s.acquire(&p, secs(120)).quota();
        assert_eq!(
            q,
            Quota {
                limit: 10,
                remaining: 9,
                reset: secs(60)
            }
        );
        let mut s = State::new(&p);
        drain(&mut s, &p, secs(0));
        // at 75 s: estimate 10·0.75 + 1 = 8.5 → 1 whole request left
        let q = s.acquire(&p, secs(75)).quota();
        assert_eq!(
            q,
            Quota {
                limit: 10,
                remaining: 1,
                reset: secs(45)
            }
        );
    }

    #[test]
    fn idle_gap_forgets_everything() {
        let p = p(5, 1);
        let mut s = State::new(&p);
        assert_eq!(drain(&mut s, &p, ms(500)), 5);
        assert_eq!(drain(&mut s, &p, ms(2_500)), 5);
    }
}

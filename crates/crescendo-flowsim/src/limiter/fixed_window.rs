//! Fixed window: `limit` requests per window; the window opens with the first request
//! after the previous one closed (as a Redis `INCR` + `EXPIRE` limiter does), so keys
//! drift apart. `Retry-After = window_end − now`: every throttled caller of a key is
//! released at the same instant, and up to twice the limit can pass across a boundary.

use std::time::Duration;

use super::{Decision, Policy, Quota};

/// Per-key fixed-window state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FixedWindow {
    /// When the current window opened; `None` before the first request.
    start: Option<Duration>,
    /// Requests admitted in the current window.
    count: u64,
}

impl FixedWindow {
    /// Decides at `now`; the returned state counts the request.
    pub fn decide(&self, policy: &Policy, now: Duration) -> (Decision, Self) {
        let (start, count) = match self.start {
            Some(start) if now < start + policy.window => (start, self.count),
            _ => (now, 0),
        };
        let reset = (start + policy.window).saturating_sub(now);
        if count < policy.limit {
            let quota = Quota {
                limit: policy.limit,
                remaining: policy.limit - count - 1,
                reset,
            };
            let next = Self {
                start: Some(start),
                count: count + 1,
            };
            (Decision::Allowed(quota), next)
        } else {
            let quota = Quota {
                limit: policy.limit,
                remaining: 0,
                reset,
            };
            let decision = Decision::Throttled {
                retry_after: reset,
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

    fn p(limit: u64, window_s: u64) -> Policy {
        policy(Algorithm::FixedWindow, limit, window_s, None)
    }

    #[test]
    fn allows_exactly_limit_per_window() {
        let p = p(300, 60);
        let mut s = State::new(&p);
        // spread over the window: still exactly 300
        let admitted = (0..600u64)
            .filter(|i| s.acquire(&p, ms(10_000 + i * 50)).is_allowed())
            .count();
        assert_eq!(admitted, 300);
        // the window opened at 10 s, so it closes at 70 s
        assert!(!s.acquire(&p, ms(69_999)).is_allowed());
        assert_eq!(drain(&mut s, &p, secs(70)), 300);
    }

    #[test]
    fn retry_after_is_window_end_minus_now() {
        let p = p(3, 60);
        let mut s = State::new(&p);
        assert_eq!(drain(&mut s, &p, secs(100)), 3);
        match s.acquire(&p, ms(122_250)) {
            Decision::Throttled { retry_after, quota } => {
                assert_eq!(retry_after, ms(37_750));
                assert_eq!(
                    quota,
                    Quota {
                        limit: 3,
                        remaining: 0,
                        reset: ms(37_750)
                    }
                );
            }
            other => panic!("expected throttle, got {other:?}"),
        }
    }

    #[test]
    fn remaining_and_reset_count_down() {
        let p = p(3, 60);
        let mut s = State::new(&p);
        let q1 = s.acquire(&p, secs(0)).quota();
        let q2 = s.acquire(&p, secs(22)).quota();
        assert_eq!(
            q1,
            Quota {
                limit: 3,
                remaining: 2,
                reset: secs(60)
            }
        );
        assert_eq!(
            q2,
            Quota {
                limit: 3,
                remaining: 1,
                reset: secs(38)
            }
        );
        assert_eq!(q2.used(), 2);
    }

    #[test]
    fn boundary_lets_twice_the_limit_through() {
        let p = p(10, 60);
        let mut s = State::new(&p);
        assert_eq!(drain(&mut s, &p, ms(0)), 10);
        assert_eq!(drain(&mut s, &p, ms(59_999)), 0);
        assert_eq!(drain(&mut s, &p, ms(60_000)), 10);
    }
}

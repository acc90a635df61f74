//! GCRA (generic cell rate algorithm, as in redis-cell / throttled): emission interval
//! `T = window/limit`, tolerance `τ = T·burst`. `new_tat = max(tat, now) + T`,
//! `allow_at = new_tat − τ`; throttled when `now < allow_at` with
//! `Retry-After = allow_at − now`; `remaining = ⌊(τ − (new_tat − now)) / T⌋`.
//!
//! `--burst N` means N requests may pass at once, like a token bucket of capacity N
//! (redis-cell's `max_burst` is N − 1, its `τ = T·(max_burst + 1)`).
//! Times are kept in nanoseconds × `limit`, so `T = W_ns` exactly.

use std::time::Duration;

use super::{Decision, Policy, Quota, from_nanos};

/// Per-key GCRA state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gcra {
    /// Theoretical arrival time, scaled by `limit`.
    tat: u128,
}

impl Gcra {
    /// Decides at `now`; the returned state counts the request.
    pub fn decide(&self, policy: &Policy, now: Duration) -> (Decision, Self) {
        let scale = u128::from(policy.limit);
        let t = policy.window_ns();
        let tau = t * u128::from(policy.burst);
        let now_s = now.as_nanos() * scale;
        let base = self.tat.max(now_s);
        let new_tat = base + t;
        let unscale = |v: u128| from_nanos(v.div_ceil(scale));
        if new_tat <= now_s + tau {
            let quota = Quota {
                limit: policy.burst,
                remaining: u64::try_from((now_s + tau - new_tat) / t).unwrap_or(u64::MAX),
                reset: unscale(new_tat - now_s),
            };
            (Decision::Allowed(quota), Self { tat: new_tat })
        } else {
            let quota = Quota {
                limit: policy.burst,
                remaining: 0,
                reset: unscale(base - now_s),
            };
            let decision = Decision::Throttled {
                retry_after: unscale(new_tat - tau - now_s),
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
    fn burst_then_one_per_emission_interval() {
        // T = 60 s / 300 = 200 ms, burst 5
        let p = policy(Algorithm::Gcra, 300, 60, Some(5));
        let mut s = State::new(&p);
        assert_eq!(drain(&mut s, &p, secs(1)), 5);
        match s.acquire(&p, secs(1)) {
            Decision::Throttled { retry_after, quota } => {
                assert_eq!(retry_after, ms(200));
                assert_eq!(
                    quota,
                    Quota {
                        limit: 5,
                        remaining: 0,
                        reset: secs(1)
                    }
                );
            }
            other => panic!("expected throttle, got {other:?}"),
        }
        assert!(!s.acquire(&p, ms(1_199)).is_allowed());
        assert!(s.acquire(&p, ms(1_200)).is_allowed());
        assert!(!s.acquire(&p, ms(1_300)).is_allowed());
        assert!(s.acquire(&p, ms(1_400)).is_allowed());
    }

    #[test]
    fn remaining_counts_down_and_reset_is_time_to_idle() {
        let p = policy(Algorithm::Gcra, 10, 10, None);
        let mut s = State::new(&p);
        let q = s.acquire(&p, secs(0)).quota();
        assert_eq!(
            q,
            Quota {
                limit: 10,
                remaining: 9,
                reset: secs(1)
            }
        );
        let q = s.acquire(&p, secs(0)).quota();
        assert_eq!(
            q,
            Quota {
                limit: 10,
                remaining: 8,
                reset: secs(2)
            }
        );
        // after 1.5 s, one and a half cells have drained: 9 whole requests left before this one
        let q = s.acquire(&p, ms(1_500)).quota();
        assert_eq!(
            q,
            Quota {
                limit: 10,
                remaining: 8,
                reset: ms(1_500)
            }
        );
    }

    #[test]
    fn sustained_rate_is_limit_per_window() {
        let p = policy(Algorithm::Gcra, 300, 60, Some(1));
        let mut s = State::new(&p);
        // one attempt every 10 ms for 60 s: exactly one admission per 200 ms
        let admitted = (0..6_000u64)
            .filter(|i| s.acquire(&p, ms(i * 10)).is_allowed())
            .count();
        assert_eq!(admitted, 300);
    }
}

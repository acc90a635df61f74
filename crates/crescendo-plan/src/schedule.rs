//! Load-shape math the agent schedules by: rates and VUs over time, and the exact
//! integral of the rate with its inverse, so that iteration `k` has a fixed due time and
//! the schedule never drifts however late the agent wakes up.
//!
//! Stages ramp linearly from the previous stage's target (the first from `start_rate` /
//! `start_vus`) to their own target. After the last stage the plan is over: the rate and
//! the VUs are 0.

use std::time::Duration;

use crate::model::{ClosedLoad, Load, OpenLoad, Plan, Share};
use crate::split::split_evenly;

impl Plan {
    /// Total length of the load: the sum of the stage durations.
    pub fn duration(&self) -> Duration {
        self.load.duration()
    }
}

impl Load {
    /// The sum of the stage durations.
    pub fn duration(&self) -> Duration {
        match self {
            Load::Open(open) => sum(open.stages.iter().map(|s| s.duration)),
            Load::Closed(closed) => sum(closed.stages.iter().map(|s| s.duration)),
        }
    }
}

fn sum(durations: impl Iterator<Item = Duration>) -> Duration {
    durations.fold(Duration::ZERO, Duration::saturating_add)
}

/// Finds the stage holding `t`: its index and the time elapsed within it. `t` exactly at
/// a boundary belongs to the stage that ends there; `None` past the end.
fn locate(durations: impl Iterator<Item = Duration>, t: Duration) -> Option<(usize, Duration)> {
    let mut left = t;
    for (i, d) in durations.enumerate() {
        if left <= d {
            return Some((i, left));
        }
        left -= d;
    }
    None
}

/// Value at `elapsed` into a linear ramp from `from` to `to` over `d`.
fn ramp(from: f64, to: f64, d: Duration, elapsed: Duration) -> f64 {
    if d.is_zero() {
        return to;
    }
    from + (to - from) * (elapsed.as_secs_f64() / d.as_secs_f64())
}

/// Integral over the first `tau` seconds of a ramp from `r0` to `r1` over `d` seconds.
fn ramp_area(r0: f64, r1: f64, d: f64, tau: f64) -> f64 {
    if d <= 0.0 {
        return 0.0;
    }
    r0 * tau + (r1 - r0) * tau * tau / (2.0 * d)
}

impl OpenLoad {
    /// `(start rate, end rate, duration)` of every stage.
    fn segments(&self) -> impl Iterator<Item = (f64, f64, Duration)> + '_ {
        let mut from = self.start_rate;
        self.stages.iter().map(move |stage| {
            let segment = (from, stage.target, stage.duration);
            from = stage.target;
            segment
        })
    }

    /// The highest rate the plan reaches (iterations per second).
    pub fn peak_rate(&self) -> f64 {
        self.stages
            .iter()
            .map(|s| s.target)
            .fold(self.start_rate, f64::max)
    }

    /// The fleet-wide rate (iterations per second) at `t`; 0 after the last stage.
    pub fn rate_at(&self, t: Duration) -> f64 {
        match locate(self.stages.iter().map(|s| s.duration), t) {
            Some((i, elapsed)) => {
                let (from, to, d) = self.segments().nth(i).unwrap_or_default();
                ramp(from, to, d, elapsed)
            }
            None => 0.0,
        }
    }

    /// The exact integral of the rate over `[0, t]`: how many iterations the fleet has
    /// started by `t` (fractional). Constant once the plan is over.
    pub fn iterations_until(&self, t: Duration) -> f64 {
        let mut total = 0.0;
        let mut left = t;
        for (r0, r1, d) in self.segments() {
            let secs = d.as_secs_f64();
            if left < d {
                return total + ramp_area(r0, r1, secs, left.as_secs_f64());
            }
            total += ramp_area(r0, r1, secs, secs);
            left -= d;
        }
        total
    }

    /// The inverse of [`iterations_until`](Self::iterations_until): the time at which the
    /// integral passes `n` (the latest `t` with `iterations_until(t) == n`, so a stage at
    /// rate 0 is waited out rather than fired into). `None` when `n` is negative, NaN, or
    /// not below the plan's total, i.e. never reached within the plan.
    ///
    /// On a linear ramp this solves `r0·τ + (r1 − r0)·τ²/(2d) = m` for `τ` in the
    /// cancellation-free form `τ = 2m / (r0 + √(r0² + 2·m·(r1 − r0)/d))`.
    pub fn time_of_iteration(&self, n: f64) -> Option<Duration> {
        if n.is_nan() || n < 0.0 {
            return None;
        }
        let mut before = 0.0;
        let mut start = Duration::ZERO;
        for (r0, r1, d) in self.segments() {
            let secs = d.as_secs_f64();
            let area = ramp_area(r0, r1, secs, secs);
            if before + area > n {
                let m = n - before;
                let slope = (r1 - r0) / secs;
                let root = (r0 * r0 + 2.0 * slope * m).max(0.0).sqrt();
                let denominator = r0 + root;
                let tau = if denominator > 0.0 {
                    (2.0 * m / denominator).clamp(0.0, secs)
                } else {
                    0.0
                };
                let tau = Duration::try_from_secs_f64(tau).map_or(d, |tau| tau.min(d));
                return Some(start.saturating_add(tau));
            }
            before += area;
            start = start.saturating_add(d);
        }
        None
    }

    /// When iteration `k` (from 0) of `share` is due. Agent `i` of `count` takes the
    /// fleet's iterations `(k + i/count) / rate_fraction`, so with even fractions the
    /// agents interleave (agent `i` runs the fleet's iterations `i`, `i + count`, …)
    /// instead of all firing at once. `None` once the share's iterations are exhausted.
    pub fn due_time(&self, share: &Share, k: u64) -> Option<Duration> {
        if share.rate_fraction.is_nan() || share.rate_fraction <= 0.0 || share.count == 0 {
            return None;
        }
        let phase = f64::from(share.index) / f64::from(share.count);
        self.time_of_iteration((k as f64 + phase) / share.rate_fraction)
    }
}

impl ClosedLoad {
    /// The highest VU count the plan reaches.
    pub fn peak_vus(&self) -> u32 {
        self.stages
            .iter()
            .map(|s| s.target)
            .fold(self.start_vus, u32::max)
    }

    /// Fleet-wide VUs at `t`, on a linear ramp, rounded down; 0 after the last stage.
    pub fn vus_at(&self, t: Duration) -> u32 {
        let Some((i, elapsed)) = locate(self.stages.iter().map(|s| s.duration), t) else {
            return 0;
        };
        let from = match i {
            0 => self.start_vus,
            _ => self.stages[i - 1].target,
        };
        let stage = self.stages[i];
        let d = stage.duration.as_nanos();
        if d == 0 {
            return stage.target;
        }
        // Exact integer interpolation: both ends are >= 0, so the quotient is the floor.
        let numerator = i128::from(from) * d as i128
            + (i128::from(stage.target) - i128::from(from)) * elapsed.as_nanos() as i128;
        u32::try_from(numerator / d as i128).unwrap_or(stage.target.max(from))
    }

    /// This share's VUs at `t`: `split_evenly` of [`vus_at`](Self::vus_at), so the shares
    /// add up to the fleet's count at every instant.
    pub fn vus_at_for(&self, t: Duration, share: &Share) -> u32 {
        let vus = split_evenly(u64::from(self.vus_at(t)), share.count, share.index);
        u32::try_from(vus).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::model::{RateStage, VuStage};

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn open(start_rate: f64, stages: &[(f64, f64)]) -> OpenLoad {
        OpenLoad {
            start_rate,
            stages: stages
                .iter()
                .map(|&(d, target)| RateStage {
                    duration: secs(d),
                    target,
                })
                .collect(),
            max_in_flight: 100,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn rate_ramps_linearly() {
        let load = open(5.0, &[(10.0, 15.0), (10.0, 15.0)]);
        assert_eq!(load.rate_at(Duration::ZERO), 5.0);
        assert_eq!(load.rate_at(secs(5.0)), 10.0);
        assert_eq!(load.rate_at(secs(10.0)), 15.0);
        assert_eq!(load.rate_at(secs(20.0)), 15.0);
        assert_eq!(load.rate_at(secs(20.5)), 0.0);
        assert_eq!(load.peak_rate(), 15.0);
    }

    #[test]
    fn integral_of_a_ramp_and_a_hold() {
        let load = open(5.0, &[(10.0, 15.0), (10.0, 15.0)]);
        assert!(close(load.iterations_until(secs(10.0)), 100.0));
        assert!(close(load.iterations_until(secs(20.0)), 250.0));
        assert!(close(load.iterations_until(secs(99.0)), 250.0));
        // Halfway up the ramp: 5·5 + 10/10·25/2 = 37.5.
        assert!(close(load.iterations_until(secs(5.0)), 37.5));
    }

    #[test]
    fn inverse_of_the_integral() {
        let load = open(5.0, &[(10.0, 15.0), (10.0, 15.0)]);
        assert_eq!(load.time_of_iteration(0.0), Some(Duration::ZERO));
        assert!(close(
            load.time_of_iteration(37.5).unwrap().as_secs_f64(),
            5.0
        ));
        assert!(close(
            load.time_of_iteration(175.0).unwrap().as_secs_f64(),
            15.0
        ));
        assert_eq!(load.time_of_iteration(250.0), None);
        assert_eq!(load.time_of_iteration(-1.0), None);
        assert_eq!(load.time_of_iteration(f64::NAN), None);
        // Exactly 250 iterations are due within the plan.
        let due = (0..)
            .take_while(|&k| load.time_of_iteration(k as f64).is_some())
            .count();
        assert_eq!(due, 250);
    }

    #[test]
    fn zero_rate_stages_are_waited_out() {
        let load = open(0.0, &[(5.0, 0.0), (1.0, 10.0)]);
        let t0 = load.time_of_iteration(0.0).unwrap();
        assert_eq!(t0, secs(5.0));
        let ramp_down = open(10.0, &[(2.0, 0.0)]);
        assert!(close(ramp_down.iterations_until(secs(2.0)), 10.0));
        assert!(close(
            ramp_down.time_of_iteration(7.5).unwrap().as_secs_f64(),
            1.0
        ));
    }

    #[test]
    fn shares_interleave() {
        let load = open(10.0, &[(1.0, 10.0)]);
        let share = |index| Share {
            index,
            count: 2,
            rate_fraction: 0.5,
            vus: 0,
            max_in_flight: 1,
        };
        assert!(close(
            load.due_time(&share(0), 1).unwrap().as_secs_f64(),
            0.2
        ));
        assert!(close(
            load.due_time(&share(1), 1).unwrap().as_secs_f64(),
            0.3
        ));
        assert_eq!(load.due_time(&share(1), 5), None);
    }

    #[test]
    fn vus_ramp_and_round_down() {
        let load = ClosedLoad {
            start_vus: 0,
            stages: vec![
                VuStage {
                    duration: secs(10.0),
                    target: 10,
                },
                VuStage {
                    duration: secs(10.0),
                    target: 3,
                },
            ],
            think_time: Duration::ZERO,
        };
        assert_eq!(load.vus_at(Duration::ZERO), 0);
        assert_eq!(load.vus_at(secs(0.99)), 0);
        assert_eq!(load.vus_at(secs(1.0)), 1);
        assert_eq!(load.vus_at(secs(9.99)), 9);
        assert_eq!(load.vus_at(secs(10.0)), 10);
        assert_eq!(load.vus_at(secs(15.0)), 6);
        assert_eq!(load.vus_at(secs(20.0)), 3);
        assert_eq!(load.vus_at(secs(21.0)), 0);
        assert_eq!(load.peak_vus(), 10);
        let shares: Vec<Share> = (0..3)
            .map(|index| Share {
                index,
                count: 3,
                rate_fraction: 1.0 / 3.0,
                vus: 0,
                max_in_flight: 1,
            })
            .collect();
        let at = |t| {
            shares
                .iter()
                .map(|s| load.vus_at_for(t, s))
                .collect::<Vec<_>>()
        };
        assert_eq!(at(secs(10.0)), [4, 3, 3]);
        assert_eq!(at(secs(15.0)), [2, 2, 2]);
    }

    fn stages() -> impl Strategy<Value = (f64, Vec<(f64, f64)>)> {
        (
            0.0..500.0f64,
            prop::collection::vec((0.001..100.0f64, 0.0..500.0f64), 1..6),
        )
    }

    proptest! {
        #[test]
        fn inverse_agrees_with_integral((start, st) in stages(), frac in 0.0..1.0f64) {
            let load = open(start, &st);
            let total = load.iterations_until(load_duration(&load));
            let n = frac * total;
            if let Some(t) = load.time_of_iteration(n) {
                let back = load.iterations_until(t);
                prop_assert!((back - n).abs() <= 1e-6 * (1.0 + total), "n={n} t={t:?} back={back}");
            } else {
                prop_assert!(total == 0.0 || n >= total * (1.0 - 1e-12));
            }
        }

        #[test]
        fn integral_is_monotonic_and_inverse_is_too((start, st) in stages(), a in 0.0..1.0f64, b in 0.0..1.0f64) {
            let load = open(start, &st);
            let end = load_duration(&load).as_secs_f64();
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(load.iterations_until(secs(lo * end)) <= load.iterations_until(secs(hi * end)) + 1e-9);
            let total = load.iterations_until(load_duration(&load));
            if let (Some(x), Some(y)) = (load.time_of_iteration(lo * total), load.time_of_iteration(hi * total)) {
                prop_assert!(x <= y + Duration::from_nanos(1));
            }
        }
    }

    fn load_duration(load: &OpenLoad) -> Duration {
        sum(load.stages.iter().map(|s| s.duration))
    }
}

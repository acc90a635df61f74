//! The open model's arrival schedule for one agent: pure math, no clock.
//!
//! The agent's k-th iteration is due when the plan's cumulative iteration count
//! reaches `(k + index/count) / fraction`, so the fleet's agents interleave and the
//! schedule never drifts: every due time is computed from the run's origin, never
//! from the previous wake-up. A backoff cap or pause moves due times later; the plan
//! position then jumps to the new time, so lifting a cap never releases a burst of
//! "missed" iterations. Under a cap the agents keep taking turns: agent i of n sends
//! on the grid `(k + i/n) / cap` nearest one interval after its previous iteration.

use crescendo_plan::{OpenLoad, Share};
use std::time::Duration;

/// Due times of one agent's iterations, in seconds since the run's start.
#[derive(Debug, Clone)]
pub(crate) struct ArrivalSchedule {
    load: OpenLoad,
    /// The end of the plan's last stage, seconds.
    end: f64,
    fraction: f64,
    /// Plan iterations (fleet-wide) already covered by this agent's schedule.
    position: f64,
    /// Due time of the previous iteration.
    last_due: f64,
    started: bool,
    /// This agent's turn among the fleet's, as a fraction of an interval: `index/count`.
    phase: f64,
}

/// Backoff limits in force when the next due time is computed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Limits {
    /// This agent's highest allowed rate from the fleet governor, iterations per second.
    pub(crate) max_rate: Option<f64>,
    /// No iteration may be due before this time (seconds since start).
    pub(crate) not_before: f64,
}

/// The next iteration's due time, to be committed once it fires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Due {
    /// Seconds since the run's start.
    pub(crate) at: f64,
    position: f64,
}

/// Below this rate a capped schedule waits instead of spacing iterations further.
const MIN_RATE: f64 = 0.01;

impl ArrivalSchedule {
    pub(crate) fn new(load: OpenLoad, share: &Share) -> Self {
        let fraction = share.rate_fraction.max(1e-9);
        // Interleave agents: agent i of n takes the i/n-th turn of every interval.
        let phase = f64::from(share.index) / f64::from(share.count.max(1));
        let offset = phase / fraction;
        let end = load
            .stages
            .iter()
            .map(|s| s.duration)
            .sum::<Duration>()
            .as_secs_f64();
        Self {
            load,
            end,
            fraction,
            position: offset - 1.0 / fraction,
            last_due: 0.0,
            started: false,
            phase,
        }
    }

    /// The next due time under `limits`, or `None` when the plan has no more
    /// iterations. Nothing changes until [`commit`](Self::commit), so a due time can
    /// be recomputed when the limits change while waiting for it.
    pub(crate) fn peek(&self, limits: Limits) -> Option<Due> {
        let end = self.end;
        let candidate = self.position + 1.0 / self.fraction;
        let mut due = self
            .load
            .time_of_iteration(candidate.max(0.0))?
            .as_secs_f64();
        let mut position = candidate;
        let capped = match limits.max_rate {
            Some(rate) if self.started => {
                let period = 1.0 / rate.max(MIN_RATE);
                let turn = self.phase * period;
                let target = self.last_due + period;
                turn + ((target - turn) / period).round() * period
            }
            _ => 0.0,
        };
        let floor = capped.max(limits.not_before);
        if floor > due {
            if floor >= end {
                return None;
            }
            due = floor;
            position = self.load.iterations_until(Duration::from_secs_f64(due));
        }
        (due < end).then_some(Due { at: due, position })
    }

    /// Take a new share at `now` (since the start): this agent's fraction and turn
    /// change; its next iteration is the first of its new turns not before `now`.
    pub(crate) fn reshare(&mut self, share: &Share, now: Duration) {
        let fraction = share.rate_fraction.max(1e-9);
        let phase = f64::from(share.index) / f64::from(share.count.max(1));
        let period = 1.0 / fraction;
        let offset = phase / fraction;
        let reached = self
            .load
            .iterations_until(now.min(self.end()))
            .max(self.position);
        let turns = ((reached - offset) / period).ceil().max(0.0);
        self.fraction = fraction;
        self.phase = phase;
        self.position = offset + (turns - 1.0) * period;
    }

    /// The end of the plan's last stage, from the run's start.
    pub(crate) fn end(&self) -> Duration {
        Duration::from_secs_f64(self.end)
    }

    /// This agent's iterations still ahead of the schedule's position before the plan's
    /// end: at the end, those that were due but never sent (`missed`).
    pub(crate) fn remaining(&self) -> u64 {
        let total = self
            .load
            .iterations_until(Duration::from_secs_f64(self.end));
        // Iterations sit one `1 / fraction` apart from the position on, and only those
        // due strictly before the end are sent.
        let left = ((total - self.position) * self.fraction).ceil() - 1.0;
        if left.is_finite() && left > 0.0 {
            left as u64
        } else {
            0
        }
    }

    /// The iteration at `due` fired (or was dropped): move past it.
    pub(crate) fn commit(&mut self, due: Due) {
        self.position = due.position;
        self.last_due = due.at;
        self.started = true;
    }

    #[cfg(test)]
    fn next(&mut self, limits: Limits) -> Option<f64> {
        let due = self.peek(limits)?;
        self.commit(due);
        Some(due.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crescendo_plan::RateStage;

    fn load(stages: &[(u64, f64)], start: f64) -> OpenLoad {
        OpenLoad {
            start_rate: start,
            stages: stages
                .iter()
                .map(|&(s, target)| RateStage {
                    duration: Duration::from_secs(s),
                    target,
                })
                .collect(),
            max_in_flight: 100,
        }
    }

    fn share(index: u32, count: u32) -> Share {
        Share {
            index,
            count,
            rate_fraction: 1.0 / f64::from(count),
            vus: 0,
            max_in_flight: 1,
        }
    }

    fn all(mut s: ArrivalSchedule) -> Vec<f64> {
        std::iter::from_fn(|| s.next(Limits::default())).collect()
    }

    #[test]
    fn constant_rate_is_exact_and_drift_free() {
        let times = all(ArrivalSchedule::new(
            load(&[(100, 10.0)], 10.0),
            &share(0, 1),
        ));
        assert_eq!(times.len(), 1000);
        assert!((times[999] - 99.9).abs() < 1e-6, "{}", times[999]);
    }

    #[test]
    fn agents_interleave_and_add_up_to_the_plan() {
        let plan = load(&[(10, 5.0), (10, 30.0)], 5.0);
        let mut merged: Vec<f64> = (0..3)
            .flat_map(|i| all(ArrivalSchedule::new(plan.clone(), &share(i, 3))))
            .collect();
        merged.sort_by(f64::total_cmp);
        let single = all(ArrivalSchedule::new(plan.clone(), &share(0, 1)));
        let expected = plan.iterations_until(Duration::from_secs(20));
        assert!((single.len() as f64 - expected).abs() <= 1.0);
        assert!((merged.len() as f64 - expected).abs() <= 3.0);
        for (a, b) in merged.iter().zip(&single) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn a_cap_slows_the_schedule_and_lifting_it_does_not_burst() {
        let mut s = ArrivalSchedule::new(load(&[(20, 100.0)], 100.0), &share(0, 1));
        let capped = Limits {
            max_rate: Some(10.0),
            ..Limits::default()
        };
        let first: Vec<f64> = (0..10).map(|_| s.next(capped).unwrap()).collect();
        assert!((first[9] - first[0] - 0.9).abs() < 1e-9);
        let after = s.next(Limits::default()).unwrap();
        let next = s.next(Limits::default()).unwrap();
        assert!(after - first[9] < 0.011 && after > first[9]);
        assert!((next - after - 0.01).abs() < 1e-6);
    }

    #[test]
    fn capped_agents_take_turns() {
        // Four agents capped at 10/s each, all starting (or resuming) together: within
        // a few iterations they send 25 ms apart, not in bursts of four.
        let capped = Limits {
            max_rate: Some(10.0),
            not_before: 1.0,
        };
        let mut dues: Vec<f64> = (0..4)
            .flat_map(|i| {
                let mut s = ArrivalSchedule::new(load(&[(20, 100.0)], 100.0), &share(i, 4));
                (0..5).map(|_| s.next(capped).unwrap()).collect::<Vec<_>>()
            })
            .filter(|t| *t >= 1.15)
            .collect();
        dues.sort_by(f64::total_cmp);
        assert!(dues.len() >= 8, "{dues:?}");
        for pair in dues.windows(2) {
            assert!((pair[1] - pair[0] - 0.025).abs() < 1e-9, "{dues:?}");
        }
    }

    #[test]
    fn a_pause_moves_the_next_iteration() {
        let mut s = ArrivalSchedule::new(load(&[(20, 10.0)], 10.0), &share(0, 1));
        s.next(Limits::default());
        let due = s
            .next(Limits {
                not_before: 5.0,
                ..Limits::default()
            })
            .unwrap();
        assert!((due - 5.0).abs() < 1e-9);
        let due = s.next(Limits::default()).unwrap();
        assert!((due - 5.1).abs() < 1e-6);
    }
}

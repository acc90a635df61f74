//! Waking the open model's dispatcher at a due instant to within microseconds.
//!
//! tokio's timer wheel has 1 ms ticks: a sleep ends at the first tick after its
//! deadline, later still when the worker parks with a timeout rounded to milliseconds,
//! so a plain `sleep_until` sends every request about a millisecond late, and that lag
//! lands in the latency from the intended instant. [`sleep_until`] sleeps on tokio's
//! timer until [`COARSE_MARGIN`] before the instant (nothing is burnt while nothing is
//! due soon), then naps in short blocking sleeps of at most [`NAP`] (the kernel's
//! timers are precise to tens of microseconds; a worker blocked this briefly holds
//! up nothing) while more than [`SPIN`] is left, and yields to the runtime over the
//! last [`SPIN`] at most (so at high rates, due times closer than that, the worker also
//! runs the request tasks); before the naps it yields once, so the iteration it just
//! spawned (waiting in this worker's queue) gets to its send. Naps cost less than
//! yields: each yield parks and wakes the runtime's workers.
//!
//! Only the open model's single dispatcher waits this way: one task per run, never one
//! per virtual user.

use std::time::Duration;

use tokio::time::Instant;

/// How long before a due instant the coarse (tokio timer) sleep ends: two of its ticks.
pub(crate) const COARSE_MARGIN: Duration = Duration::from_millis(2);
/// The longest blocking nap.
pub(crate) const NAP: Duration = Duration::from_micros(300);
/// Below this much left, only yield: a nap may overshoot by the kernel's timer slack
/// (50 µs by default).
pub(crate) const SPIN: Duration = Duration::from_micros(80);
/// The fine wait never runs longer than this in real time: under a paused tokio clock
/// (tests), which never advances while a task naps or yields, it falls back to the
/// timer.
const FINE_BUDGET: Duration = Duration::from_millis(10);

/// What to do with `left` until the due instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Due: go.
    Now,
    /// Far off: sleep on tokio's timer for this long.
    Coarse(Duration),
    /// Near: yield once, then block the thread for this long.
    Nap(Duration),
    /// About to be due (this long): yield to other tasks and look again.
    Yield(Duration),
}

/// How to wait when `left` remains until the due instant.
pub(crate) fn plan(left: Duration) -> Wait {
    if left.is_zero() {
        Wait::Now
    } else if left > COARSE_MARGIN {
        Wait::Coarse(left - COARSE_MARGIN)
    } else if left > SPIN {
        Wait::Nap((left - SPIN).min(NAP))
    } else {
        Wait::Yield(left)
    }
}

/// Wait until `at`, returning within microseconds after it on an idle core (never
/// before it).
pub(crate) async fn sleep_until(at: Instant) {
    let fine_since = std::time::Instant::now();
    let mut yielded = false;
    loop {
        let left = at.saturating_duration_since(Instant::now());
        match plan(left) {
            // Like a timer's sleep, a wait that is already over takes from the task's
            // cooperative budget, so a dispatcher far behind its schedule still lets
            // the runtime's other tasks run (and falls behind, counting `missed`).
            Wait::Now => return tokio::task::consume_budget().await,
            Wait::Coarse(wait) => {
                tokio::time::sleep(wait).await;
                continue;
            }
            // The iteration just dispatched sits in this worker's queue: let it run (up
            // to its send) before this thread naps. Once: each yield parks and
            // wakes the runtime's workers, which costs more than the naps.
            Wait::Nap(_) if !yielded => {
                tokio::task::yield_now().await;
                yielded = true;
                continue;
            }
            Wait::Nap(nap) => std::thread::sleep(nap),
            // The last stretch yields rather than busy-waits: at high rates (due times
            // closer than SPIN) this worker then also runs the request tasks.
            Wait::Yield(_) => tokio::task::yield_now().await,
        }
        if fine_since.elapsed() > FINE_BUDGET + COARSE_MARGIN {
            tokio::time::sleep_until(at).await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_waits_sleep_on_the_timer_near_ones_nap_then_yield() {
        let us = Duration::from_micros;
        assert_eq!(plan(Duration::ZERO), Wait::Now);
        assert_eq!(plan(Duration::from_secs(1)), Wait::Coarse(us(998_000)));
        assert_eq!(plan(COARSE_MARGIN), Wait::Nap(NAP));
        assert_eq!(plan(us(250)), Wait::Nap(us(170)));
        assert_eq!(plan(us(1_000)), Wait::Nap(NAP));
        assert_eq!(plan(SPIN), Wait::Yield(SPIN));
        assert_eq!(plan(us(1)), Wait::Yield(us(1)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_ends_at_its_instant_under_a_paused_clock() {
        let start = Instant::now();
        for ms in [0u64, 1, 5, 250, 3_000] {
            let at = start + Duration::from_millis(ms);
            sleep_until(at).await;
            let woke = Instant::now();
            assert!(woke >= at, "woke before {ms} ms");
            assert!(
                woke - at <= Duration::from_millis(1),
                "{ms} ms: {:?}",
                woke - at
            );
        }
    }

    #[tokio::test]
    async fn a_wait_never_ends_early() {
        for us in [0u64, 50, 300, 1_500, 4_000] {
            let at = Instant::now() + Duration::from_micros(us);
            sleep_until(at).await;
            assert!(Instant::now() >= at, "woke before {us} µs");
        }
    }
}

//! Waking the open model's dispatcher at a due instant to within microseconds.
//!
//! tokio's timer wheel has 1 ms ticks: a sleep ends at the first tick after its
//! deadline, later still when the worker parks with a timeout rounded to milliseconds,
//! so a plain `sleep_until` sends every request about a millisecond late, and that lag
//! lands in the latency from the intended instant. [`sleep_until`] sleeps on tokio's
//! timer until [`COARSE_MARGIN`] before the instant (nothing is burnt while nothing is
//! due soon), then hands the last stretch to one precise timer thread per process:
//! it blocks on a channel with a timeout (the kernel's timers are precise to tens of
//! microseconds) until [`SPIN`] before the earliest instant it holds, yields the CPU in
//! a loop over that last stretch, and wakes the waiting task [`WAKE_LEAD`] before its
//! instant (a cross-thread wake takes about that); the task yields to its worker's
//! other tasks over those last microseconds.
//!
//! The precise wait never blocks a runtime worker: the workers go on running the
//! requests' tasks (and the answers' timing) while the timer thread waits. Its cost is
//! the yielding loop: at most [`SPIN`] per due instant, on whichever core is idle.
//!
//! Only the open model's dispatchers wait this way: one task per run, never one per
//! virtual user.

use std::sync::OnceLock;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

/// How long before a due instant the coarse (tokio timer) sleep ends: two of its ticks.
pub(crate) const COARSE_MARGIN: Duration = Duration::from_millis(2);
/// Below this much left, the timer thread stops blocking and yields in a loop: a
/// blocking wait may overshoot by the kernel's timer slack (50 µs by default).
pub(crate) const SPIN: Duration = Duration::from_micros(100);

/// How early the timer thread wakes a task, which then yields to the instant: about
/// what waking a parked runtime worker from another thread takes.
pub(crate) const WAKE_LEAD: Duration = Duration::from_micros(50);

/// A task waiting for `at` (real time).
#[derive(Debug)]
struct Wake {
    at: std::time::Instant,
    waker: oneshot::Sender<()>,
}

/// The precise timer thread's mailbox, started on first use.
fn timer() -> Option<&'static mpsc::Sender<Wake>> {
    static TIMER: OnceLock<Option<mpsc::Sender<Wake>>> = OnceLock::new();
    TIMER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel();
            std::thread::Builder::new()
                .name("crescendo-dispatch-timer".into())
                .spawn(move || run_timer(&rx))
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// The timer thread: wake each waiting task at its instant, earliest first.
fn run_timer(requests: &mpsc::Receiver<Wake>) {
    let mut waiting: Vec<Wake> = Vec::new();
    loop {
        let now = std::time::Instant::now();
        // Due: wake and forget; no longer awaited (the dispatcher moved on): forget.
        let mut i = 0;
        while i < waiting.len() {
            if waiting[i].at <= now {
                let _ = waiting.swap_remove(i).waker.send(());
            } else if waiting[i].waker.is_closed() {
                waiting.swap_remove(i);
            } else {
                i += 1;
            }
        }
        let Some(next) = waiting.iter().map(|w| w.at).min() else {
            // Nothing to wait for: block until a task asks.
            match requests.recv() {
                Ok(wake) => waiting.push(wake),
                Err(_) => return,
            }
            continue;
        };
        let left = next.saturating_duration_since(now);
        if left > SPIN {
            match requests.recv_timeout(left - SPIN) {
                Ok(wake) => waiting.push(wake),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        } else {
            std::thread::yield_now();
            while let Ok(wake) = requests.try_recv() {
                waiting.push(wake);
            }
        }
    }
}

/// Wait until `at`, returning within microseconds after it on an idle core (never
/// before it).
pub(crate) async fn sleep_until(at: Instant) {
    loop {
        let left = at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            // Like a timer's sleep, a wait that is already over takes from the task's
            // cooperative budget, so a dispatcher far behind its schedule still lets
            // the runtime's other tasks run (and falls behind, counting `missed`).
            return tokio::task::consume_budget().await;
        }
        if left > COARSE_MARGIN {
            tokio::time::sleep(left - COARSE_MARGIN).await;
            continue;
        }
        let (waker, woken) = oneshot::channel();
        let real_now = std::time::Instant::now();
        let wake = Wake {
            at: real_now + left.saturating_sub(WAKE_LEAD),
            waker,
        };
        if timer().is_some_and(|t| t.send(wake).is_ok()) {
            let _ = woken.await;
            // Woken WAKE_LEAD early (a cross-thread wake takes tens of microseconds):
            // yield to the worker's other tasks until the instant. Bounded in real
            // time: under a paused clock (tests) the instant never comes this way.
            while Instant::now() < at && real_now.elapsed() < left + WAKE_LEAD {
                tokio::task::yield_now().await;
            }
        }
        // Without the timer thread, or under a paused clock (tests), whose instants
        // are not real time: tokio's own timer.
        if Instant::now() < at {
            tokio::time::sleep_until(at).await;
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_dispatchers_share_the_timer_thread_and_each_wakes_at_its_own_instant() {
        let start = Instant::now();
        let waits: Vec<_> = (0..8u64)
            .map(|i| {
                tokio::spawn(async move {
                    let at = start + Duration::from_micros(300 + 150 * i);
                    sleep_until(at).await;
                    Instant::now() >= at
                })
            })
            .collect();
        for wait in waits {
            assert!(wait.await.unwrap(), "a wait ended before its instant");
        }
    }

    #[tokio::test]
    async fn a_dropped_wait_is_forgotten() {
        let far = Instant::now() + Duration::from_millis(1);
        // Dropped while the timer thread holds it: the thread goes on for the others.
        let _ = tokio::time::timeout(Duration::from_micros(10), sleep_until(far)).await;
        let at = Instant::now() + Duration::from_micros(500);
        sleep_until(at).await;
        assert!(Instant::now() >= at);
    }
}

//! This agent's hard ceilings: its part of the plan's `max_total_requests` and
//! `max_rps` ([`AgentCeilings`]), computed from the plan the agent validated itself.
//!
//! One request is taken before every HTTP request the run sends to the target (first
//! attempts, retries, the resend after a 401): from a budget that only goes down, and
//! at a slot at least `1 / max_rps` after the previous one. Nothing the controller sends
//! changes either (an `Adjust` only moves the governor's cap, which
//! [`Pacing`](crate::pacing::Pacing) keeps below this rate so that schedules and VUs
//! slow down rather than queue here).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crescendo_plan::AgentCeilings;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Longest spacing kept exactly: past it (a rate of less than one request in 1000
/// days, longer than any run) the next request never comes.
const NEVER: Duration = Duration::from_secs(1000 * 24 * 3600);

/// One run's ceilings, shared by its request tasks.
#[derive(Debug)]
pub(crate) struct Ceiling {
    /// Requests still allowed; `None` without `max_total_requests`.
    left: Option<AtomicU64>,
    /// Smallest spacing of two requests; `None` without `max_rps`.
    interval: Option<Duration>,
    /// The earliest time the next request may go.
    next_slot: Mutex<Option<Instant>>,
    /// Attempts not sent because the requests were spent.
    refused: AtomicU64,
}

/// What [`Ceiling::take`] allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Take {
    /// Send the request; `last` when it was the last one the budget allowed.
    Send { last: bool },
    /// The requests are spent: do not send (counted as refused).
    Spent,
    /// The run stopped while the request waited for its slot.
    Stopped,
}

impl Ceiling {
    pub(crate) fn new(ceilings: AgentCeilings) -> Self {
        let interval = ceilings.max_rps.map(|rate| {
            Duration::try_from_secs_f64(1.0 / rate)
                .unwrap_or(NEVER)
                .min(NEVER)
        });
        Self {
            left: ceilings.max_requests.map(AtomicU64::new),
            interval,
            next_slot: Mutex::new(None),
            refused: AtomicU64::new(0),
        }
    }

    /// Whether no request may be sent at all any more.
    pub(crate) fn spent(&self) -> bool {
        self.left
            .as_ref()
            .is_some_and(|left| left.load(Ordering::Acquire) == 0)
    }

    /// Attempts refused so far because the requests were spent.
    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Take one request from the budget, then wait for its slot under the rate ceiling
    /// (ended early by `stop`). Call right before sending.
    pub(crate) async fn take(&self, stop: &CancellationToken) -> Take {
        let mut last = false;
        if let Some(left) = &self.left {
            match left.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)) {
                Ok(before) => last = before == 1,
                Err(_) => {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    return Take::Spent;
                }
            }
        }
        if let Some(interval) = self.interval {
            let slot = self.reserve(interval);
            if slot > Instant::now() {
                tokio::select! {
                    _ = tokio::time::sleep_until(slot) => {}
                    _ = stop.cancelled() => return Take::Stopped,
                }
            }
        }
        if stop.is_cancelled() {
            return Take::Stopped;
        }
        Take::Send { last }
    }

    /// The next free slot, at least `interval` after the one taken before it.
    fn reserve(&self, interval: Duration) -> Instant {
        let now = Instant::now();
        let mut next = self.next_slot.lock().expect("ceiling lock");
        let slot = next.map_or(now, |n| n.max(now));
        *next = Some(slot + interval);
        slot
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    fn ceiling(max_requests: Option<u64>, max_rps: Option<f64>) -> Ceiling {
        Ceiling::new(AgentCeilings {
            max_requests,
            max_rps,
        })
    }

    #[tokio::test]
    async fn the_budget_allows_exactly_its_requests() {
        let (c, stop) = (ceiling(Some(3), None), CancellationToken::new());
        let takes: Vec<Take> = (0..5)
            .map(|_| c.take(&stop).now_or_never().unwrap())
            .collect();
        let send = |last| Take::Send { last };
        assert_eq!(
            takes,
            [
                send(false),
                send(false),
                send(true),
                Take::Spent,
                Take::Spent
            ]
        );
        assert!(c.spent());
        assert_eq!(c.refused(), 2);
        let zero = ceiling(Some(0), None);
        assert!(zero.spent());
        assert_eq!(zero.take(&stop).now_or_never(), Some(Take::Spent));
        let none = ceiling(None, None);
        assert!(!none.spent());
        for _ in 0..1000 {
            assert_eq!(
                none.take(&stop).now_or_never(),
                Some(Take::Send { last: false })
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn requests_are_spaced_by_the_rate_ceiling() {
        let (c, stop) = (ceiling(None, Some(4.0)), CancellationToken::new());
        let start = Instant::now();
        let mut at = Vec::new();
        for _ in 0..9 {
            assert_eq!(c.take(&stop).await, Take::Send { last: false });
            at.push(start.elapsed());
        }
        // The first goes at once, then one every 250 ms: 9 requests take 2 s.
        let want: Vec<Duration> = (0..9).map(|k| Duration::from_millis(250 * k)).collect();
        assert_eq!(at, want);
        // An idle spell earns no burst: after 10 s, two requests are still 250 ms apart.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let idle = Instant::now();
        c.take(&stop).await;
        c.take(&stop).await;
        assert_eq!(idle.elapsed(), Duration::from_millis(250));
    }

    #[tokio::test(start_paused = true)]
    async fn stop_ends_a_wait_and_a_tiny_rate_never_comes_again() {
        let (c, stop) = (ceiling(Some(10), Some(1e-300)), CancellationToken::new());
        assert_eq!(c.take(&stop).await, Take::Send { last: false });
        let waiting = c.take(&stop);
        let stopper = async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            stop.cancel();
        };
        let (took, ()) = tokio::join!(waiting, stopper);
        assert_eq!(took, Take::Stopped);
        assert_eq!(c.take(&stop).now_or_never(), Some(Take::Stopped));
    }
}

#[cfg(test)]
#[path = "ceiling_tests.rs"]
mod run_tests;

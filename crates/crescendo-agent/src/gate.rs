//! The per-request gate of the coordinated policy.
//!
//! The open model's schedule times each iteration's first request under the fleet's
//! limits (pauses and the governor's rate cap), so those pass the gate at once. Every
//! other request waits here: later steps of an iteration and retries wait out a fleet
//! pause, and the requests of closed-model virtual users, which no schedule times, also
//! keep to this agent's rate cap, spaced evenly. Without a pause or a cap (every policy
//! but `coordinated`) the gate is open.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::pacing::Pacing;
use crate::schedule::Limits;

/// Below this rate the gate spaces requests as if at this rate (100 s apart).
const MIN_RATE: f64 = 0.01;

/// Shared by all of one run's request tasks.
#[derive(Debug)]
pub(crate) struct RequestGate {
    /// Closed model: keep to the rate cap here (the open model's schedule does it).
    paces: bool,
    /// The earliest time the next rate-capped request may go, and the rate that set it.
    next_slot: Mutex<Option<(Instant, f64)>>,
}

impl RequestGate {
    pub(crate) fn new(closed_model: bool) -> Self {
        Self {
            paces: closed_model,
            next_slot: Mutex::new(None),
        }
    }

    /// Whether this gate keeps to the rate cap itself (closed model).
    pub(crate) fn paces(&self) -> bool {
        self.paces
    }

    /// Wait until step `step` of an iteration (0 = first) may be sent; false when
    /// `stop` ended the wait.
    pub(crate) async fn admit(
        &self,
        pacing: &Pacing,
        step: usize,
        stop: &CancellationToken,
    ) -> bool {
        self.admit_at(pacing, step, false, stop).await
    }

    /// Like [`admit`](Self::admit), for a retry: even an open-model first step waits,
    /// since no schedule timed the retry.
    pub(crate) async fn admit_retry(
        &self,
        pacing: &Pacing,
        step: usize,
        stop: &CancellationToken,
    ) -> bool {
        self.admit_at(pacing, step, true, stop).await
    }

    async fn admit_at(
        &self,
        pacing: &Pacing,
        step: usize,
        retry: bool,
        stop: &CancellationToken,
    ) -> bool {
        if !self.paces && step == 0 && !retry {
            return true;
        }
        loop {
            if !pacing.pause_left().is_zero() {
                // A pause may also end early (the fleet resumes once its scout got
                // through): wake on every change of the limits from here on.
                let mut changes = pacing.changes();
                let pause = pacing.pause_left();
                tokio::select! {
                    awake = sleep_until(Instant::now() + pause, stop) => if !awake {
                        return false;
                    },
                    _ = changes.changed() => {}
                }
                continue;
            }
            let cap = pacing.max_rate().filter(|r| r.is_finite());
            let Some(rate) = cap.filter(|_| self.paces) else {
                return true;
            };
            // A new cap (a scout's ends when the fleet resumes) re-spaces the waiting.
            let mut changes = pacing.changes();
            let slot = self.reserve(rate);
            match self.wait_slot(slot, rate, pacing, &mut changes, stop).await {
                None => return false,
                Some(false) => continue,
                Some(true) => {}
            }
            // A pause that began while this request waited for its slot holds it too.
            if pacing.pause_left().is_zero() {
                return true;
            }
        }
    }

    /// Wait for `slot`, taken at `rate`: `Some(true)` when it came, `Some(false)` when the
    /// cap changed first (take a new slot), `None` when `stop` ended the wait.
    async fn wait_slot(
        &self,
        slot: Instant,
        rate: f64,
        pacing: &Pacing,
        changes: &mut watch::Receiver<Limits>,
        stop: &CancellationToken,
    ) -> Option<bool> {
        loop {
            tokio::select! {
                awake = sleep_until(slot, stop) => return awake.then_some(true),
                changed = changes.changed() => {
                    if changed.is_err() || pacing.max_rate() != Some(rate) {
                        return Some(false);
                    }
                }
            }
        }
    }

    /// Take the next evenly spaced slot at `rate` requests per second; slots taken at
    /// another rate no longer count.
    fn reserve(&self, rate: f64) -> Instant {
        let interval = Duration::from_secs_f64(1.0 / rate.max(MIN_RATE));
        let now = Instant::now();
        let mut next = self.next_slot.lock().expect("gate lock");
        let slot = next
            .filter(|(_, at_rate)| *at_rate == rate)
            .map_or(now, |(n, _)| n.max(now));
        *next = Some((slot + interval, rate));
        slot
    }
}

/// Sleep until `at`; false when `stop` came first.
async fn sleep_until(at: Instant, stop: &CancellationToken) -> bool {
    if at <= Instant::now() {
        return !stop.is_cancelled();
    }
    tokio::select! {
        _ = tokio::time::sleep_until(at) => true,
        _ = stop.cancelled() => false,
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    fn pacing() -> Pacing {
        Pacing::new(Instant::now(), None).0
    }

    #[tokio::test]
    async fn without_pause_or_cap_the_gate_is_open() {
        let (p, stop) = (pacing(), CancellationToken::new());
        for gate in [RequestGate::new(false), RequestGate::new(true)] {
            for step in 0..3 {
                assert_eq!(gate.admit(&p, step, &stop).now_or_never(), Some(true));
            }
        }
    }

    #[tokio::test]
    async fn a_pause_holds_later_steps_and_retries_but_not_a_scheduled_first_step() {
        let (p, stop) = (pacing(), CancellationToken::new());
        p.pause(Duration::from_millis(300));
        let open = RequestGate::new(false);
        // The open schedule already timed the first step under the pause.
        assert_eq!(open.admit(&p, 0, &stop).now_or_never(), Some(true));
        let start = Instant::now();
        assert!(open.admit(&p, 1, &stop).await);
        assert!(start.elapsed() >= Duration::from_millis(290));
        p.pause(Duration::from_millis(200));
        let start = Instant::now();
        assert!(open.admit_retry(&p, 0, &stop).await);
        assert!(start.elapsed() >= Duration::from_millis(190));
    }

    #[tokio::test]
    async fn closed_model_requests_keep_to_the_rate_cap() {
        let (p, stop) = (pacing(), CancellationToken::new());
        p.set_max_rate(Some(20.0));
        let gate = RequestGate::new(true);
        let start = Instant::now();
        for _ in 0..5 {
            assert!(gate.admit(&p, 0, &stop).await);
        }
        // Five requests at 20 per second: the fifth goes 4 intervals after the first.
        assert!(
            start.elapsed() >= Duration::from_millis(195),
            "{:?}",
            start.elapsed()
        );
        // The open model's schedule keeps the cap itself.
        let open = RequestGate::new(false);
        assert_eq!(open.admit(&p, 1, &stop).now_or_never(), Some(true));
    }

    #[tokio::test]
    async fn a_pause_that_ends_early_releases_the_waiting_requests() {
        let (p, stop) = (std::sync::Arc::new(pacing()), CancellationToken::new());
        p.pause(Duration::from_secs(3600));
        let gate = RequestGate::new(true);
        let waiting = {
            let (p, stop) = (p.clone(), stop.clone());
            tokio::spawn(async move { gate.admit(&p, 1, &stop).await })
        };
        // Let the waiter run until it waits (a current-thread runtime: yielding is enough).
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!waiting.is_finished());
        // The fleet resumes (its scout got through): the hour-long pause ends now.
        p.replace_pause(Duration::ZERO);
        assert!(p.pause_left().is_zero());
        let admitted = tokio::time::timeout(Duration::from_secs(10), waiting).await;
        assert!(admitted.expect("released").unwrap());
    }

    #[tokio::test]
    async fn a_raised_cap_re_spaces_the_waiting_requests() {
        let (p, stop) = (std::sync::Arc::new(pacing()), CancellationToken::new());
        p.set_max_rate(Some(0.1));
        let gate = std::sync::Arc::new(RequestGate::new(true));
        assert!(gate.admit(&p, 0, &stop).await);
        // The next slot at 0.1 per second is 10 s away …
        let waiting = {
            let (p, stop, gate) = (p.clone(), stop.clone(), gate.clone());
            tokio::spawn(async move { gate.admit(&p, 0, &stop).await })
        };
        // Let the waiter run until it waits (a current-thread runtime: yielding is enough).
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!waiting.is_finished());
        // … until the cap is lifted (a scout's, when the fleet resumes).
        p.set_max_rate(Some(1000.0));
        let admitted = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(admitted.expect("re-spaced").unwrap());
    }

    #[tokio::test]
    async fn stop_ends_a_wait() {
        let (p, stop) = (pacing(), CancellationToken::new());
        p.pause(Duration::from_secs(3600));
        let gate = RequestGate::new(true);
        stop.cancel();
        assert!(!gate.admit(&p, 0, &stop).await);
    }
}

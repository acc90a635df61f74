//! What one run tells the controller besides its snapshots' figures: throttles, quota
//! headers (coordinated policy), a scout that got through, and the last interval's
//! rate. Reports are advisory and bounded: they never block the hot path, and a full
//! outbox drops one rather than slow a request down.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crescendo_backoff::RateLimitInfo;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::messages::{Opened, Quota, Throttle, ToController};

/// Quota reports to the governor are at least this far apart (milliseconds).
const QUOTA_REPORT_EVERY_MS: u64 = 100;

/// … unless the quota has news ([`quota_news`]): then this far (milliseconds).
const QUOTA_NEWS_EVERY_MS: u64 = 5;

/// At most this many throttle reports a second per agent.
const MAX_THROTTLE_REPORTS_PER_S: u32 = 20;

/// One run's reports to the controller, and its outbox.
#[derive(Debug)]
pub(crate) struct Reports {
    run_id: String,
    /// The credential the API's limits apply to (a hash), for throttle and quota reports.
    limit_key: String,
    /// Messages to the controller (snapshots, reports, `Finished`).
    outbox: mpsc::Sender<ToController>,
    /// The run's start on this agent: report times are milliseconds since then.
    t0: Instant,
    /// Quota headers go to the governor (coordinated policy).
    to_governor: bool,
    /// This agent's attempts per second over the last snapshot interval, as f64 bits.
    last_rate: AtomicU64,
    /// The API's quota as last reported, for the next snapshot.
    last_quota: Mutex<Option<Quota>>,
    /// When the last quota report went to the controller (ms since start; MAX: never).
    last_quota_report: AtomicU64,
    /// Throttle reports sent in the current second, to keep the stream light.
    throttle_window: Mutex<(u64, u32)>,
}

/// Quota headers that tell the governor something at once: a whole-second reset that
/// ticked over (the instant it did pins down the window's end), or a count that jumped
/// back up (a new window).
fn quota_news(previous: &Quota, next: &Quota) -> bool {
    let whole = |r: Option<std::time::Duration>| r.filter(|r| r.subsec_nanos() == 0);
    let ticked = matches!(
        (whole(previous.reset), whole(next.reset)),
        (Some(a), Some(b)) if a != b
    );
    let rise = (next.limit.unwrap_or(0.0) / 10.0).max(2.0);
    ticked || next.remaining > previous.remaining + rise
}

impl Reports {
    pub(crate) fn new(
        run_id: String,
        limit_key: String,
        outbox: mpsc::Sender<ToController>,
        t0: Instant,
        to_governor: bool,
    ) -> Self {
        Self {
            run_id,
            limit_key,
            outbox,
            t0,
            to_governor,
            last_rate: AtomicU64::new(0),
            last_quota: Mutex::new(None),
            last_quota_report: AtomicU64::new(u64::MAX),
            throttle_window: Mutex::new((u64::MAX, 0)),
        }
    }

    fn since_start_ms(&self) -> u64 {
        u64::try_from(self.t0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Send a message that must not be lost (a snapshot, `Finished`), waiting for
    /// room; false when the session is gone.
    pub(crate) async fn send(&self, message: ToController) -> bool {
        self.outbox.send(message).await.is_ok()
    }

    /// Remember the attempts per second of the interval that just closed.
    pub(crate) fn set_rate(&self, rate: f64) {
        self.last_rate.store(rate.to_bits(), Ordering::Relaxed);
    }

    /// The quota last reported since the previous call, for a snapshot.
    pub(crate) fn take_quota(&self) -> Option<Quota> {
        self.last_quota.lock().expect("quota lock").take()
    }

    /// Keep the quota the API reported (parsed for failures, and for every answer
    /// under the coordinated policy). Under the coordinated policy the quota also goes
    /// to the controller's governor, at most once per [`QUOTA_REPORT_EVERY_MS`].
    pub(crate) fn observe_quota(&self, info: &RateLimitInfo) {
        let Some(remaining) = info.remaining else {
            return;
        };
        let at_ms = self.since_start_ms();
        let quota = Quota {
            remaining,
            limit: info.limit,
            reset: info.reset,
            at_ms,
            run_id: self.run_id.clone(),
            limit_key: self.limit_key.clone(),
        };
        let previous = self
            .last_quota
            .lock()
            .expect("quota lock")
            .replace(quota.clone());
        if !self.to_governor || quota.reset.is_none() {
            return;
        }
        let last = self.last_quota_report.load(Ordering::Relaxed);
        let news = previous.is_some_and(|p| quota_news(&p, &quota));
        let due = last == u64::MAX
            || at_ms >= last + QUOTA_REPORT_EVERY_MS
            || (news && at_ms >= last + QUOTA_NEWS_EVERY_MS);
        if due
            && self
                .last_quota_report
                .compare_exchange(last, at_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let _ = self.outbox.try_send(ToController::Quota(quota));
        }
    }

    /// The scout got through: the controller may end the fleet's pause.
    pub(crate) fn opened(&self) {
        let opened = Opened {
            run_id: self.run_id.clone(),
            limit_key: self.limit_key.clone(),
            at_ms: self.since_start_ms(),
        };
        let _ = self.outbox.try_send(ToController::Opened(opened));
    }

    /// The API throttled a request (at most [`MAX_THROTTLE_REPORTS_PER_S`] a second).
    pub(crate) fn throttle(&self, status: u16, info: &RateLimitInfo) {
        let at_ms = self.since_start_ms();
        {
            let mut window = self.throttle_window.lock().expect("throttle lock");
            let second = at_ms / 1000;
            if window.0 != second {
                *window = (second, 0);
            }
            if window.1 >= MAX_THROTTLE_REPORTS_PER_S {
                return;
            }
            window.1 += 1;
        }
        let throttle = Throttle {
            run_id: self.run_id.clone(),
            limit_key: self.limit_key.clone(),
            status,
            retry_after: info.retry_after,
            remaining: info.remaining,
            limit: info.limit,
            reset: info.reset,
            at_ms,
            rate_rps: f64::from_bits(self.last_rate.load(Ordering::Relaxed)),
        };
        let _ = self.outbox.try_send(ToController::Throttle(throttle));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn quota(remaining: f64, reset_s: f64) -> Quota {
        Quota {
            remaining,
            limit: Some(100.0),
            reset: Some(Duration::from_secs_f64(reset_s)),
            run_id: String::new(),
            limit_key: String::new(),
            at_ms: 0,
        }
    }

    #[test]
    fn a_whole_second_reset_ticking_over_is_news() {
        assert!(quota_news(&quota(50.0, 2.0), &quota(49.0, 1.0)));
        assert!(!quota_news(&quota(50.0, 2.0), &quota(49.0, 2.0)));
        // Fractional resets change with every answer: only the time-based reports.
        assert!(!quota_news(&quota(50.0, 1.25), &quota(49.0, 1.2)));
    }

    #[test]
    fn a_count_back_up_is_news_a_small_rise_is_not() {
        assert!(quota_news(&quota(3.0, 1.0), &quota(99.0, 1.0)));
        // Answers overtaking each other, or a bucket's trickle.
        assert!(!quota_news(&quota(40.0, 1.0), &quota(45.0, 1.0)));
    }
}

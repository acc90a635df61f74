//! Backoff limits of one run: pauses, the fleet governor's rate cap (never above the
//! plan's `max_rps` ceiling for this agent), and scouting a fleet pause. Shared by the
//! session (fleet decisions, through the run's handle) and the request tasks (local
//! reactions to the API's answers).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::schedule::Limits;

/// Backoff limits of one run, shared by the session (fleet decisions) and the
/// request tasks (local reactions to the API's answers).
#[derive(Debug)]
pub(crate) struct Pacing {
    limits: watch::Sender<Limits>,
    t0: Instant,
    /// This agent's `max_rps` ceiling: the rate cap in force is never above it, whatever
    /// the governor says (the [`Ceiling`](crate::ceiling::Ceiling) enforces it per
    /// request; this slows the schedule and the VUs down to it).
    ceiling: Option<f64>,
    /// Seconds paused since the last snapshot (counted when a pause is set; negative
    /// when a pause counted in an earlier snapshot was cut short).
    paused: Mutex<f64>,
    /// While scouting a fleet pause: when this agent resumed and until when it scouts
    /// (seconds since start) …
    scout: Mutex<Option<(f64, f64)>>,
    /// … and whether it does, so that every ok answer need not take the lock.
    scouting: AtomicBool,
}

impl Pacing {
    /// Pacing for a run starting at `t0`, with no pause and no rate cap but this agent's
    /// `max_rps` `ceiling`.
    pub(crate) fn new(t0: Instant, ceiling: Option<f64>) -> (Self, watch::Receiver<Limits>) {
        let (limits, rx) = watch::channel(Limits {
            max_rate: ceiling,
            ..Limits::default()
        });
        let pacing = Self {
            limits,
            t0,
            ceiling,
            paused: Mutex::new(0.0),
            scout: Mutex::new(None),
            scouting: AtomicBool::new(false),
        };
        (pacing, rx)
    }

    pub(crate) fn t0(&self) -> Instant {
        self.t0
    }

    fn since_start(&self) -> f64 {
        Instant::now()
            .saturating_duration_since(self.t0)
            .as_secs_f64()
    }

    /// Hold new iterations for `pause` from now (never shortening a longer pause).
    pub(crate) fn pause(&self, pause: Duration) {
        self.hold(pause, false);
    }

    /// Hold new iterations for `pause` from now, replacing the pause in force even when
    /// that is longer (zero ends it).
    pub(crate) fn replace_pause(&self, pause: Duration) {
        self.hold(pause, true);
    }

    /// Moves the end of the pause to `pause` from now (earlier only when `shorten`),
    /// counting the time added or taken off.
    fn hold(&self, pause: Duration, shorten: bool) {
        let now = self.since_start();
        let until = now + pause.as_secs_f64();
        self.limits.send_if_modified(|limits| {
            let old = limits.not_before.max(now);
            if until <= limits.not_before && !(shorten && old > now) {
                return false;
            }
            *self.paused.lock().expect("paused lock") += until - old;
            limits.not_before = until;
            true
        });
    }

    /// Scout the fleet's pause for `span` after this agent's own pause ends (zero: stop
    /// scouting).
    pub(crate) fn scout(&self, span: Duration) {
        let scout = (!span.is_zero()).then(|| {
            let resume = self.limits.borrow().not_before.max(self.since_start());
            (resume, resume + span.as_secs_f64())
        });
        let mut current = self.scout.lock().expect("scout lock");
        self.scouting.store(scout.is_some(), Ordering::Release);
        *current = scout;
    }

    /// Whether a throttle asking to wait `retry_after` is one a scout takes without
    /// pausing or reporting it: while it scouts, unless the wait runs more than a second
    /// past the scouting (another limit).
    pub(crate) fn scout_takes(&self, retry_after: Option<Duration>) -> bool {
        let now = self.since_start();
        let wait = retry_after.map_or(0.0, |w| w.as_secs_f64());
        self.scout
            .lock()
            .expect("scout lock")
            .is_some_and(|(_, until)| now < until && now + wait <= until + 1.0)
    }

    /// An answer that got through to a request sent at `sent`: true (once) when it
    /// ends a scouting, to be reported. A request sent before the scout resumed
    /// proves nothing about the pause.
    pub(crate) fn scout_got_through(&self, sent: Instant) -> bool {
        if !self.scouting.load(Ordering::Acquire) {
            return false;
        }
        let sent = sent.saturating_duration_since(self.t0).as_secs_f64();
        let mut scout = self.scout.lock().expect("scout lock");
        let through =
            scout.is_some_and(|(resume, until)| sent >= resume && self.since_start() < until);
        if through {
            *scout = None;
            self.scouting.store(false, Ordering::Release);
        }
        through
    }

    /// Notified of every change of the limits (pauses, rate caps) from now on.
    pub(crate) fn changes(&self) -> watch::Receiver<Limits> {
        self.limits.subscribe()
    }

    /// How long the current pause still lasts.
    pub(crate) fn pause_left(&self) -> Duration {
        let left = self.limits.borrow().not_before - self.since_start();
        Duration::try_from_secs_f64(left).unwrap_or(Duration::ZERO)
    }

    /// This agent's rate cap (requests per second), if any: the fleet governor's or the
    /// `max_rps` ceiling, whichever is lower.
    pub(crate) fn max_rate(&self) -> Option<f64> {
        self.limits.borrow().max_rate
    }

    /// Set the fleet governor's rate cap for this agent; the cap in force stays at or
    /// below the `max_rps` ceiling.
    pub(crate) fn set_max_rate(&self, rate: Option<f64>) {
        let rate = match (rate, self.ceiling) {
            (Some(r), Some(c)) => Some(r.min(c)),
            (r, c) => r.or(c),
        };
        self.limits.send_if_modified(|limits| {
            let changed = limits.max_rate != rate;
            limits.max_rate = rate;
            changed
        });
    }

    /// Time paused since the last call; a pause cut short after it was counted is
    /// taken off the next ones.
    pub(crate) fn take_paused(&self) -> Duration {
        let mut paused = self.paused.lock().expect("paused lock");
        if *paused <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(std::mem::take(&mut *paused))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_an_answer_to_a_request_sent_after_the_resume_ends_a_scouting() {
        let t0 = tokio::time::Instant::now();
        let (pacing, _) = Pacing::new(t0, None);
        pacing.pause(Duration::from_millis(200));
        pacing.scout(Duration::from_secs(5));
        // Throttles within the scouting are taken; one asking for far longer is not.
        assert!(pacing.scout_takes(Some(Duration::from_secs(1))));
        assert!(!pacing.scout_takes(Some(Duration::from_secs(60))));
        // A success of a request sent before the scout resumed proves nothing …
        assert!(!pacing.scout_got_through(t0));
        // … one sent after it does, once.
        let after = t0 + Duration::from_millis(250);
        assert!(pacing.scout_got_through(after));
        assert!(!pacing.scout_got_through(after));
        assert!(!pacing.scout_takes(Some(Duration::from_secs(1))));
    }

    #[tokio::test]
    async fn the_governor_cap_never_lifts_the_ceiling() {
        let (pacing, limits) = Pacing::new(tokio::time::Instant::now(), Some(10.0));
        assert_eq!(limits.borrow().max_rate, Some(10.0));
        for (asked, in_force) in [
            (Some(1000.0), Some(10.0)),
            (None, Some(10.0)),
            (Some(f64::INFINITY), Some(10.0)),
            (Some(4.0), Some(4.0)),
            (Some(0.0), Some(0.0)),
        ] {
            pacing.set_max_rate(asked);
            assert_eq!(pacing.max_rate(), in_force, "{asked:?}");
        }
        let (free, _) = Pacing::new(tokio::time::Instant::now(), None);
        free.set_max_rate(Some(1000.0));
        assert_eq!(free.max_rate(), Some(1000.0));
        free.set_max_rate(None);
        assert_eq!(free.max_rate(), None);
    }

    #[tokio::test]
    async fn a_pause_cut_short_is_taken_off_the_paused_time() {
        let (pacing, _) = Pacing::new(tokio::time::Instant::now(), None);
        pacing.pause(Duration::from_secs(2));
        let counted = pacing.take_paused();
        assert!(counted >= Duration::from_millis(1_900), "{counted:?}");
        // The fleet resumed right away: the 2 s counted already come off the next ones.
        pacing.replace_pause(Duration::ZERO);
        assert_eq!(pacing.take_paused(), Duration::ZERO);
        pacing.pause(Duration::from_secs(3));
        let next = pacing.take_paused();
        assert!(
            next >= Duration::from_millis(900) && next <= Duration::from_millis(1_100),
            "{next:?}"
        );
    }
}

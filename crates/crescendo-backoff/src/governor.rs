//! The fleet governor: turns the whole fleet's throttle and quota reports into one
//! fleet-wide rate per limit key (one credential, one server-side counter), plus pauses
//! with a staggered resume. A pure state machine: the controller passes `now` (time since
//! the run started) into every call, so tests drive it with plain values.
//!
//! # How the controller drives it
//!
//! - [`Governor::on_throttle`] for every `Throttle` an agent reports, and
//!   [`Governor::on_quota`] for quota headers of ordinary responses (an agent should send
//!   its latest ones every 100–250 ms while it has traffic, with `at` = the response's
//!   arrival, not the send time of the report);
//! - [`Governor::on_tick`] every 100–250 ms, with the latest measured fleet accepted rate
//!   (it may be refreshed less often, e.g. from 1 s snapshots);
//! - every [`FleetDecision`] returned goes through [`agent_shares`] to the agents.
//!
//! # Why this gets close to the limit with almost no 429s
//!
//! Think of a fixed window of `L` requests per `W` seconds shared by every agent. What a
//! fixed window rewards is spending the whole quota each window, and never sending into
//! a spent one; idling after the quota is spent costs nothing.
//!
//! **With quota headers** (`remaining`, `reset`) the governor knows the budget and paces
//! at `quota_margin × remaining / time_to_reset`, recomputed on every report and tick.
//! Re-pacing continuously from what is left is self-correcting: if the fleet under-spends
//! the rate rises, if it over-spends (stale reports, agents joining) it falls; with a
//! margin below 1 what is left decays like `(time left / W)^margin`, so the rate never
//! spikes at the end of a window and the quota is spent almost entirely. Details that
//! turned out to matter (see `governor/sim.rs`, which checks the benchmark targets):
//!
//! - whole-second resets are rounded by the server one way or the other, so a reset only
//!   says "within a second of `at + reset`"; intersecting the reports narrows it to about
//!   one second, `[earliest, latest]`. The quota is paced to be spent a little before the
//!   **earliest** reset (a lead of `min(1 s, W/20)`, so a fleet that sends in whole
//!   requests still gets the last ones out), and the window counts as over only at the
//!   **latest**; then it is rolled forward (`remaining = limit`) until fresh reports
//!   replace the prediction;
//! - that second costs a short window dearly (half of a 2 s window against a limiter
//!   whose window opens with the first request after the last one closed), so the
//!   governor learns the rounding: pacing keeps 2 requests for after the earliest
//!   reset; a reset of 0 then means rounded down, and a next window that opens a second
//!   too early for that means rounded up. Known rounding puts each report's reset in a
//!   one-second interval on one side of `at + reset`, so the windows' ends are known to
//!   within a report interval; the quota is then paced right up to the latest end (no
//!   lead, no idle gap), and a 429 in a spent window waits only until then (not its
//!   whole-second Retry-After). Reports no rounding up explains fall back to ±1 s;
//! - between reports, what the fleet sent is subtracted (at the smaller of the allowed
//!   and the accepted rate); when by that count nothing is left, or a report says so, the
//!   fleet pauses until the window has surely reset rather than trickle into 429s;
//! - a 429 while the paced quota is spent is no news: pause until the reset, no cut;
//! - a report may be ~100 ms older than its `at` (the controller stamps it on receipt),
//!   so the last "0 left" of a window can arrive after the window's reset, or after the
//!   next window's first report. Such a straggler (its reset may be the one already
//!   passed, and it shows far less left than the window in force) is ignored: read as
//!   news it paused the fleet until its own reset interval ended, up to a whole window
//!   past the reset.
//!
//! **Limiters that free capacity continuously** (a sliding window counter, a token
//! bucket, GCRA) say so in their headers: after a window's reset `remaining` does not
//! jump back to the limit (the previous window still counts), or it rises within a
//! window. Pacing their quota as a window idles (0.88 of a sliding window's limit), so
//! once seen the key is paced as a rate: `quota_margin × limit / window` (`window` = the
//! longest reset seen, `burst / rate` for a bucket), slowing down in proportion only
//! when less than 2 % of the limit is left; what the fleet sends beyond that refill is
//! counted against `remaining` between reports, a 429 neither cuts nor pauses the fleet
//! (the throttled agent waits its Retry-After), and no pause waits for a reset.
//!
//! **With Retry-After only** the first window is exhausted: every agent stops at its own
//! first 429 (locally, at once) and the governor makes ONE cut per event
//! (`decrease × min(measured, allowed)`) and pauses the fleet until `at + Retry-After`
//! (the window's end, for a fixed window), with resumes spread over `resume_jitter` so the
//! new window is not hit by a herd. Reports until a cut window after the pause belong to
//! the same event; one that comes after an early resume teaches the governor that the
//! server rounds its delays down, and later whole-second delays get a second more. Then
//! the governor **learns the ceiling**: what the fleet was allowed to send over one cycle
//! (resume → the next event's resume) divided by its length is what the API sustains
//! (`L/W` for a fixed window). After a cut the rate climbs fast (`increase_per_s`) to
//! `quota_margin × ceiling`, then creeps 1 % of the ceiling per cycle, to find a raised
//! limit without hitting the old one every window. Cycles much longer than the shortest
//! (quiet windows, then a probe too far) can only raise the ceiling; single-window cycles
//! replace it, so a lowered limit is followed within a window.
//!
//! A whole-second Retry-After only says "within the second before" (rounded up, the
//! window may reset up to a second earlier, half of a 2 s window), so unless the key
//! has quota headers (which tell the window's end better) the agent whose 429 started
//! the pause **scouts** it ([`Scout`]): it resumes a second early, at most
//! [`SCOUT_RATE`], takes its 429s without pausing or reporting them, and reports its
//! first answer that gets through; the governor then ends the pause for every agent
//! ([`Governor::on_opened`]) and measures the cycle the cut closed to that real resume.
//! Against flowsim's 100 per 2 s this took Retry-After-only goodput from about 0.91 to
//! about 0.96 of the limit, for a few more 429s (the scout's, 0.3–0.5 % of attempts).
//!
//! A cycle measures the waiting along with the limit, and a whole-second Retry-After
//! waits up to a second past a 2 s window's reset, so the governor also keeps a
//! **bracket** (`state/bracket.rs`): the rate that ran a quiet stretch (2 cycles)
//! without a throttle is sustainable, the rate of the last throttle is too much. Cuts go
//! back to the sustainable rate, probes above it step halfway to "too much" and hold
//! there for a quiet stretch, and once the two are within 8 % the rate stays 3 % below
//! "too much" for a minute. A Retry-After of 0 on a 429 is a delay rounded down (the
//! next ones get a second more).
//!
//! **Without either** it is plain AIMD, as the AWS SDK's adaptive mode: cut to
//! `decrease × min(measured, allowed)`, add `increase_per_s` per second of quiet. The
//! measured rate is the larger of the agents' own rates and the highest accepted rate of
//! the last 3 s (at the instant of a 429 the accepted rate has already collapsed).
//!
//! Rates are never above the plan rate and never below `min_rate` (unless the plan asks
//! for less). A decrease is announced once it exceeds 2 %, an increase once it exceeds
//! 5 % (or reaches the plan rate, or a continuous limiter's full pace), so agents are not
//! flooded with adjustments (about 3–4 decisions per second per key in the simulations).
//! The timeline ([`Governor::events`]) keeps cuts, pauses and recoveries one by one and
//! merges consecutive pacing adjustments of a key while the rate stays within 10 % of
//! where the event started.
//!
//! Every limit key (one per credential) has its own state: a 429 on one key never cuts
//! another, and the controller sends a key's decisions only to the agents on that key.

mod quota;
mod shares;
#[cfg(test)]
mod sim;
mod state;
#[cfg(test)]
mod tests;
mod timeline;
mod types;

use std::collections::BTreeMap;
use std::time::Duration;

pub use shares::{AgentAdjust, agent_shares};
use state::{Bound, KeyState, Outcome};
pub use types::{
    EventKind, FleetDecision, GovernorConfig, GovernorEvent, QuotaReport, SCOUT_RATE, Scout,
    ThrottleReport,
};

/// A decrease is announced once it exceeds this fraction of the announced rate …
const ANNOUNCE_DECREASE: f64 = 0.02;
/// … an increase once it exceeds this one.
const ANNOUNCE_INCREASE: f64 = 0.05;
/// Ticks further apart than this count as this long (a stalled controller).
const MAX_TICK: Duration = Duration::from_secs(5);

/// The fleet governor; see the module docs.
#[derive(Debug)]
pub struct Governor {
    config: GovernorConfig,
    keys: BTreeMap<String, KeyState>,
    events: Vec<GovernorEvent>,
    last_tick: Option<Duration>,
    /// Fleet accepted rate at the last tick, handed to keys seen for the first time.
    last_accepted: f64,
}

impl Governor {
    pub fn new(config: GovernorConfig) -> Self {
        Self {
            config,
            keys: BTreeMap::new(),
            events: Vec::new(),
            last_tick: None,
            last_accepted: 0.0,
        }
    }

    pub fn config(&self) -> &GovernorConfig {
        &self.config
    }

    /// A throttled response. Returns a decision for the first report of an event (one
    /// cut, maybe a pause) and when a later report of the same event asks for a much
    /// longer pause; `None` for the rest of the event.
    pub fn on_throttle(&mut self, now: Duration, report: ThrottleReport) -> Option<FleetDecision> {
        let state = self
            .keys
            .entry(report.limit_key.clone())
            .or_insert_with(|| KeyState::new(&self.config, self.last_accepted));
        let outcome = state.on_throttle(&self.config, now, &report);
        self.conclude(now, &report.limit_key, outcome)
    }

    /// Quota headers of ordinary responses: re-paces the key, or pauses it when the quota
    /// is exhausted. Returns a decision when the announced rate should change.
    pub fn on_quota(&mut self, now: Duration, report: QuotaReport) -> Option<FleetDecision> {
        let state = self
            .keys
            .entry(report.limit_key.clone())
            .or_insert_with(|| KeyState::new(&self.config, self.last_accepted));
        let outcome = state.on_quota(&self.config, now, &report);
        if outcome.pause.is_some() {
            return self.conclude(now, &report.limit_key, outcome);
        }
        self.announce_if_changed(now, &report.limit_key)
    }

    /// The scout of a paused key got an answer that is no throttle, at `now`: the pause
    /// ends for every agent. `None` unless `agent` scouts a pause of `key` in force.
    pub fn on_opened(&mut self, now: Duration, key: &str, agent: &str) -> Option<FleetDecision> {
        let state = self.keys.get_mut(key)?;
        let old = state.announced;
        let why = state.on_opened(&self.config, now, agent)?;
        let rate = state.decision_rate(&self.config, now);
        self.record(now, EventKind::Resume, key, old, rate, &why);
        let mut decision = self.decide(now, key, rate, why);
        decision.resume = true;
        Some(decision)
    }

    /// Periodic tick (every 100–500 ms) with the fleet's accepted requests per second
    /// over the last interval (all keys together; split between keys in proportion to
    /// their allowed rates). Recovers rates and follows quota windows. Returns at most
    /// one decision: the key whose rate moved most; others follow on later ticks.
    pub fn on_tick(&mut self, now: Duration, accepted_rps: f64) -> Option<FleetDecision> {
        let dt = self
            .last_tick
            .map_or(Duration::ZERO, |t| now.saturating_sub(t))
            .min(MAX_TICK);
        self.last_tick = Some(self.last_tick.map_or(now, |t| t.max(now)));
        let accepted = if accepted_rps.is_finite() && accepted_rps > 0.0 {
            accepted_rps
        } else {
            0.0
        };
        self.last_accepted = accepted;
        let total: f64 = self.keys.values().map(|s| s.current).sum();
        let count = self.keys.len() as f64;
        for state in self.keys.values_mut() {
            let share = if total > 0.0 {
                state.current / total
            } else {
                1.0 / count
            };
            state.on_tick(&self.config, now, dt, accepted * share);
        }
        // Pauses first (one per tick; another key's waits for the next tick) …
        let paused = self
            .keys
            .iter()
            .find(|(_, s)| s.has_pending())
            .map(|(k, _)| k.clone());
        if let Some(key) = paused {
            let pause = self.keys.get_mut(&key).and_then(KeyState::take_pending);
            let outcome = Outcome {
                pause,
                ..Outcome::default()
            };
            return self.conclude(now, &key, outcome);
        }
        // … then a scout whose pause ended without an opening goes back to its share …
        let scouted = self
            .keys
            .iter_mut()
            .find_map(|(k, s)| s.take_scout_over().then(|| k.clone()));
        if let Some(key) = scouted {
            let rate = self.keys[&key].decision_rate(&self.config, now);
            let why = "the scout saw no opening: the fleet resumed when the API said".to_owned();
            return Some(self.decide(now, &key, rate, why));
        }
        // … then the key whose rate moved most.
        let key = self
            .keys
            .iter()
            .filter(|(_, s)| {
                should_announce(
                    &self.config,
                    s.announced,
                    s.decision_rate(&self.config, now),
                ) || s.back_to_cruise(&self.config, now)
            })
            .max_by(|(_, a), (_, b)| {
                relative_change(a, &self.config, now).total_cmp(&relative_change(
                    b,
                    &self.config,
                    now,
                ))
            })
            .map(|(k, _)| k.clone())?;
        self.announce_if_changed(now, &key)
    }

    /// The next run time at which time alone changes a decision: the latest reset of a
    /// quota window still to come. Ticking then (not only on the periodic tick) paces a
    /// new window from its first moment.
    pub fn next_wake(&self, now: Duration) -> Option<Duration> {
        self.keys.values().filter_map(|s| s.next_wake(now)).min()
    }

    /// The plan's fleet rate changed (a ramp stage). Rates above it come down at once;
    /// read them back with [`Governor::allowed_rate`].
    pub fn set_plan_rate(&mut self, now: Duration, rate: f64) {
        self.config.plan_rate = if rate.is_finite() { rate.max(0.0) } else { 0.0 };
        for state in self.keys.values_mut() {
            state.on_plan_rate(&self.config, now);
        }
    }

    /// The fleet-wide rate allowed now for a key (the plan rate for a key never seen).
    pub fn allowed_rate(&self, key: &str) -> f64 {
        self.keys
            .get(key)
            .map_or(self.config.plan_rate, |s| s.current)
    }

    /// Run time until which a key is paused, if it is paused at `now`.
    pub fn paused_until(&self, key: &str, now: Duration) -> Option<Duration> {
        self.keys.get(key)?.pause_until(now)
    }

    /// The decision in force for a key at `now` (the plan rate for a key not seen yet),
    /// for an agent that joins it; nothing is announced.
    pub fn current_decision(&self, now: Duration, key: &str, reason: String) -> FleetDecision {
        self.decision(now, key, self.allowed_rate(key), reason)
    }

    /// The timeline of cuts, pauses, recoveries and quota pacing, oldest first.
    pub fn events(&self) -> &[GovernorEvent] {
        &self.events
    }

    /// Records the events of an outcome and builds its decision.
    fn conclude(&mut self, now: Duration, key: &str, outcome: Outcome) -> Option<FleetDecision> {
        let state = self.keys.get(key)?;
        let rate = state.decision_rate(&self.config, now);
        let old = state.announced;
        let mut reasons = Vec::new();
        if let Some((cut_old, cut_new, why)) = outcome.cut {
            self.record(now, EventKind::Cut, key, cut_old, cut_new, &why);
            reasons.push(why);
        }
        if let Some((until, why)) = outcome.pause {
            let why = format!("{why}: fleet paused until {:.2} s", until.as_secs_f64());
            self.record(now, EventKind::Pause, key, old, rate, &why);
            reasons.push(why);
        }
        if reasons.is_empty() {
            return None;
        }
        Some(self.decide(now, key, rate, reasons.join("; ")))
    }

    /// Announces a key's rate when it moved past the thresholds.
    fn announce_if_changed(&mut self, now: Duration, key: &str) -> Option<FleetDecision> {
        let state = self.keys.get(key)?;
        let rate = state.decision_rate(&self.config, now);
        let old = state.announced;
        if !should_announce(&self.config, old, rate) && !state.back_to_cruise(&self.config, now) {
            return None;
        }
        let (kind, why) = match state.bound() {
            Bound::Quota => (
                EventKind::QuotaPace,
                state.quota_text(&self.config, now).unwrap_or_default(),
            ),
            Bound::Aimd => (
                EventKind::Recover,
                "no throttle: additive increase".to_owned(),
            ),
            Bound::Plan if rate > old => (EventKind::Recover, "back at the plan rate".to_owned()),
            Bound::Plan => (EventKind::Recover, "following the plan rate".to_owned()),
        };
        let why = format!("{why}: {old:.2} → {rate:.2} rps");
        self.record(now, kind, key, old, rate, &why);
        Some(self.decide(now, key, rate, why))
    }

    fn decide(&mut self, now: Duration, key: &str, rate: f64, reason: String) -> FleetDecision {
        let state = self.keys.get_mut(key).expect("decided for a known key");
        state.announced = rate;
        self.decision(now, key, rate, reason)
    }

    fn decision(&self, now: Duration, key: &str, rate: f64, reason: String) -> FleetDecision {
        let state = self.keys.get(key);
        FleetDecision {
            limit_key: key.to_owned(),
            rate,
            pause_until: state.and_then(|s| s.pause_until(now)),
            resume_spread: self.config.resume_jitter,
            interleave: state.is_some_and(|s| s.resumes_at_pace()),
            scout: state.and_then(|s| s.scout(now)),
            resume: false,
            reason,
            at: now,
        }
    }
}

fn should_announce(config: &GovernorConfig, announced: f64, rate: f64) -> bool {
    if announced <= 0.0 {
        return rate > 0.0;
    }
    let change = (rate - announced) / announced;
    change <= -ANNOUNCE_DECREASE
        || change >= ANNOUNCE_INCREASE
        || (rate > announced && rate >= config.plan_rate)
}

fn relative_change(state: &KeyState, config: &GovernorConfig, now: Duration) -> f64 {
    let rate = state.decision_rate(config, now);
    ((rate - state.announced) / state.announced.max(f64::MIN_POSITIVE)).abs()
}

//! The capacity probe: ramp the fleet past the API's limit under the coordinated
//! policy, let the governor converge, and report the sustainable rate — the highest
//! steady accepted rate whose throttle ratio stays under epsilon — with the window it
//! infers from the API's reset headers.

use std::time::Duration;

use crescendo_plan::{Load, OpenLoad, Plan, Policy, RateStage};
use serde::Serialize;

use crate::report::summary::IntervalSummary;

/// How a probe runs.
#[derive(Debug, Clone, Copy)]
pub struct ProbeSettings {
    /// The whole probe, ramp included.
    pub duration: Duration,
    /// A steady stretch counts only while throttled / requests stays below this.
    pub epsilon: f64,
}

/// What the probe found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProbeResult {
    /// Highest steady accepted rate, requests per second.
    pub sustainable_rps: f64,
    /// Where the rate was held from and for how long (two back-to-back stretches of two
    /// inferred windows each), seconds since the start.
    pub from_s: u64,
    pub window_s: u64,
    /// The API's window as inferred from its reset headers (longest reset seen), if any.
    pub inferred_window_s: Option<f64>,
    /// Throttled share of attempts in that stretch.
    pub throttled_ratio: f64,
    /// The ceiling the probe ramped to.
    pub ceiling_rps: f64,
}

/// The ramp takes the first 40 % of the probe; the rest holds at the ceiling.
fn ramp(probe: Duration) -> Duration {
    probe.mul_f64(0.4)
}

/// The stretch to measure over: two inferred windows, at least 10 s, and short enough
/// that two of them fit in the hold phase before its last second.
pub fn stretch_for(inferred_window_s: Option<f64>, probe: Duration) -> u64 {
    let two_windows = inferred_window_s.map_or(10.0, |w| (2.0 * w).ceil());
    let hold = probe.saturating_sub(ramp(probe));
    let most = ((hold.as_secs_f64() - 1.0) / 2.0).floor().max(1.0);
    two_windows.max(10.0).min(most) as u64
}

pub use crate::error::ProbeError;

/// The plan a probe runs, derived from `plan` by editing the model: an open model
/// ramping from a twentieth of the ceiling to the ceiling over 40 % of the probe, then
/// holding it; the coordinated policy; no thresholds; bodies inline (so
/// [`Plan::to_toml`](crescendo_plan::Plan::to_toml) of it, which is what the agents
/// receive, parses back to it). Returns it with the ceiling, iterations per second.
///
/// The ceiling is the plan's peak rate: a probe never offers more than the plan allows.
/// An open plan keeps its `max_in_flight`. A closed plan's peak rate is its peak VUs
/// over its think time (a VU starts at most one iteration per think time), capped at
/// [`MAX_RATE`](crescendo_plan::MAX_RATE), and its cap in flight is its peak VUs (a VU
/// has at most one request in flight).
pub fn probe_plan(plan: &Plan, settings: ProbeSettings) -> Result<(Plan, f64), ProbeError> {
    let (ceiling, max_in_flight) = match &plan.load {
        Load::Open(open) => (open.peak_rate(), open.max_in_flight),
        Load::Closed(closed) if closed.think_time.is_zero() => return Err(ProbeError::NoPeakRate),
        Load::Closed(closed) => {
            let peak = closed.peak_vus();
            let rate = f64::from(peak) / closed.think_time.as_secs_f64();
            (rate.min(crescendo_plan::MAX_RATE), peak)
        }
    };
    let ramp = ramp(settings.duration).max(Duration::from_millis(1));
    let hold = settings
        .duration
        .saturating_sub(ramp)
        .max(Duration::from_millis(1));
    let stage = |duration| RateStage {
        duration,
        target: ceiling,
    };
    let mut probe = plan.clone();
    probe.inline_body_files();
    probe.load = Load::Open(OpenLoad {
        start_rate: ceiling / 20.0,
        stages: vec![stage(ramp), stage(hold)],
        max_in_flight,
    });
    if probe.backoff.policy == Policy::None {
        // Policy none forced max_retries to 0; coordinated gets the default back.
        probe.backoff.max_retries = 3;
    }
    probe.backoff.policy = Policy::Coordinated;
    probe.thresholds.clear();
    Ok((probe, ceiling))
}

/// Requests, successes and throttles over a run of seconds.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    ok: u64,
    requests: u64,
    throttled: u64,
}

impl Counts {
    fn over(seconds: &[IntervalSummary]) -> Self {
        seconds.iter().fold(Self::default(), |c, i| {
            c.and(Self {
                ok: i.ok,
                requests: i.requests,
                throttled: i.throttled,
            })
        })
    }

    fn and(self, other: Self) -> Self {
        Self {
            ok: self.ok + other.ok,
            requests: self.requests + other.requests,
            throttled: self.throttled + other.throttled,
        }
    }

    fn throttled_ratio(self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.throttled as f64 / self.requests as f64
        }
    }
}

/// The highest accepted rate the fleet held **steadily**: over two back-to-back
/// stretches of `stretch_s` whole seconds, starting at `after_s` or later (once the ramp
/// is over), each with a throttle ratio under `epsilon`; the lower of the two rates
/// counts. A token bucket's or GCRA's burst lets more than the rate through until it
/// is drained, so a single stretch can catch the drain's tail (1.10 of the rate was
/// seen right after a ramp); a draining burst does not hold up over the stretch after
/// it, a sustainable rate does. The last second is left out (the load ends inside it).
/// Returns the rate, where the pair starts, and the throttle ratio over both.
pub fn sustainable(
    timeline: &[IntervalSummary],
    stretch_s: u64,
    after_s: u64,
    epsilon: f64,
) -> Option<(f64, u64, f64)> {
    let full = timeline.len().saturating_sub(1);
    let w = usize::try_from(stretch_s.max(1)).ok()?;
    if full < 2 * w {
        return None;
    }
    // From the latest start back, so that of equal rates the earliest is kept.
    (0..=full - 2 * w)
        .rev()
        .filter(|&start| timeline[start].t >= after_s)
        .filter_map(|start| {
            let first = Counts::over(&timeline[start..start + w]);
            let second = Counts::over(&timeline[start + w..start + 2 * w]);
            let steady = first.throttled_ratio() < epsilon && second.throttled_ratio() < epsilon;
            let rate = first.ok.min(second.ok) as f64 / w as f64;
            steady.then(|| (rate, timeline[start].t, first.and(second).throttled_ratio()))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// A finished probe: the run itself and what it found.
#[derive(Debug)]
pub struct Probe {
    pub outcome: crate::RunOutcome,
    pub summary: crate::report::Summary,
    /// `None` when no steady stretch stayed under epsilon.
    pub result: Option<ProbeResult>,
}

/// Run a probe of `plan` on `agents` agents attached to `controller`. The agents
/// receive the probe plan's [`to_toml`](crescendo_plan::Plan::to_toml) (also the
/// report's plan text); `configure` sets the rest of the request, such as `files` for
/// a plan with a `[data] file`.
pub async fn run_probe(
    controller: &crate::Controller,
    plan: &Plan,
    agents: u32,
    settings: ProbeSettings,
    configure: impl FnOnce(&mut crate::RunRequest),
) -> Result<Probe, crate::ControllerError> {
    let (probe, ceiling) = probe_plan(plan, settings)?;
    let text = probe.to_toml();
    let mut request = crate::RunRequest::new(probe, text, agents)?;
    configure(&mut request);
    let outcome = controller.run(request).await?;
    let summary = crate::report::summarize(&outcome);
    let stretch_s = stretch_for(summary.longest_reset_s, settings.duration);
    let after_s = ramp(settings.duration).as_secs();
    let result = sustainable(&summary.timeline, stretch_s, after_s, settings.epsilon).map(
        |(sustainable_rps, from_s, throttled_ratio)| ProbeResult {
            sustainable_rps,
            from_s,
            window_s: 2 * stretch_s,
            inferred_window_s: summary.longest_reset_s,
            throttled_ratio,
            ceiling_rps: ceiling,
        },
    );
    Ok(Probe {
        outcome,
        summary,
        result,
    })
}

#[cfg(test)]
mod tests;

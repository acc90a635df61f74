//! The capacity probe: ramp the fleet past the API's limit under the coordinated
//! policy, let the governor converge, and report the sustainable rate — the highest
//! steady accepted rate whose throttle ratio stays under epsilon — with the window it
//! infers from the API's reset headers.

use std::time::Duration;

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

/// Rewrite a plan for probing: coordinated backoff, an open model ramping from a
/// twentieth of the plan's peak rate to the peak over 40 % of the probe, then holding.
/// The plan's peak rate is the ceiling: a probe never offers more than the plan allows.
pub fn probe_plan(
    text: &str,
    origin: &str,
    settings: ProbeSettings,
) -> Result<(String, f64), String> {
    let plan = crescendo_plan::parse(text, origin).map_err(|e| e.to_string())?;
    let crescendo_plan::Load::Open(open) = &plan.load else {
        return Err(format!(
            "{origin}: load: the probe needs the open model (a rate to ramp)"
        ));
    };
    let ceiling = open.peak_rate();
    let mut table: toml::Table = text.parse().map_err(|e| format!("{origin}: {e}"))?;
    let ramp = ramp(settings.duration).as_millis().max(1);
    let hold = settings.duration.as_millis().saturating_sub(ramp).max(1);
    let mut load = toml::Table::new();
    load.insert("model".into(), toml::Value::String("open".into()));
    load.insert("start_rate".into(), toml::Value::Float(ceiling / 20.0));
    load.insert(
        "max_in_flight".into(),
        toml::Value::Integer(i64::from(open.max_in_flight)),
    );
    let stage = |ms: u128| {
        let mut t = toml::Table::new();
        t.insert("duration".into(), toml::Value::String(format!("{ms}ms")));
        t.insert("target".into(), toml::Value::Float(ceiling));
        toml::Value::Table(t)
    };
    load.insert(
        "stages".into(),
        toml::Value::Array(vec![stage(ramp), stage(hold)]),
    );
    table.insert("load".into(), toml::Value::Table(load));
    let backoff = table
        .entry("backoff")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(b) = backoff {
        b.insert("policy".into(), toml::Value::String("coordinated".into()));
    }
    table.remove("thresholds");
    let probe = toml::to_string(&table).map_err(|e| e.to_string())?;
    crescendo_plan::parse(&probe, origin).map_err(|e| e.to_string())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn second(t: u64, ok: u64, throttled: u64) -> IntervalSummary {
        IntervalSummary {
            t,
            offered: ok + throttled,
            requests: ok + throttled,
            ok,
            throttled,
            errors: 0,
            p50_ms: 0.0,
            p90_ms: 0.0,
            p99_ms: 0.0,
            max_ms: 0.0,
        }
    }

    #[test]
    fn stretches_before_the_ramp_ends_do_not_count() {
        // A burst allowance that lasts the ramp, then a steady 50/s.
        let mut timeline: Vec<_> = (0..20).map(|t| second(t, 70, 0)).collect();
        timeline.extend((20..50).map(|t| second(t, 50, 0)));
        assert_eq!(sustainable(&timeline, 10, 0, 0.01).unwrap(), (70.0, 0, 0.0));
        assert_eq!(
            sustainable(&timeline, 10, 20, 0.01).unwrap(),
            (50.0, 20, 0.0)
        );
    }

    #[test]
    fn a_draining_burst_is_not_steady() {
        // After the ramp a bucket's burst still drains (60/s, then 55/s) before the
        // fleet settles at its rate of 50/s: the best single 10 s stretch holds 57.5/s,
        // but not the stretch after it.
        let mut timeline: Vec<_> = (0..5).map(|t| second(t, 60, 0)).collect();
        timeline.extend((5..10).map(|t| second(t, 55, 0)));
        timeline.extend((10..40).map(|t| second(t, 50, 0)));
        let (rate, from, _) = sustainable(&timeline, 10, 0, 0.01).unwrap();
        assert_eq!((rate, from), (50.0, 0));
        // A rate held over both stretches is the lower of the two.
        let (rate, _, _) = sustainable(&timeline[5..], 10, 0, 0.01).unwrap();
        assert_eq!(rate, 50.0);
    }

    #[test]
    fn the_best_steady_stretch_under_epsilon_wins() {
        // A ramp, a throttled overshoot, then a steady 50/s; the last second is partial.
        let mut timeline: Vec<_> = (0..5).map(|t| second(t, 10 * t, 0)).collect();
        timeline.extend((5..8).map(|t| second(t, 60, 30)));
        timeline.extend((8..30).map(|t| second(t, 50, 0)));
        timeline.push(second(30, 500, 0));
        let (rate, from, ratio) = sustainable(&timeline, 10, 0, 0.01).unwrap();
        assert_eq!((rate, ratio), (50.0, 0.0));
        assert!(from >= 8);
        // Both stretches must stay under epsilon: the overshoot's 429s rule out 0..20.
        let mut timeline: Vec<_> = (0..20).map(|t| second(t, 70, 0)).collect();
        timeline[15].throttled = 20;
        timeline[15].requests += 20;
        timeline.extend((20..41).map(|t| second(t, 50, 0)));
        assert_eq!(sustainable(&timeline, 10, 0, 0.01).unwrap().1, 16);
    }

    #[test]
    fn nothing_qualifies_when_everything_is_throttled() {
        let timeline: Vec<_> = (0..30).map(|t| second(t, 50, 50)).collect();
        assert_eq!(sustainable(&timeline, 10, 0, 0.01), None);
    }

    #[test]
    fn two_stretches_must_fit() {
        let mut timeline: Vec<_> = (0..20).map(|t| second(t, 50, 0)).collect();
        assert_eq!(sustainable(&timeline, 10, 0, 0.01), None);
        // The throttle ratio reported is the pair's.
        timeline[3] = second(3, 50, 1);
        let (rate, from, ratio) = sustainable(&timeline, 9, 0, 0.01).unwrap();
        assert_eq!((rate, from), (50.0, 0));
        assert!((ratio - 1.0 / 901.0).abs() < 1e-12, "{ratio}");
    }

    #[test]
    fn the_probe_plan_ramps_to_the_plans_peak_with_coordinated_backoff() {
        let text = r#"
name = "p"
[target]
base_url = "http://127.0.0.1:9"
[[scenario.steps]]
name = "s"
method = "PUT"
path = "/x"
[load]
max_in_flight = 50
stages = [ { duration = "5s", target = 200 } ]
[backoff]
policy = "none"
[thresholds]
"errors" = "== 0"
"#;
        let settings = ProbeSettings {
            duration: Duration::from_secs(60),
            epsilon: 0.01,
        };
        let (probe, ceiling) = probe_plan(text, "p.toml", settings).unwrap();
        assert_eq!(ceiling, 200.0);
        let plan = crescendo_plan::parse(&probe, "probe").unwrap();
        assert_eq!(plan.backoff.policy, crescendo_plan::Policy::Coordinated);
        assert_eq!(plan.duration(), Duration::from_secs(60));
        assert!(plan.thresholds.is_empty());
        let crescendo_plan::Load::Open(open) = plan.load else {
            panic!("open model")
        };
        assert_eq!(open.rate_at(Duration::ZERO), 10.0);
        assert_eq!(open.rate_at(Duration::from_secs(30)), 200.0);
        assert_eq!(open.max_in_flight, 50);
    }

    #[test]
    fn the_stretch_is_two_windows_within_bounds() {
        assert_eq!(stretch_for(Some(10.0), Duration::from_secs(120)), 20);
        assert_eq!(stretch_for(Some(2.0), Duration::from_secs(120)), 10);
        assert_eq!(stretch_for(None, Duration::from_secs(120)), 10);
        // 90 s probe: 54 s of hold, so two stretches of at most 26 s before its last second.
        assert_eq!(stretch_for(Some(60.0), Duration::from_secs(90)), 26);
    }
}

/// A finished probe: the run itself and what it found.
#[derive(Debug)]
pub struct Probe {
    pub outcome: crate::RunOutcome,
    pub summary: crate::report::Summary,
    /// `None` when no steady stretch stayed under epsilon.
    pub result: Option<ProbeResult>,
}

/// Run a probe of the plan `text` on `agents` agents attached to `controller`.
pub async fn run_probe(
    controller: &crate::Controller,
    text: &str,
    origin: &str,
    agents: u32,
    settings: ProbeSettings,
    configure: impl FnOnce(&mut crate::RunRequest),
) -> Result<Probe, crate::ControllerError> {
    let (probe_text, ceiling) =
        probe_plan(text, origin, settings).map_err(crate::ControllerError::Probe)?;
    let plan = crescendo_plan::parse(&probe_text, origin).map_err(crate::ControllerError::Plan)?;
    let mut request = crate::RunRequest::new(plan, probe_text, agents)?;
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

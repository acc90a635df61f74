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
    /// Where that stretch starts and how long it is, seconds since the start.
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

/// The stretch to measure over: two inferred windows, at least 10 s, at most a third of
/// the hold phase.
pub fn stretch_for(inferred_window_s: Option<f64>, probe: Duration) -> u64 {
    let two_windows = inferred_window_s.map_or(10.0, |w| (2.0 * w).ceil());
    let hold = probe.saturating_sub(ramp(probe));
    let most = (hold.as_secs_f64() / 2.0).floor().max(1.0);
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

/// The highest accepted rate over any stretch of `window_s` whole seconds, starting at
/// `after_s` or later (once the ramp is over, so an initial burst allowance does not
/// count as sustainable), whose throttle ratio stays under `epsilon`. The last second
/// is left out (the load ends inside it).
pub fn sustainable(
    timeline: &[IntervalSummary],
    window_s: u64,
    after_s: u64,
    epsilon: f64,
) -> Option<(f64, u64, f64)> {
    let full = timeline.len().saturating_sub(1);
    let w = usize::try_from(window_s.max(1)).ok()?;
    if full < w {
        return None;
    }
    (0..=full - w)
        .filter(|&start| timeline[start].t >= after_s)
        .filter_map(|start| {
            let stretch = &timeline[start..start + w];
            let ok: u64 = stretch.iter().map(|i| i.ok).sum();
            let requests: u64 = stretch.iter().map(|i| i.requests).sum();
            let throttled: u64 = stretch.iter().map(|i| i.throttled).sum();
            let ratio = if requests == 0 {
                0.0
            } else {
                throttled as f64 / requests as f64
            };
            (ratio < epsilon).then(|| (ok as f64 / w as f64, stretch[0].t, ratio))
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
        // A burst allowance early on, then a steady 50/s.
        let mut timeline: Vec<_> = (0..4).map(|t| second(t, 120, 0)).collect();
        timeline.extend((4..30).map(|t| second(t, 50, 0)));
        assert_eq!(sustainable(&timeline, 10, 0, 0.01).unwrap().0, 78.0);
        assert_eq!(sustainable(&timeline, 10, 4, 0.01).unwrap().0, 50.0);
    }

    #[test]
    fn the_best_steady_stretch_under_epsilon_wins() {
        // A ramp, a throttled overshoot, then a steady 50/s; the last second is partial.
        let mut timeline: Vec<_> = (0..5).map(|t| second(t, 10 * t, 0)).collect();
        timeline.extend((5..8).map(|t| second(t, 60, 30)));
        timeline.extend((8..20).map(|t| second(t, 50, 0)));
        timeline.push(second(20, 500, 0));
        let (rate, from, ratio) = sustainable(&timeline, 10, 0, 0.01).unwrap();
        assert_eq!((rate, ratio), (50.0, 0.0));
        assert!(from >= 8);
    }

    #[test]
    fn nothing_qualifies_when_everything_is_throttled() {
        let timeline: Vec<_> = (0..20).map(|t| second(t, 50, 50)).collect();
        assert_eq!(sustainable(&timeline, 10, 0, 0.01), None);
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
        // 90 s probe: 54 s of hold, so at most 27 s.
        assert_eq!(stretch_for(Some(60.0), Duration::from_secs(90)), 27);
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
        probe_plan(text, origin, settings).map_err(crate::ControllerError::Args)?;
    let plan = crescendo_plan::parse(&probe_text, origin).map_err(crate::ControllerError::Plan)?;
    let mut request = crate::RunRequest::new(plan, probe_text, agents);
    configure(&mut request);
    let outcome = controller.run(request).await?;
    let summary = crate::report::summarize(&outcome);
    let window_s = stretch_for(summary.longest_reset_s, settings.duration);
    let after_s = ramp(settings.duration).as_secs();
    let result = sustainable(&summary.timeline, window_s, after_s, settings.epsilon).map(
        |(sustainable_rps, from_s, throttled_ratio)| ProbeResult {
            sustainable_rps,
            from_s,
            window_s,
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

//! Probe tests: the sustainable-rate analysis and the probe plan.

use super::*;

fn second(t: u64, ok: u64, throttled: u64) -> IntervalSummary {
    IntervalSummary {
        t,
        offered: ok + throttled,
        planned: None,
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

const SETTINGS: ProbeSettings = ProbeSettings {
    duration: Duration::from_secs(60),
    epsilon: 0.01,
};

/// What an agent does with the text it receives: parse it with the files shipped with
/// it (only a data file's header once bodies are inline).
fn on_agent(probe: &Plan, dir: &crescendo_plan::DirFiles) -> Plan {
    let text = probe.to_toml();
    let shipped = crescendo_plan::BundleFiles(probe.bundle_files(dir).unwrap());
    crescendo_plan::parse_with(&text, "probe", &shipped).unwrap_or_else(|e| panic!("{e}\n{text}"))
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
    let plan = crescendo_plan::parse(text, "p.toml").unwrap();
    let (probe, ceiling) = probe_plan(&plan, SETTINGS).unwrap();
    assert_eq!(ceiling, 200.0);
    assert_eq!(probe.backoff.policy, Policy::Coordinated);
    assert_eq!(probe.backoff.max_retries, 3);
    assert_eq!(probe.duration(), Duration::from_secs(60));
    assert!(probe.thresholds.is_empty());
    let Load::Open(open) = &probe.load else {
        panic!("open model")
    };
    assert_eq!(open.rate_at(Duration::ZERO), 10.0);
    assert_eq!(open.rate_at(Duration::from_secs(24)), 200.0);
    assert_eq!(open.rate_at(Duration::from_secs(30)), 200.0);
    assert_eq!(open.max_in_flight, 50);
    // The rest of the plan is the plan's.
    assert_eq!(
        (&probe.scenario, &probe.target),
        (&plan.scenario, &plan.target)
    );
    // What the agents receive is exactly this plan.
    assert_eq!(
        crescendo_plan::parse(&probe.to_toml(), "probe").unwrap(),
        probe
    );
}

/// The bug this guards against: the probe re-parsed the plan's text without its
/// directory, so a plan with a body_file (the shipped Architect rehearsal) was refused.
#[test]
fn the_architect_plan_with_a_body_file_probes() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../plans/architect-flow-update.toml");
    let plan = crescendo_plan::load(&path).unwrap();
    assert!(plan.scenario.steps.iter().any(|s| s.body_file.is_some()));
    let (probe, ceiling) = probe_plan(&plan, SETTINGS).unwrap();
    // Closed: 50 VUs with 200 ms of think time start at most 250 iterations per second.
    assert_eq!(ceiling, 250.0);
    let Load::Open(open) = &probe.load else {
        panic!("open model")
    };
    assert_eq!((open.start_rate, open.max_in_flight), (12.5, 50));
    assert!(probe.scenario.steps.iter().all(|s| s.body_file.is_none()));
    assert_eq!(probe.scenario.steps[2].body, plan.scenario.steps[2].body);
    // Nothing needs shipping, and the text parses on an agent to the very same plan.
    let dir = crescendo_plan::DirFiles::for_plan(&path);
    assert!(probe.bundle_files(&dir).unwrap().is_empty());
    assert_eq!(on_agent(&probe, &dir), probe);
    assert_eq!(
        crescendo_plan::parse(&probe.to_toml(), "probe").unwrap(),
        probe
    );
    probe.split(2).unwrap();
}

#[test]
fn a_data_file_stays_a_file_and_a_closed_plan_needs_think_time() {
    let dir = std::env::temp_dir().join(format!("crescendo-probe-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/flows.csv"), "flowId\nf1\nf2\n").unwrap();
    std::fs::write(dir.join("body.json"), "{\"id\": \"{flowId}\"}").unwrap();
    let path = dir.join("plan.toml");
    let text = r#"
name = "files"
[target]
base_url = "http://127.0.0.1:9"
[[scenario.steps]]
name = "put"
method = "PUT"
path = "/x/{flowId}"
body_file = "body.json"
[load]
model = "closed"
think_time = "0s"
stages = [ { duration = "5s", target = 8 } ]
[data]
file = "data/flows.csv"
"#;
    std::fs::write(&path, text).unwrap();
    let plan = crescendo_plan::load(&path).unwrap();
    assert_eq!(probe_plan(&plan, SETTINGS), Err(ProbeError::NoPeakRate));
    std::fs::write(&path, text.replace("\"0s\"", "\"500ms\"")).unwrap();
    let plan = crescendo_plan::load(&path).unwrap();
    let (probe, ceiling) = probe_plan(&plan, SETTINGS).unwrap();
    assert_eq!(ceiling, 16.0);
    let dir_files = crescendo_plan::DirFiles::for_plan(&path);
    let shipped = probe.bundle_files(&dir_files).unwrap();
    assert_eq!(shipped.keys().collect::<Vec<_>>(), ["data/flows.csv"]);
    assert_eq!(on_agent(&probe, &dir_files), probe);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_stretch_is_two_windows_within_bounds() {
    assert_eq!(stretch_for(Some(10.0), Duration::from_secs(120)), 20);
    assert_eq!(stretch_for(Some(2.0), Duration::from_secs(120)), 10);
    assert_eq!(stretch_for(None, Duration::from_secs(120)), 10);
    // 90 s probe: 54 s of hold, so two stretches of at most 26 s before its last second.
    assert_eq!(stretch_for(Some(60.0), Duration::from_secs(90)), 26);
}

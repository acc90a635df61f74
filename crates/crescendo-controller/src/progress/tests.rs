//! The progress text in every form, and the numbers behind it, without a terminal.

use std::io::IsTerminal as _;

use super::*;

fn plan(stages: &[(u64, f64)]) -> Plan {
    let stages: Vec<String> = stages
        .iter()
        .map(|(s, r)| format!("{{ duration = \"{s}s\", target = {r} }}"))
        .collect();
    let text = format!(
        "name = \"p\"\n[target]\nbase_url = \"http://127.0.0.1:9\"\n[[scenario.steps]]\nname = \"s\"\nmethod = \"GET\"\npath = \"/\"\n[load]\nstages = [ {} ]\n",
        stages.join(", ")
    );
    crescendo_plan::parse(&text, "test").unwrap()
}

fn stats(latencies_ms: &[u64], throttled: u64) -> StepStats {
    let mut s = crate::aggregate::ok_stats(latencies_ms);
    s.counters.requests += throttled;
    s.counters.throttled += throttled;
    s
}

#[test]
fn the_mode_follows_the_terminal_unless_asked() {
    use ProgressMode::{Bar, Json, Plain};
    let resolve = ProgressMode::resolve;
    assert_eq!(resolve(Option::None, true), Bar);
    assert_eq!(resolve(Option::None, false), Plain);
    assert_eq!(resolve(Some(Bar), false), Plain);
    assert_eq!(resolve(Some(Bar), true), Bar);
    assert_eq!(resolve(Some(Plain), true), Plain);
    assert_eq!(resolve(Some(Json), true), Json);
    assert_eq!(resolve(Some(ProgressMode::None), true), ProgressMode::None);
}

#[test]
fn stages_are_located_with_the_time_left() {
    let stages = [Duration::from_secs(10), Duration::from_secs(20)];
    assert_eq!(
        stage_at(&stages, Duration::ZERO),
        (1, Duration::from_secs(10))
    );
    assert_eq!(
        stage_at(&stages, Duration::from_secs(12)),
        (2, Duration::from_secs(18))
    );
    assert_eq!(
        stage_at(&stages, Duration::from_secs(99)),
        (2, Duration::ZERO)
    );
    assert_eq!(stage_at(&[], Duration::from_secs(1)), (0, Duration::ZERO));
}

#[test]
fn a_tick_has_rates_since_the_last_and_last_interval_percentiles() {
    let mut p = Progress::new(ProgressMode::None, &plan(&[(10, 5.0), (20, 10.0)]));
    let started = Instant::now();
    let first = stats(&[10; 20], 0);
    let seen = |total| Observed {
        total,
        offered: 0,
        agents: 2,
        agents_total: 3,
        governor: Some((12.5, true)),
        fleet_paused: Some(Duration::from_millis(1500)),
    };
    let t1 = p.measure(started + Duration::from_secs(2), started, &seen(&first));
    assert_eq!((t1.requests, t1.rate_rps, t1.ok_rps), (20, 10.0, 10.0));
    assert!((t1.interval_p99_ms - 10.0).abs() < 0.1, "{t1:?}");
    let mut second = first.clone();
    second.add(&stats(&[500; 10], 10)).unwrap();
    let mut seen2 = seen(&second);
    seen2.offered = 40;
    let t2 = p.measure(started + Duration::from_secs(12), started, &seen2);
    assert_eq!(t2.rate_rps, 2.0, "20 more requests over 10 s");
    assert_eq!(t2.offered_rps, 4.0);
    assert!(
        (t2.interval_p50_ms - 500.0).abs() < 1.0,
        "only the new ones: {t2:?}"
    );
    assert!((t2.p50_ms - 10.0).abs() < 0.1, "overall: {t2:?}");
    assert_eq!(
        (t2.stage, t2.stages, t2.stage_left_s, t2.remaining_s),
        (2, 2, 18.0, 18.0)
    );
    assert!(t2.fleet_paused);
    assert_eq!(t2.paused_s, 1.5, "fleet (wall-clock) time under a governor");
    assert_eq!(t2.governor_rate_rps, Some(12.5));
}

fn sample() -> Tick {
    Tick {
        elapsed_s: 5.0,
        duration_s: 20.0,
        rate_rps: 14.8,
        requests: 72,
        ok: 60,
        throttled: 12,
        throttled_ratio: 12.0 / 72.0,
        retries: 3,
        paused_s: 1.2,
        p50_ms: 8.0,
        p99_ms: 12.3,
        agents: 3,
        agents_total: 3,
        stage: 1,
        stages: 2,
        stage_left_s: 5.0,
        remaining_s: 15.0,
        offered_rps: 15.0,
        ok_rps: 12.0,
        interval_p50_ms: 7.5,
        interval_p99_ms: 11.0,
        governor_rate_rps: Some(10.0),
        ..Tick::default()
    }
}

#[test]
fn the_plain_line_is_unchanged() {
    assert_eq!(
        plain_line(&sample()),
        "[   5s/20s]     14.8 req/s  ok 60  429 12 (16.7 %)  retries 3  err 0  dropped 0  paused 1.2 s  p99 12.3 ms  agents 3/3"
    );
}

#[test]
fn the_json_line_keeps_its_keys_and_adds_the_new_ones() {
    let v: serde_json::Value = serde_json::to_value(sample()).unwrap();
    for key in [
        "elapsed_s",
        "duration_s",
        "rate_rps",
        "requests",
        "ok",
        "throttled",
        "throttled_ratio",
        "retries",
        "errors",
        "dropped",
        "paused_s",
        "p50_ms",
        "p99_ms",
        "agents",
        "agents_total",
        "stage",
        "offered_rps",
        "interval_p99_ms",
        "governor_rate_rps",
        "fleet_paused",
    ] {
        assert!(v.get(key).is_some(), "{key}: {v}");
    }
}

#[test]
fn the_live_display_lines_name_everything_the_issue_asks_for() {
    let mut t = sample();
    let lines = bar_lines(&t);
    assert_eq!(
        lines[0],
        "stage 1/2  5s elapsed  5s left in stage  15s to go"
    );
    assert_eq!(
        lines[1],
        "rate   offered 15.0/s  sent 14.8/s  ok 12.0/s  governor 10.0/s"
    );
    assert_eq!(
        lines[2],
        "count  ok 60  throttled 12 (16.7 %)  errors 0  retries 3  dropped 0"
    );
    assert_eq!(
        lines[3],
        "p50/p99  last second 7.5/11.0 ms  overall 8.0/12.3 ms  agents 3/3"
    );
    t.fleet_paused = true;
    assert!(
        bar_lines(&t)[1].ends_with("fleet PAUSED"),
        "{:?}",
        bar_lines(&t)
    );
    t.governor_rate_rps = None;
    t.fleet_paused = false;
    assert!(bar_lines(&t)[1].ends_with("ok 12.0/s"));
}

#[test]
fn the_live_display_carries_each_tick_and_hides_off_a_terminal() {
    // The bars hold the tick's text and position whether or not they are drawn; off a
    // terminal (stdout under `cargo test` in CI) indicatif hides them and draws nothing.
    let display = bar::Display::new(Duration::from_secs(20));
    let t = sample();
    display.update(&t);
    let (position, length, texts, hidden) = display.shown();
    assert_eq!((position, length), (5_000, Some(20_000)), "5 s of 20 s");
    assert_eq!(texts, bar_lines(&t));
    assert_eq!(hidden, !std::io::stdout().is_terminal());
    drop(display);

    // In bar mode a tick is measured and handed to the display: nothing printed.
    let mut p = Progress::new(ProgressMode::Bar, &plan(&[(1, 1.0)]));
    let total = stats(&[1], 0);
    let seen = Observed {
        total: &total,
        offered: 1,
        agents: 1,
        agents_total: 1,
        governor: Option::None,
        fleet_paused: None,
    };
    p.tick(Instant::now(), &seen);
    let (_, length, texts, _) = p.bar.as_ref().expect("bar mode has a display").shown();
    assert_eq!(length, Some(1_000), "a 1 s plan");
    assert!(texts[0].starts_with("stage 1/1  "), "{texts:?}");
    assert_eq!(
        texts[2],
        "count  ok 1  throttled 0 (0.0 %)  errors 0  retries 0  dropped 0"
    );
    assert!(texts[3].ends_with("agents 1/1"), "{texts:?}");
}

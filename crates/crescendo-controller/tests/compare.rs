//! `compare` and `report` with the real binary: exit codes and what they print.

mod common;
use common::controller;

use std::path::{Path, PathBuf};

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("crescendo-compare-{}", std::process::id()))
        .join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A run directory holding a summary.json with these figures.
fn run_dir(name: &str, p99: f64, goodput: f64, throttled: u64) -> PathBuf {
    let d = dir(name);
    let summary = serde_json::json!({
        "run_id": name,
        "plan_name": "compare-test",
        "duration_s": 10.0,
        "agents": [{"id": "agent-1", "requests": 1000}],
        "lost_agents": [],
        "totals": {"requests": 1000, "ok": 1000 - throttled, "throttled": throttled,
                   "errors": 0, "retries": 0, "dropped": 0},
        "latency_ms": {"count": 1000, "p50": 5.0, "p90": 9.0, "p99": p99, "p999": 60.0,
                       "max": 80.0, "mean": 6.0},
        "service_time_ms": {"p50": 1.0},
        "throughput_rps": 100.0,
        "goodput_rps": goodput,
        "thresholds": [{"expr": "errors == 0", "ok": true, "value": 0.0}],
        "passed": true,
    });
    std::fs::write(d.join("summary.json"), summary.to_string()).unwrap();
    d
}

fn compare(a: &Path, b: &Path, extra: &[&str]) -> (i32, String) {
    let mut args: Vec<&Path> = vec![Path::new("compare"), a, b];
    args.extend(extra.iter().map(Path::new));
    controller(&args)
}

#[test]
fn a_run_against_itself_exits_0() {
    let a = run_dir("same", 20.0, 100.0, 0);
    let (code, out) = compare(&a, &a, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verdict: no regression past 5 %"), "{out}");
    assert!(out.contains("latency p99 (ms)"), "{out}");
}

#[test]
fn a_regression_exits_99_and_a_wide_tolerance_forgives_it() {
    let a = run_dir("base", 20.0, 100.0, 0);
    let b = run_dir("slower", 25.0, 100.0, 0);
    // summary.json paths work as well as run directories.
    let (code, out) = compare(&a.join("summary.json"), &b, &[]);
    assert_eq!(code, 99, "{out}");
    assert!(out.contains("+25.0 %"), "{out}");
    assert!(out.contains("REGRESSED past 5 % on latency p99"), "{out}");
    let (code, out) = compare(&a, &b, &["--tolerance", "0.3"]);
    assert_eq!(code, 0, "{out}");
    // B faster than A is never a regression; A slower than B is.
    let (code, out) = compare(&b, &a, &["--tolerance", "0"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn goodput_down_or_throttling_up_exits_99() {
    let a = run_dir("good", 20.0, 100.0, 0);
    let less = run_dir("less-goodput", 20.0, 80.0, 0);
    let (code, out) = compare(&a, &less, &[]);
    assert_eq!(code, 99, "{out}");
    assert!(out.contains("on goodput"), "{out}");
    let throttled = run_dir("throttled", 20.0, 100.0, 200);
    let (code, out) = compare(&a, &throttled, &[]);
    assert_eq!(code, 99, "{out}");
    assert!(out.contains("throttled ratio"), "{out}");
}

#[test]
fn unreadable_input_or_a_bad_tolerance_exits_2() {
    let a = run_dir("readable", 20.0, 100.0, 0);
    let missing = dir("empty-run");
    let (code, out) = compare(&a, &missing, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("summary.json"),
        "the message names the file: {out}"
    );
    let garbage = dir("garbage");
    std::fs::write(garbage.join("summary.json"), "{not json").unwrap();
    let (code, out) = compare(&garbage, &a, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("not a crescendo summary"), "{out}");
    let (code, out) = compare(&a, &a, &["--tolerance", "-1"]);
    assert_eq!(code, 2, "{out}");
}

#[test]
fn report_renders_the_html_and_the_text_again() {
    let d = run_dir("rerender", 20.0, 100.0, 0);
    let (code, out) = controller([Path::new("report"), &d]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("run rerender (compare-test)"), "{out}");
    assert!(out.contains("verdict: PASSED"), "{out}");
    let html = std::fs::read_to_string(d.join("report.html")).unwrap();
    assert!(
        html.contains("compare-test") && html.contains("PASSED"),
        "{html}"
    );
    assert!(d.join("junit.xml").exists());
    let (code, out) = controller([Path::new("report"), &dir("no-summary")]);
    assert_eq!(code, 2, "{out}");
}

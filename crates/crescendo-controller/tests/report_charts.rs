//! A real demo run (flowsim, a controller and 2 agents on loopback, 3 s): its
//! report.html charts have a time axis and value axes with units, lines told apart by
//! dash patterns, and a fluid width; the fleet's pause time is wall-clock time; the
//! progress reaches the end of the load. The real binary.

mod common;
use common::controller;

#[test]
fn the_demo_report_has_axes_dashes_a_fluid_width_and_fleet_pause_time() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let (code, text) = controller([
        "demo",
        "--agents",
        "2",
        "--duration",
        "3s",
        "--progress",
        "plain",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    // The last progress line is the load's end, not the second before it.
    let last = text
        .lines()
        .rfind(|l| l.contains(" req/s  ok "))
        .unwrap_or_default();
    assert!(
        last.starts_with("[   3s/3s]") || last.starts_with("[   4s/3s]"),
        "{text}"
    );

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(!html.contains("width=\"860\""), "no fixed width");
    assert!(html.contains("width=\"100%\""), "fluid charts");
    assert!(html.contains("time since the start (s)"), "a time axis");
    assert!(
        html.contains(">0 s</text>") && html.contains(">2 s</text>"),
        "time ticks"
    );
    assert!(
        html.contains(">req/s</text>") && html.contains(">ms</text>"),
        "units"
    );
    assert!(html.contains("class=\"y-tick\""), "value ticks");
    for name in ["ok", "offered", "planned"] {
        assert!(html.contains(&format!(">{name}</text>")), "legend {name}");
    }
    assert!(
        html.contains("stroke-dasharray=\"12,4\""),
        "a dashed planned line"
    );
    assert!(html.contains("id=\"demand\""), "the demand in the report");

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    // The demo runs the coordinated policy: the fleet's pause is wall-clock time,
    // never longer than the run.
    let fleet_ms = summary["totals"]["fleet_paused_ms"]
        .as_u64()
        .expect("fleet_paused_ms under the coordinated policy");
    let duration_ms = summary["duration_s"].as_f64().unwrap() * 1000.0;
    assert!(
        (fleet_ms as f64) <= duration_ms,
        "{fleet_ms} ms of {duration_ms} ms"
    );
}

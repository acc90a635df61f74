//! `--set key.path=value`: the real binary applies overrides to the plan before
//! validation (`validate`, `run`), checks them like the file and names the flag in its
//! errors; a run reports the plan as overridden.

mod common;
use common::{controller, put_plan, run_local};

#[test]
fn validate_applies_overrides_and_names_the_flag_in_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = put_plan(
        tmp.path(),
        ("p.toml", "p"),
        ("http://127.0.0.1:9", "1s"),
        2,
        "",
    );
    let plan = plan.to_str().unwrap();
    let (code, text) = controller([
        "validate",
        plan,
        "--set",
        "load.stages[0].duration=30s",
        "--set",
        "target.base_url=http://127.0.0.1:8080",
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("30s"), "the duration overridden: {text}");

    let (code, text) = controller(["validate", plan, "--set", "load.max_in_flight=abc"]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("--set load.max_in_flight=abc: load.max_in_flight: "),
        "{text}"
    );
    let (code, text) = controller(["validate", plan, "--set", "load.stages[0].target=-5"]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("--set load.stages[0].target=-5: load.stages[0].target: expected"),
        "{text}"
    );
    let (code, text) = controller(["validate", plan, "--set", "nonsense"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("key.path=value"), "{text}");
    // An error in the file itself is still located in the file.
    std::fs::write(tmp.path().join("bad.toml"), "name = 5\n").unwrap();
    let bad = tmp.path().join("bad.toml");
    let (code, text) = controller([
        "validate",
        bad.to_str().unwrap(),
        "--set",
        "load.max_in_flight=5",
    ]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("bad.toml:1:"), "{text}");
}

#[test]
fn a_run_runs_the_overridden_plan() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = put_plan(
        tmp.path(),
        ("p.toml", "p"),
        ("http://127.0.0.1:9", "1s"),
        5,
        "",
    );
    let out = tmp.path().join("out");
    let (_, text, summary) = run_local(
        &plan,
        &out,
        &[
            "--set",
            "name=overridden",
            "--set",
            "load.stages[0].duration=1s",
        ],
    );
    assert_eq!(summary["plan_name"], "overridden", "{text}");
    assert!(summary["duration_s"].as_f64().unwrap() < 3.0, "{summary}");
    assert!(
        summary["plan_text"]
            .as_str()
            .unwrap()
            .contains("overridden"),
        "{summary}"
    );
}

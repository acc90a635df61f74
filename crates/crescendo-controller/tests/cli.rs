//! The controller binary's exit codes and error messages for bad input.

mod common;
use common::controller;

use std::path::PathBuf;
use std::process::Command;

const GOOD: &str = r#"name = "cli-test"
[target]
base_url = "http://127.0.0.1:9"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/x"
[load]
stages = [ { duration = "1s", target = 1 } ]
"#;

fn write_plan(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crescendo-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_good_plan_validates() {
    let path = write_plan("good.toml", GOOD);
    let (code, text) = controller(["validate", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
}

/// Each broken plan: (file name, plan text, the line, the key the error must name).
fn broken_plans() -> Vec<(&'static str, String, usize, &'static str)> {
    vec![
        (
            "unknown-key.toml",
            GOOD.replace("[load]\n", "[load]\nrat = 5\n"),
            9,
            "rat",
        ),
        (
            "wrong-type.toml",
            GOOD.replace("target = 1 }", "target = \"fast\" }"),
            9,
            "target",
        ),
        (
            "negative-rate.toml",
            GOOD.replace("target = 1 }", "target = -5 }"),
            9,
            "target",
        ),
        (
            "empty-stages.toml",
            GOOD.replace("[ { duration = \"1s\", target = 1 } ]", "[]"),
            9,
            "stages",
        ),
        (
            "bad-url.toml",
            GOOD.replace("http://127.0.0.1:9", "ftp//nowhere"),
            3,
            "base_url",
        ),
        (
            "bad-duration.toml",
            GOOD.replace("duration = \"1s\"", "duration = \"soon\""),
            9,
            "duration",
        ),
    ]
}

#[test]
fn broken_plans_exit_2_naming_file_line_and_key() {
    for (name, text, line, key) in broken_plans() {
        let path = write_plan(name, &text);
        let (code, out) = controller(["validate", path.to_str().unwrap()]);
        assert_eq!(code, 2, "{name}: {out}");
        assert!(
            out.contains(name),
            "{name}: the message names the file: {out}"
        );
        assert!(
            out.contains(&format!(":{line}:")),
            "{name}: the message names line {line}: {out}"
        );
        assert!(out.contains(key), "{name}: the message names {key}: {out}");
        // `run` refuses the same plan before listening for agents.
        let (code, out) = controller([
            "run",
            path.to_str().unwrap(),
            "--agents",
            "1",
            "--listen",
            "127.0.0.1:0",
        ]);
        assert_eq!(code, 2, "run {name}: {out}");
    }
}

#[test]
fn zero_agents_is_a_usage_error() {
    let path = write_plan("zero.toml", GOOD);
    let (code, out) = controller([
        "run",
        path.to_str().unwrap(),
        "--agents",
        "0",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("agents"), "{out}");
}

#[test]
fn a_missing_plan_file_is_a_usage_error() {
    let (code, out) = controller(["validate", "/nonexistent/plan.toml"]);
    assert_eq!(code, 2, "{out}");
}

#[test]
fn json_progress_keeps_stdout_machine_readable() {
    let out_dir = std::env::temp_dir().join(format!("crescendo-cli-json-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_crescendo-controller"))
        .args([
            "demo",
            "--agents",
            "1",
            "--duration",
            "3s",
            "--progress",
            "json",
            "--out",
        ])
        .arg(&out_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    assert!(lines.len() >= 2, "one object a second: {stdout}");
    for key in [
        "elapsed_s",
        "rate_rps",
        "ok",
        "throttled",
        "p99_ms",
        "agents",
    ] {
        assert!(lines[0].get(key).is_some(), "{key} missing in {}", lines[0]);
    }
    assert!(
        stderr.contains("verdict"),
        "the summary goes to stderr: {stderr}"
    );
    assert!(out_dir.join("summary.json").exists());
}

#[test]
fn health_checks_a_tcp_address() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().to_string();
    let (code, out) = controller(["health", "--tcp", open.as_str()]);
    assert_eq!(code, 0, "{out}");
    // A port held bound but not listening refuses connections, and no other process can
    // take it meanwhile (as one could a port released after use).
    let held = tokio::net::TcpSocket::new_v4().unwrap();
    held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let closed = held.local_addr().unwrap().to_string();
    let (code, out) = controller(["health", "--tcp", closed.as_str(), "--timeout", "1s"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("unhealthy"), "{out}");
}

/// Every plan-taking command accepts the shipped plan with a `body_file`: `probe` used
/// to refuse it (exit 2, "cannot read data/flow-update-body.json"). With no agent
/// attaching, `run` and `probe` get as far as waiting for them (exit 1, timed out).
#[test]
fn every_command_accepts_a_plan_with_a_body_file() {
    let plans = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../plans");
    let plan = plans.join("architect-flow-update.toml");
    let plan = plan.to_str().unwrap();
    let (code, out) = controller(["validate", plan]);
    assert_eq!(code, 0, "{out}");
    for command in ["run", "probe"] {
        let (code, out) = controller([
            command,
            plan,
            "--agents",
            "2",
            "--listen",
            "127.0.0.1:0",
            "--wait-for-agents",
            "200ms",
            "--progress",
            "none",
        ]);
        assert_eq!(code, 1, "{command}: {out}");
        assert!(out.contains("waiting for 2 agents"), "{command}: {out}");
    }
    // A closed plan without think time has no peak rate to probe.
    let closed = std::fs::read_to_string(plan)
        .unwrap()
        .replace("think_time = \"200ms\"", "think_time = \"0s\"")
        .replace(
            "body_file = \"data/",
            &format!("body_file = \"{}/data/", plans.display()),
        );
    assert!(closed.contains("\"0s\""));
    let path = write_plan("closed-no-think.toml", &closed);
    let (code, out) = controller(["probe", path.to_str().unwrap(), "--agents", "2"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("think_time"), "{out}");
}

#[test]
fn init_writes_starter_plans_that_validate_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    for template in ["flow-update", "architect"] {
        let path = dir.path().join(template).join("plan.toml");
        let path = path.to_str().unwrap();
        let (code, out) = controller(["init", path, "--template", template]);
        assert_eq!(code, 0, "{out}");
        let (code, out) = controller(["validate", path]);
        assert_eq!(code, 0, "{template}: {out}");
        let (code, out) = controller(["init", path, "--template", template]);
        assert_eq!(code, 2, "{out}");
        assert!(out.contains("exists"), "{out}");
    }
}

/// Every subcommand's `--help` describes every argument, and shows `--progress` only
/// where it means something.
#[test]
fn every_argument_is_described_in_help() {
    let commands: &[&[&str]] = &[
        &["demo"],
        &["run"],
        &["probe"],
        &["init"],
        &["validate"],
        &["compare"],
        &["report"],
        &["health"],
        &["status"],
        &["cancel"],
        &["certs"],
        &["serve"],
        &["submit"],
        &["runs", "list"],
        &["runs", "show"],
        &["runs", "cancel"],
        &["runs", "rerun"],
        &["runs", "baseline"],
        &["runs", "trend"],
        &["schedules", "add"],
        &["schedules", "list"],
        &["schedules", "pause"],
        &["schedules", "resume"],
        &["schedules", "rm"],
        &["schedules", "run-now"],
        &["agents", "list"],
        &["watch"],
    ];
    let mut undescribed = Vec::new();
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let (code, help) = controller(&args);
        assert_eq!(code, 0, "{args:?}: {help}");
        let lines: Vec<&str> = help.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            // An argument's line: `--flag <V>` or `<NAME>`; its description follows on
            // the same line or the next.
            let is_arg = t.starts_with("--") || (t.starts_with('<') && line.starts_with("  "));
            if !is_arg || t.starts_with("-h, --help") || t.starts_with("-V, --version") {
                continue;
            }
            let same_line = t
                .split("  ")
                .filter(|p| !p.trim().is_empty() && !p.trim().starts_with('['))
                .count()
                > 1;
            let next_line = lines.get(i + 1).is_some_and(|n| {
                let n = n.trim();
                // `[default: …]` or `[env: …]` alone is no description.
                !n.is_empty() && !n.starts_with(['-', '<', '['])
            });
            if !same_line && !next_line {
                undescribed.push(format!("{}: {t}", command.join(" ")));
            }
        }
        let progress = help.contains("--progress");
        let shows = matches!(command[0], "demo" | "run" | "probe");
        assert_eq!(progress, shows, "{command:?} --help and --progress: {help}");
    }
    assert!(undescribed.is_empty(), "undescribed: {undescribed:#?}");
}

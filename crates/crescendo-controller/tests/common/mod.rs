//! Shared by the tests that run the real `crescendo-controller` binary. (Each test
//! file uses some of it.)
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Run the controller binary; its exit code and everything it printed. Never a panic.
pub(crate) fn controller<I: AsRef<OsStr>>(args: impl IntoIterator<Item = I>) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_crescendo-controller"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("panicked"), "{text}");
    (out.status.code().unwrap_or(-1), text)
}

/// A plan in `dir/file` named `name`: PUT flow updates at 10 iterations a second for
/// `seconds` against `base_url`; `extra` is TOML appended as is (a `[thresholds]`
/// table) and `timeout` the target's.
pub(crate) fn put_plan(
    dir: &Path,
    (file, name): (&str, &str),
    (base_url, timeout): (&str, &str),
    seconds: u32,
    extra: &str,
) -> PathBuf {
    let text = format!(
        r#"name = "{name}"
[target]
base_url = "{base_url}"
timeout = "{timeout}"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/flow-{{seq}}"
body = '{{"name": "x"}}'
expect = [200]
[load]
model = "open"
start_rate = 10
stages = [ {{ duration = "{seconds}s", target = 10 }} ]
{extra}"#
    );
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

/// `run PLAN --local-agents 2 EXTRA…`: exit code, everything printed, summary.json
/// (null when none was written).
pub(crate) fn run_local(plan: &Path, out: &Path, extra: &[&str]) -> (i32, String, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_crescendo-controller"))
        .args(["--progress", "plain", "run"])
        .arg(plan)
        .args(["--local-agents", "2", "--listen", "127.0.0.1:0", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!text.contains("panicked"), "{text}");
    let summary = std::fs::read_to_string(out.join("summary.json"))
        .map(|s| serde_json::from_str(&s).unwrap())
        .unwrap_or(Value::Null);
    (output.status.code().unwrap_or(-1), text, summary)
}

//! `latency.hlog` read back by a third-party reader: HdrHistogram's Python log reader
//! (PyPI `hdrhistogram`, which `scripts/test.sh` installs in target/py-venv) must
//! accept the log and, adding every interval up per tag, find exactly the counts and
//! (within the histogram's resolution) the percentiles of `summary.json`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crescendo_testkit::{Fleet, FlowsimConfig};
use serde_json::Value;

const PLAN: &str = r#"
name = "hlog-read"
[target]
base_url = "{{BASE_URL}}"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/{flowId}"
headers = { "Content-Type" = "application/json" }
body = '{"name": "flow {flowId} rev {seq}"}'
expect = [200]
[[scenario.steps]]
name = "read back"
method = "GET"
path = "/api/v2/flows/{flowId}"
expect = [200]
[load]
stages = [ { duration = "3s", target = 40 } ]
[backoff]
policy = "none"
[data]
sequence = { var = "flowId", format = "flow-{n}", count = 50 }
"#;

/// The Python to run: `$CRESCENDO_PYTHON` (scripts/test.sh exports its venv's), else
/// the venv scripts/test.sh makes in target/py-venv, else `python3`.
fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("CRESCENDO_PYTHON") {
        return python.into();
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/py-venv/bin/python");
    if venv.exists() {
        return venv;
    }
    "python3".into()
}

/// Run the Python reader on `hlog`; a missing python or hdrh fails the test loudly.
fn read_with_python(hlog: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hlog_read.py");
    let python = python();
    let out = Command::new(&python)
        .arg(&script)
        .arg(hlog)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{} not runnable ({e}): reading latency.hlog with HdrHistogram's reader \
                 needs python with hdrhistogram; scripts/test.sh makes target/py-venv \
                 with it (or set CRESCENDO_PYTHON)",
                python.display()
            )
        });
    assert!(
        out.status.success(),
        "the hdrh reader ({}) failed; scripts/test.sh makes target/py-venv with \
         hdrhistogram (or set CRESCENDO_PYTHON): {}",
        python.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the reader prints JSON")
}

/// Equal within HdrHistogram's resolution at 3 significant digits (0.1 %), plus the
/// 1 µs unit.
fn close(ours: f64, theirs: f64) -> bool {
    (ours - theirs).abs() <= ours.abs().max(theirs.abs()) * 0.001 + 0.001
}

fn assert_same(what: &str, ours: &Value, theirs: &Value) {
    assert_eq!(
        ours["count"].as_u64(),
        theirs["count"].as_u64(),
        "{what}: counts differ: ours {ours} theirs {theirs}"
    );
    for key in ["p50", "p90", "p99", "max"] {
        let (a, b) = (ours[key].as_f64().unwrap(), theirs[key].as_f64().unwrap());
        assert!(close(a, b), "{what} {key}: ours {a} ms, hdrh {b} ms");
    }
    // hdrh's own percentiles round the rank where the Rust crate takes its ceiling,
    // so they may sit one recorded value lower, never higher.
    for key in ["p50", "p90", "p99"] {
        let a = ours[key].as_f64().unwrap();
        let b = theirs[&format!("native_{key}")].as_f64().unwrap();
        assert!(
            b <= a || close(a, b),
            "{what} native {key}: ours {a} ms, hdrh {b} ms"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hdrhistogram_python_reader_agrees_with_the_summary() {
    let sim = FlowsimConfig {
        auto_create: true,
        limit: 0,
        ..Default::default()
    };
    let fleet = Fleet::start(sim, 1).await.unwrap();
    let (outcome, _) = fleet.run(PLAN, 1).await.unwrap();
    let dir = std::env::temp_dir().join(format!("crescendo-hlog-read-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    crescendo_controller::report::write_all(&outcome, &dir).unwrap();
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    assert!(
        summary["latency_ms"]["count"].as_u64().unwrap() > 50,
        "the run measured too little: {summary}"
    );

    let theirs = read_with_python(&dir.join("latency.hlog"));
    assert!(theirs["intervals"].as_u64().unwrap() >= 2, "{theirs}");
    let started = summary["started_at_unix_s"].as_f64().unwrap();
    assert!(
        (theirs["start_time_s"].as_f64().unwrap() - started).abs() < 1.0,
        "the log's StartTime is the run's start: {theirs}"
    );
    assert_same("all steps", &summary["latency_ms"], &theirs["total"]);
    for (step, tag) in [("update", "update"), ("read back", "read_back")] {
        assert_same(
            step,
            &summary["steps"][step]["latency_ms"],
            &theirs["tags"][tag],
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

//! `/metrics` over real HTTP while a real run goes (flowsim, a controller and two
//! agents on loopback), parsed by the reference Prometheus text-format parser
//! (Python's `prometheus_client`, which scripts/test.sh installs in target/py-venv),
//! and its counts checked against the run's summary once the run is over. Without that
//! parser the test fails: it never passes by skipping.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crescendo_controller::live::{LiveMetrics, serve_metrics};
use crescendo_controller::{Controller, RunRequest, demo, report};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const PLAN: &str = r#"
name = "live-metrics"
[target]
base_url = "{{BASE_URL}}"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/{flowId}"
body = '{"name": "flow {flowId}"}'
[[scenario.steps]]
name = "read"
method = "GET"
path = "/api/v2/flows/{flowId}"
[load]
max_in_flight = 100
stages = [ { duration = "4s", target = 30 } ]
[backoff]
policy = "coordinated"
max_retries = 1
[data]
sequence = { var = "flowId", format = "flow-{n}", count = 200 }
[thresholds]
"steps.read.latency.p99" = "< 60s"
"#;

/// flowsim, a controller with two agents, and `/metrics` on loopback.
struct Rig {
    base_url: String,
    controller: Controller,
    live: LiveMetrics,
    metrics_url: String,
    shutdown: CancellationToken,
}

impl Rig {
    async fn start(agents: u32) -> Self {
        let shutdown = CancellationToken::new();
        let sim = crescendo_flowsim::Config {
            auto_create: true,
            // 60 per 2 s for the whole fleet: the plan's 30 iterations/s (60 requests/s)
            // are throttled at times.
            limit: 60,
            window: Duration::from_secs(2),
            ..Default::default()
        };
        let base_url = demo::start_flowsim(sim, &shutdown).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let controller = Controller::start(listener, shutdown.clone()).unwrap();
        for i in 1..=agents {
            demo::start_agent(&controller.url(), &format!("agent-{i}"), &shutdown);
        }
        let live = LiveMetrics::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics_url = format!("http://{}/metrics", listener.local_addr().unwrap());
        tokio::spawn(serve_metrics(listener, live.clone(), shutdown.clone()));
        Self {
            base_url,
            controller,
            live,
            metrics_url,
            shutdown,
        }
    }

    fn request(&self, template: &str, agents: u32) -> RunRequest {
        let text = template.replace("{{BASE_URL}}", &self.base_url);
        let plan = crescendo_plan::parse(&text, "test plan").unwrap();
        let mut request = RunRequest::new(plan, text, agents).unwrap();
        request.wait_for_agents = Duration::from_secs(20);
        request.live = self.live.clone();
        request
    }

    async fn scrape(&self) -> String {
        let response = reqwest::get(&self.metrics_url).await.unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        response.text().await.unwrap()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

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

/// The exposition parsed by Python's prometheus_client: family name → family JSON.
/// A missing python or module fails the test, saying how to get it.
fn parse(text: &str) -> BTreeMap<String, Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/prom_parse.py");
    let python = python();
    let mut child = Command::new(&python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{} not runnable ({e}): the reference Prometheus parser needs python with \
                 prometheus-client; scripts/test.sh makes target/py-venv with it \
                 (or set CRESCENDO_PYTHON)",
                python.display()
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.code() == Some(3) {
        panic!(
            "{} has no prometheus_client: scripts/test.sh makes target/py-venv with it \
             (or set CRESCENDO_PYTHON to a python that has it): {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        out.status.success(),
        "the Prometheus parser rejected the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["families"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The value of the sample `name` whose labels include all of `labels`.
fn sample(families: &BTreeMap<String, Value>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = families
        .values()
        .flat_map(|f| f["samples"].as_array().unwrap().iter())
        .filter(|s| s[0] == name)
        .filter(|s| labels.iter().all(|(k, v)| s[1][*k] == *v))
        .map(|s| s[2].as_f64().unwrap_or(f64::NAN))
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_mid_run_and_match_the_summary_after() {
    let rig = Rig::start(2).await;
    let request = rig.request(PLAN, 2);
    let controller = rig.controller.clone();
    let run = tokio::spawn(async move { controller.run(request).await });

    // Mid-run: poll (bounded) until the run is going and requests have merged.
    let mut mid = None;
    for _ in 0..100 {
        let text = rig.scrape().await;
        if text.contains("crescendo_run_state{state=\"running\"} 1")
            && text.contains("crescendo_requests_total{outcome=\"ok\",step=\"update\"}")
        {
            mid = Some(text);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mid = mid.expect("a mid-run scrape with requests");
    let families = parse(&mid);
    assert_eq!(families["crescendo_requests"]["type"], "counter");
    assert_eq!(
        families["crescendo_request_duration_seconds"]["type"],
        "histogram"
    );
    assert_eq!(
        sample(&families, "crescendo_run_state", &[("state", "running")]),
        1.0
    );
    assert!(sample(&families, "crescendo_agents_attached", &[]) >= 1.0);

    let outcome = run.await.unwrap().unwrap();
    let summary = report::summarize(&outcome);
    let after = rig.scrape().await;
    let families = parse(&after);
    assert_eq!(
        sample(&families, "crescendo_run_state", &[("state", "finished")]),
        1.0
    );
    assert_eq!(
        sample(&families, "crescendo_run_state", &[("state", "running")]),
        0.0
    );
    assert!(summary.totals.requests > 0, "{:?}", summary.totals);
    let mut requests = 0.0;
    for (step, s) in &summary.steps {
        let step = step.as_str();
        let t = &s.totals;
        for (outcome, n) in [
            ("ok", t.ok),
            ("throttled", t.throttled),
            ("client_error", t.client_errors),
            ("server_error", t.server_errors),
            ("timeout", t.timeouts),
            ("connect_error", t.connect_errors),
            ("check_failed", t.check_failed),
        ] {
            let got = sample(
                &families,
                "crescendo_requests_total",
                &[("outcome", outcome), ("step", step)],
            );
            assert_eq!(got, n as f64, "{step} {outcome}");
            requests += got;
        }
        let retries = sample(&families, "crescendo_retries_total", &[("step", step)]);
        assert_eq!(retries, t.retries as f64, "{step} retries");
        for (name, expected) in [
            ("crescendo_request_duration_seconds", s.latency_ms.count),
            ("crescendo_service_time_seconds", s.service_time_ms.count),
        ] {
            let count = sample(&families, &format!("{name}_count"), &[("step", step)]);
            assert_eq!(count, expected as f64, "{name} {step}");
            let inf = sample(
                &families,
                &format!("{name}_bucket"),
                &[("step", step), ("le", "+Inf")],
            );
            assert_eq!(inf, count, "{name} {step}: +Inf holds every value");
            let buckets: Vec<f64> = ["0.001", "0.01", "0.1", "1", "10", "50"]
                .iter()
                .map(|le| {
                    sample(
                        &families,
                        &format!("{name}_bucket"),
                        &[("step", step), ("le", le)],
                    )
                })
                .collect();
            assert!(
                buckets.windows(2).all(|w| w[0] <= w[1]),
                "{name} {step}: {buckets:?}"
            );
            assert!(buckets[5] <= count);
            let sum = sample(&families, &format!("{name}_sum"), &[("step", step)]);
            assert!(
                sum >= 0.0 && (count == 0.0 || sum > 0.0),
                "{name} {step} sum {sum}"
            );
        }
    }
    assert_eq!(requests, summary.totals.requests as f64);
    assert_eq!(
        sample(&families, "crescendo_dropped_total", &[]),
        summary.totals.dropped as f64
    );
    assert_eq!(
        sample(&families, "crescendo_offered_total", &[]),
        summary.totals.offered as f64
    );
    assert_eq!(sample(&families, "crescendo_fleet_paused", &[]), 0.0);
    // The demand next to what was sent, as the summary has it.
    let planned = summary.totals.planned.expect("open model: planned");
    assert_eq!(
        sample(&families, "crescendo_planned_total", &[]),
        planned as f64
    );
    assert_eq!(
        sample(&families, "crescendo_deferred_total", &[]),
        summary.totals.deferred.expect("open model: deferred") as f64
    );
    // The fleet's pause time is wall-clock time: never more than the run lasted, and
    // the summary's (up to the load's end) never more than the live one (to the end).
    let paused_s = sample(&families, "crescendo_fleet_paused_seconds_total", &[]);
    let fleet_paused_ms = summary.totals.fleet_paused_ms.expect("coordinated policy");
    assert!(
        fleet_paused_ms as f64 <= paused_s * 1000.0 + 1.0 && paused_s <= summary.duration_s + 5.0,
        "{fleet_paused_ms} ms vs {paused_s} s"
    );
    let rate = sample(&families, "crescendo_governor_rate_rps", &[]);
    assert!(
        rate.is_finite() && rate >= 0.0,
        "coordinated policy: {rate}"
    );
    assert_eq!(
        sample(
            &families,
            "crescendo_run_info",
            &[("run_id", &summary.run_id)]
        ),
        1.0
    );
    assert_eq!(summary.thresholds.len(), 1);
    assert_eq!(summary.thresholds[0].step.as_deref(), Some("read"));
}

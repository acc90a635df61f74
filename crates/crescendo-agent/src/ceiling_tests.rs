//! Whole runs under the plan's ceilings against a counting API on 127.0.0.1:0: the
//! API receives no more than each agent's part, whatever the plan offers and whatever
//! an `Adjust` asks for.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use crescendo_metrics::Counters;
use crescendo_plan::Share;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::messages::{Adjust, Assign, ToController};
use crate::prepare::prepare_run;
use crate::run::start_run;

/// Every request the API received, in order; every `throttle_every`-th is a 429.
#[derive(Debug, Default)]
struct Api {
    received: Mutex<Vec<Instant>>,
    throttle_every: usize,
}

async fn hit(State(api): State<Arc<Api>>) -> Response {
    let n = {
        let mut received = api.received.lock().unwrap();
        received.push(Instant::now());
        received.len()
    };
    if api.throttle_every > 0 && n % api.throttle_every == 0 {
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")]).into_response();
    }
    StatusCode::OK.into_response()
}

async fn serve(throttle_every: usize) -> (String, Arc<Api>) {
    let api = Arc::new(Api {
        throttle_every,
        ..Api::default()
    });
    let app = axum::Router::new()
        .route("/hit", get(hit))
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), api)
}

/// What one agent's run reported.
#[derive(Debug, Default)]
struct Report {
    counters: Counters,
    error: String,
    took: Duration,
}

/// Run `plan` as agent `index` of `count` (with `vus` closed-model VUs) until it
/// finishes; with `raise`, the controller asks for that rate (requests per second)
/// at the start and again at every snapshot.
async fn run_agent(plan: &str, index: u32, count: u32, vus: u32, raise: Option<f64>) -> Report {
    let assign = Assign {
        run_id: "run-c".into(),
        plan_toml: plan.to_owned(),
        share: Share {
            index,
            count,
            rate_fraction: 1.0 / f64::from(count),
            vus,
            max_in_flight: 64,
        },
        files: Vec::new(),
        data_streamed: false,
    };
    let prepared = prepare_run(assign, "agent-c").unwrap();
    let (tx, mut rx) = mpsc::channel(1024);
    let tracker = TaskTracker::new();
    let started = Instant::now();
    let handle = start_run(
        prepared,
        format!("agent-{index}"),
        Duration::ZERO,
        tx,
        CancellationToken::new(),
        &tracker,
    );
    let adjust = |rate| Adjust {
        run_id: "run-c".into(),
        max_rate: Some(rate),
        pause: Duration::ZERO,
        replace_pause: false,
        scout: Duration::ZERO,
    };
    if let Some(rate) = raise {
        handle.adjust(&adjust(rate));
    }
    let mut report = Report::default();
    let collect = async {
        while let Some(message) = rx.recv().await {
            match message {
                ToController::Snapshot(s) => {
                    for step in &s.steps {
                        report.counters.add(&step.stats.counters);
                    }
                    if let Some(rate) = raise {
                        handle.adjust(&adjust(rate));
                    }
                }
                ToController::Finished(f) => {
                    report.error = f.error;
                    return;
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), collect)
        .await
        .expect("the run finishes");
    report.took = started.elapsed();
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_send_no_more_than_max_total_requests_retries_included() {
    // Every 4th request is throttled and retried at once: retries take from the budget.
    let (base, api) = serve(4).await;
    let plan = format!(
        r#"name = "budget"
[target]
base_url = "{base}"
[[scenario.steps]]
name = "first"
path = "/hit"
[[scenario.steps]]
name = "second"
path = "/hit"
[load]
max_total_requests = 50
stages = [{{ duration = "30s", target = 200 }}]
[backoff]
policy = "retry-after"
max_retries = 5
retry_budget = 1.0
"#
    );
    // The plan offers 12 000 iterations of 2 requests; the fleet may send 50.
    let (a, b) = tokio::join!(
        run_agent(&plan, 0, 2, 0, None),
        run_agent(&plan, 1, 2, 0, None)
    );
    let received = api.received.lock().unwrap().len();
    assert_eq!(received, 50, "the API received the fleet's ceiling exactly");
    for report in [&a, &b] {
        assert_eq!(
            report.error, "",
            "the ceiling ends the run without an error"
        );
        // Each agent sent exactly its part, attempts and retries alike.
        assert_eq!(report.counters.requests, 25, "{:?}", report.counters);
        // It stopped its load instead of running the plan's 30 s.
        assert!(report.took < Duration::from_secs(15), "{:?}", report.took);
    }
    assert!(a.counters.retries + b.counters.retries > 0);
    assert!(a.counters.throttled + b.counters.throttled > 0);
}

/// The most requests the API received within any `window`.
fn busiest(received: &[Instant], window: Duration) -> usize {
    (0..received.len())
        .map(|i| {
            received[i..]
                .iter()
                .take_while(|t| t.duration_since(received[i]) < window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_rps_holds_when_an_adjust_raises_the_rate() {
    let (base, api) = serve(0).await;
    // Agent 0 of 2: its part of max_rps = 40 is 20 per second. The open plan offers 200
    // per second and the controller asks for 10 000.
    let open = format!(
        r#"name = "rate"
[target]
base_url = "{base}"
[[scenario.steps]]
name = "hit"
path = "/hit"
[load]
max_rps = 40
stages = [{{ duration = "3s", target = 200 }}]
[backoff]
policy = "none"
"#
    );
    let report = run_agent(&open, 0, 2, 0, Some(10_000.0)).await;
    assert_eq!(report.error, "");
    let received = std::mem::take(&mut *api.received.lock().unwrap());
    assert_eq!(received.len() as u64, report.counters.requests);
    // 3 s at 20 per second (the first request at once), and no faster than that in any
    // second (two more for the timers' and the network's jitter) …
    assert!(received.len() <= 61, "{} requests", received.len());
    let peak = busiest(&received, Duration::from_secs(1));
    assert!(peak <= 22, "{peak} requests within a second");
    // … but the ceiling's rate was reached: the test would see a faster agent.
    assert!(received.len() >= 50, "{} requests", received.len());

    // The closed model: 16 VUs without think time (8 on this agent) wait for a slot.
    let closed = open.replace(
        "stages = [{ duration = \"3s\", target = 200 }]",
        "model = \"closed\"\nstages = [{ duration = \"2s\", target = 16 }]",
    );
    let report = run_agent(&closed, 0, 2, 8, Some(10_000.0)).await;
    assert_eq!(report.error, "");
    let received = std::mem::take(&mut *api.received.lock().unwrap());
    assert_eq!(received.len() as u64, report.counters.requests);
    assert!(received.len() <= 41, "{} requests", received.len());
    let peak = busiest(&received, Duration::from_secs(1));
    assert!(peak <= 22, "{peak} requests within a second");
    assert!(received.len() >= 30, "{} requests", received.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_keep_to_max_rps_too() {
    // Every other request is throttled and retried at once: the open schedule times
    // only first attempts, so the retries meet the ceiling request by request.
    let (base, api) = serve(2).await;
    let plan = format!(
        r#"name = "retries"
[target]
base_url = "{base}"
[[scenario.steps]]
name = "hit"
path = "/hit"
[load]
max_rps = 20
stages = [{{ duration = "2s", target = 200 }}]
[backoff]
policy = "retry-after"
max_retries = 5
retry_budget = 1.0
"#
    );
    let report = run_agent(&plan, 0, 1, 0, Some(10_000.0)).await;
    assert_eq!(report.error, "");
    assert!(report.counters.retries > 0, "{:?}", report.counters);
    let received = api.received.lock().unwrap().clone();
    assert_eq!(received.len() as u64, report.counters.requests);
    assert!(received.len() <= 41, "{} requests", received.len());
    let peak = busiest(&received, Duration::from_secs(1));
    assert!(peak <= 22, "{peak} requests within a second");
}

//! Whole-run tests on one agent: a plan is prepared from an `Assign`, started, and
//! driven against a small API (and token endpoint) on 127.0.0.1:0 until `Finished`.
//! Runs are bounded by `unique` data rows, so they end when the rows run out.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use crescendo_metrics::Counters;
use crescendo_plan::Share;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{RunHandle, start_run};
use crate::messages::{Adjust, Assign, DataChunk, Throttle, ToController, chain};
use crate::prepare::{PreparedRun, prepare_run};

/// The test API's memory.
#[derive(Debug, Default)]
struct Api {
    tokens_issued: AtomicUsize,
    /// Uses of each token; `tok-1` is revoked after its second use (answers 401).
    uses: Mutex<HashMap<String, usize>>,
    touched: Mutex<Vec<String>>,
    throttle_once: Mutex<bool>,
}

async fn issue_token(State(api): State<Arc<Api>>) -> Json<serde_json::Value> {
    let n = api.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
    Json(json!({"access_token": format!("tok-{n}"), "token_type": "bearer", "expires_in": 3600}))
}

async fn create(State(_): State<Arc<Api>>, body: String) -> Json<serde_json::Value> {
    let name: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let name = name["name"].as_str().unwrap_or("?");
    Json(json!({"id": format!("f-{name}"), "version": 3}))
}

async fn read(Path(id): Path<String>) -> Json<serde_json::Value> {
    let state = if id == "f-bad" { "broken" } else { "ok" };
    Json(json!({"id": id, "state": state}))
}

async fn touch(State(api): State<Arc<Api>>, Path((id, v)): Path<(String, String)>) -> StatusCode {
    api.touched.lock().unwrap().push(format!("{id}@{v}"));
    StatusCode::NO_CONTENT
}

/// Needs `Authorization: Bearer tok-N`; `tok-1` works twice, then is refused.
async fn update(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    if !token.starts_with("tok-") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let uses = {
        let mut uses = api.uses.lock().unwrap();
        let n = uses.entry(token.clone()).or_default();
        *n += 1;
        *n
    };
    if token == "tok-1" && uses > 2 {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if std::mem::take(&mut *api.throttle_once.lock().unwrap()) {
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")]).into_response();
    }
    StatusCode::OK.into_response()
}

async fn serve() -> (String, Arc<Api>) {
    let api = Arc::new(Api::default());
    let app = axum::Router::new()
        .route("/oauth/token", post(issue_token))
        .route("/flows", post(create))
        .route("/flows/{id}", get(read).put(update))
        .route("/flows/{id}/v/{v}", put(touch))
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), api)
}

fn assign(plan: String, files: HashMap<String, Vec<u8>>, streamed: bool) -> Assign {
    Assign {
        run_id: "run-t".into(),
        plan_toml: plan,
        share: Share {
            index: 0,
            count: 1,
            rate_fraction: 1.0,
            vus: 1,
            max_in_flight: 1,
        },
        files: files.into_iter().collect(),
        data_streamed: streamed,
    }
}

/// Start `prepared` now, on its own stop token and tracker.
fn start(prepared: PreparedRun, outbox: mpsc::Sender<ToController>) -> RunHandle {
    let (stop, tracker) = (CancellationToken::new(), TaskTracker::new());
    start_run(
        prepared,
        "agent-t".into(),
        Duration::ZERO,
        outbox,
        stop,
        &tracker,
    )
}

/// What one run reported.
#[derive(Debug, Default)]
struct Report {
    steps: BTreeMap<String, (Counters, bool)>,
    throttles: Vec<Throttle>,
    error: String,
}

/// Start `prepared` now and collect its messages until `Finished` (bounded).
async fn run_to_end(prepared: PreparedRun) -> Report {
    let (tx, mut rx) = mpsc::channel(1024);
    let _handle = start(prepared, tx);
    let mut report = Report::default();
    let collect = async {
        while let Some(message) = rx.recv().await {
            match message {
                ToController::Snapshot(s) => {
                    for step in s.steps {
                        let entry = report.steps.entry(step.step).or_default();
                        entry.0.add(&step.stats.counters);
                        entry.1 = step.auxiliary;
                    }
                }
                ToController::Throttle(t) => report.throttles.push(t),
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
        .expect("the run ends when its rows run out");
    report
}

const CLOSED_ONE_VU: &str = r#"
[load]
model = "closed"
stages = [{ duration = "60s", target = 1 }]
"#;

#[tokio::test]
async fn captures_feed_later_steps_and_a_failed_check_ends_the_iteration() {
    let (base, api) = serve().await;
    let plan = format!(
        r#"name = "captures"
[target]
base_url = "{base}"
[[scenario.steps]]
name = "create"
method = "POST"
path = "/flows"
body = '{{"name": "{{name}}"}}'
captures = {{ id = "/id", version = "/version" }}
[[scenario.steps]]
name = "read"
path = "/flows/{{id}}"
checks = [{{ pointer = "/state", equals = "ok" }}, {{ pointer = "/id", equals = "{{id}}" }}]
[[scenario.steps]]
name = "touch"
method = "PUT"
path = "/flows/{{id}}/v/{{version}}"
[data]
partition = "unique"
rows = [{{ name = "a" }}, {{ name = "b" }}, {{ name = "bad" }}, {{ name = "c" }}]
{CLOSED_ONE_VU}"#
    );
    let prepared = prepare_run(assign(plan, HashMap::new(), false), "agent-t").unwrap();
    let report = run_to_end(prepared).await;
    assert_eq!(report.error, "", "stop-agent ends the run normally");
    let create = report.steps["create"].0;
    let read = report.steps["read"].0;
    let touch = report.steps["touch"].0;
    assert_eq!((create.requests, create.ok), (4, 4));
    assert_eq!((read.requests, read.ok, read.check_failed), (4, 3, 1));
    assert_eq!(read.errors(), 1);
    assert_eq!((touch.requests, touch.ok), (3, 3));
    let mut touched = api.touched.lock().unwrap().clone();
    touched.sort();
    assert_eq!(touched, ["f-a@3", "f-b@3", "f-c@3"]);
}

fn secret_file(name: &str, value: &str) -> String {
    let path = std::env::temp_dir().join(format!("crescendo-{name}-{}", std::process::id()));
    std::fs::write(&path, format!("{value}\n")).unwrap();
    path.display().to_string()
}

/// One VU updating `count` unique flows with OAuth client credentials read from the
/// files `id` and `secret`, fetching tokens at `token_path` of `base`.
fn oauth_plan(base: &str, token_path: &str, id: &str, secret: &str, count: u64) -> String {
    format!(
        r#"name = "oauth"
[target]
base_url = "{base}"
[auth]
kind = "oauth2-client-credentials"
token_url = "{base}{token_path}"
client_id_file = "{id}"
client_secret_file = "{secret}"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/flows/{{flowId}}"
[data]
partition = "unique"
sequence = {{ var = "flowId", format = "flow-{{n}}", count = {count} }}
{CLOSED_ONE_VU}"#
    )
}

#[tokio::test]
async fn oauth_tokens_are_sent_refreshed_after_a_401_and_measured_apart() {
    let (base, api) = serve().await;
    *api.throttle_once.lock().unwrap() = true;
    let id = secret_file("client-id", "client-a");
    let secret = secret_file("client-secret", "secret-a");
    let plan = oauth_plan(&base, "/oauth/token", &id, &secret, 5);
    let prepared = prepare_run(assign(plan, HashMap::new(), false), "agent-t").unwrap();
    // Secrets are read at prepare time.
    std::fs::remove_file(&id).unwrap();
    std::fs::remove_file(&secret).unwrap();
    let report = run_to_end(prepared).await;
    assert_eq!(report.error, "");
    // One throttle (retried), then tok-1 twice, a 401 (refresh, not an attempt), tok-2.
    let (update, aux) = report.steps["update"];
    assert!(!aux);
    assert_eq!((update.requests, update.ok, update.throttled), (6, 5, 1));
    assert_eq!(update.auth_refreshes, 1);
    let (token, aux) = report.steps[crate::auth::TOKEN_STEP];
    assert!(aux, "token fetches are an auxiliary step");
    assert_eq!((token.requests, token.ok), (2, 2));
    assert_eq!(api.tokens_issued.load(Ordering::SeqCst), 2);
    let key = &report.throttles[0].limit_key;
    assert!(
        key.starts_with("client:") && key.len() == "client:".len() + 12,
        "{key}"
    );
}

#[tokio::test]
async fn a_refused_token_counts_an_error_on_the_step_and_sends_nothing() {
    let (base, api) = serve().await;
    let id = secret_file("refused-id", "client-b");
    let secret = secret_file("refused-secret", "secret-b");
    let plan = oauth_plan(&base, "/oauth/missing", &id, &secret, 3);
    let prepared = prepare_run(assign(plan, HashMap::new(), false), "agent-t").unwrap();
    std::fs::remove_file(&id).unwrap();
    std::fs::remove_file(&secret).unwrap();
    let report = run_to_end(prepared).await;
    let update = report.steps["update"].0;
    assert_eq!((update.requests, update.client_errors), (3, 3));
    let token = report.steps[crate::auth::TOKEN_STEP].0;
    assert!(token.requests >= 1 && token.client_errors == token.requests);
    assert!(
        api.uses.lock().unwrap().is_empty(),
        "no request without a token"
    );
    assert!(report.throttles.is_empty());
}

#[tokio::test]
async fn a_missing_secret_fails_preparation_naming_the_variable() {
    let plan = r#"name = "oauth"
[target]
base_url = "http://127.0.0.1:9"
[auth]
kind = "bearer"
token_env = "CRESCENDO_TEST_NO_SUCH_TOKEN"
[[scenario.steps]]
name = "get"
path = "/"
[load]
stages = [{ duration = "1s", target = 1 }]
"#;
    let err = prepare_run(assign(plan.into(), HashMap::new(), false), "a").unwrap_err();
    let err = chain(&err);
    assert!(err.contains("CRESCENDO_TEST_NO_SUCH_TOKEN"), "{err}");
}

fn file_plan(base: &str, on_exhausted: &str) -> String {
    format!(
        r#"name = "file"
[target]
base_url = "{base}"
[[scenario.steps]]
name = "touch"
method = "PUT"
path = "/flows/{{flowId}}/v/1"
[data]
file = "flows.jsonl"
partition = "unique"
on_exhausted = "{on_exhausted}"
{CLOSED_ONE_VU}"#
    )
}

fn rows_chunk(from: u64, to: u64, last: bool) -> DataChunk {
    let text: String = (from..to)
        .map(|n| format!("{{\"flowId\":\"f{n}\"}}\n"))
        .collect();
    DataChunk {
        run_id: "run-t".into(),
        rows_jsonl: text.into_bytes(),
        rows: to - from,
        last,
    }
}

#[tokio::test]
async fn streamed_rows_are_spooled_used_once_and_stop_the_run() {
    let (base, api) = serve().await;
    let files = HashMap::from([("flows.jsonl".to_owned(), b"{\"flowId\":\"f0\"}\n".to_vec())]);
    let mut prepared =
        prepare_run(assign(file_plan(&base, "stop-run"), files, true), "agent-t").unwrap();
    assert!(prepared.awaiting_data());
    assert!(!prepared.receive(&rows_chunk(0, 20, false)).unwrap());
    assert!(prepared.receive(&rows_chunk(20, 30, true)).unwrap());
    assert!(!prepared.awaiting_data());
    let spool = crate::spool::spool_path("run-t", "agent-t");
    assert!(spool.exists());
    let report = run_to_end(prepared).await;
    assert_eq!(report.error, "data rows exhausted");
    assert_eq!(report.steps["touch"].0.ok, 30);
    assert_eq!(api.touched.lock().unwrap().len(), 30);
    // The spool goes when the run's last task lets go of it.
    for _ in 0..100 {
        if !spool.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !spool.exists(),
        "the spool file is deleted at the end of the run"
    );
}

#[tokio::test]
async fn an_open_model_agent_stops_by_itself_when_its_unique_rows_run_out() {
    let (base, api) = serve().await;
    let plan = format!(
        r#"name = "open"
[target]
base_url = "{base}"
[[scenario.steps]]
name = "touch"
method = "PUT"
path = "/flows/{{flowId}}/v/2"
[data]
partition = "unique"
sequence = {{ var = "flowId", format = "f{{n}}", count = 20 }}
[load]
stages = [{{ duration = "60s", target = 200 }}]
"#
    );
    let prepared = prepare_run(assign(plan, HashMap::new(), false), "agent-t").unwrap();
    let report = run_to_end(prepared).await;
    assert_eq!(report.error, "");
    assert_eq!(report.steps["touch"].0.ok, 20);
    let mut touched = api.touched.lock().unwrap().clone();
    touched.sort();
    touched.dedup();
    assert_eq!(touched.len(), 20, "each row once");
}

#[tokio::test]
async fn a_garbage_chunk_fails_preparation_and_streaming_must_match_the_plan() {
    let files = HashMap::from([("flows.jsonl".to_owned(), b"{\"flowId\":\"f0\"}\n".to_vec())]);
    let plan = file_plan("http://127.0.0.1:9", "stop-agent");
    let mut prepared = prepare_run(assign(plan.clone(), files.clone(), true), "agent-g").unwrap();
    let mut garbage = rows_chunk(0, 1, true);
    garbage.rows_jsonl = b"{\"flowId\": 7}\n".to_vec();
    let err = prepared.receive(&garbage).unwrap_err().to_string();
    assert!(err.contains("column flowId is not a string"), "{err}");
    let err = prepare_run(assign(plan, files, false), "agent-g").unwrap_err();
    assert!(err.to_string().contains("streams no rows"), "{err}");
}

/// Answers 429 with `Retry-After: 1` to the first three requests.
async fn gated(State(gate): State<Arc<Gate>>) -> Response {
    if gate.throttled.fetch_add(1, Ordering::Relaxed) < 3 {
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")]).into_response();
    }
    gate.throttled.fetch_sub(1, Ordering::Relaxed);
    StatusCode::OK.into_response()
}

#[derive(Debug, Default)]
struct Gate {
    throttled: AtomicUsize,
}

#[tokio::test]
async fn a_scout_probes_through_its_429s_and_reports_when_it_gets_through() {
    let gate = Arc::new(Gate::default());
    let app = axum::Router::new()
        .route("/gated/{id}", put(gated))
        .with_state(gate.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let plan = format!(
        r#"name = "scout"
[target]
base_url = "{base}"
[[scenario.steps]]
name = "put"
method = "PUT"
path = "/gated/{{n}}"
[data]
partition = "unique"
sequence = {{ var = "n", format = "{{n}}", count = 30 }}
[load]
stages = [{{ duration = "60s", target = 50 }}]
[backoff]
policy = "coordinated"
max_retries = 0
"#
    );
    let prepared = prepare_run(assign(plan, HashMap::new(), false), "agent-t").unwrap();
    let (tx, mut rx) = mpsc::channel(1024);
    let handle = start(prepared, tx);
    let adjust = |scout_ms: u64, max_rate: Option<f64>| Adjust {
        run_id: "run-t".into(),
        max_rate,
        pause: Duration::ZERO,
        replace_pause: true,
        scout: Duration::from_millis(scout_ms),
    };
    let (mut throttles, mut opened, mut ok) = (Vec::new(), Vec::new(), 0);
    let collect = async {
        while let Some(message) = rx.recv().await {
            match message {
                ToController::Throttle(t) => {
                    // The controller's answer: this agent scouts, resuming now at 10/s
                    // although its 429 asked it to wait a second.
                    if throttles.is_empty() {
                        handle.adjust(&adjust(5_000, Some(10.0)));
                    }
                    throttles.push(t);
                }
                ToController::Opened(o) => {
                    handle.adjust(&adjust(0, None));
                    opened.push(o);
                }
                ToController::Snapshot(s) => {
                    ok += s.steps.iter().map(|s| s.stats.counters.ok).sum::<u64>();
                }
                ToController::Finished(_) => return,
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), collect)
        .await
        .expect("the run ends when its rows run out");
    // Only the 429 that started the pause was reported; the scout's own were expected.
    assert_eq!(throttles.len(), 1, "{throttles:?}");
    // The scout probed through the other two without pausing, and got through.
    let throttled = gate.throttled.load(Ordering::Relaxed);
    assert_eq!(throttled, 3);
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert_eq!(opened[0].run_id, "run-t");
    assert!(opened[0].at_ms >= throttles[0].at_ms);
    assert_eq!(ok + throttled as u64, 30);
}

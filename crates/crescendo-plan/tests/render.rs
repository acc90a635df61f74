//! `Plan::to_toml`: every shipped plan and a set covering every section parse back to
//! the same plan (a `body_file` becomes an inline `body`), and rendering is canonical.

use std::path::PathBuf;

use crescendo_plan::{
    Auth, BundleFiles, DataSource, DirFiles, NoFiles, Plan, PlanFiles, Secret, load, parse_with,
};

fn plans_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../plans")
}

fn bundle(files: &[(&str, &str)]) -> BundleFiles {
    BundleFiles(
        files
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect(),
    )
}

/// Renders `plan`, parses the text as an agent would (only what `bundle_files` ships,
/// or nothing at all when the plan has no data file), and expects `plan` back with its
/// bodies inline; rendering that again gives the same text.
#[track_caller]
fn assert_round_trip(plan: &Plan, files: &dyn PlanFiles) {
    let text = plan.to_toml();
    let shipped = BundleFiles(plan.bundle_files(files).unwrap());
    let has_data_file = matches!(
        plan.data.as_ref().map(|d| &d.source),
        Some(DataSource::File(_))
    );
    let back = if has_data_file {
        parse_with(&text, "rendered", &shipped)
    } else {
        parse_with(&text, "rendered", &NoFiles)
    }
    .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut want = plan.clone();
    want.inline_body_files();
    assert_eq!(back, want, "{text}");
    assert_eq!(back.to_toml(), text);
}

#[track_caller]
fn round_trip_text(text: &str, files: &BundleFiles) -> String {
    let plan = parse_with(text, "t.toml", files).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_round_trip(&plan, files);
    plan.to_toml()
}

#[test]
fn the_shipped_plans_round_trip() {
    let mut seen = 0;
    for entry in std::fs::read_dir(plans_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let plan = load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_round_trip(&plan, &DirFiles::for_plan(&path));
            seen += 1;
        }
    }
    assert!(seen >= 2, "plans/ holds {seen} plans");
}

#[test]
fn a_body_file_is_rendered_inline_and_needs_no_file() {
    let path = plans_dir().join("architect-flow-update.toml");
    let plan = load(&path).unwrap();
    let update = &plan.scenario.steps[2];
    assert_eq!(
        update.body_file.as_deref(),
        Some("data/flow-update-body.json")
    );
    let text = plan.to_toml();
    assert!(!text.contains("body_file"), "{text}");
    let back = parse_with(&text, "rendered", &NoFiles).unwrap();
    assert_eq!(back.scenario.steps[2].body, update.body);
    assert_eq!(back.scenario.steps[2].body_file, None);
    // Secrets stay where they come from: names only.
    assert!(text.contains("client_secret_env = \"CRESCENDO_CLIENT_SECRET\""));
}

/// A plan with every key of every section, awkward strings included.
const FULL: &str = r#"
name = "full \"quoted\" ünïcødé ✓"
description = """
two lines,
'single' and "double" quotes, a backslash \\ and a tab	here"""
[target]
base_url = "HTTPS://api.example.com/v2/"
timeout = "1m30s250ms"
headers = { X-Load-Test = "agent {agent} {{literal}}", X-Num = 5, X-Bool = true }
[auth]
kind = "oauth2-client-credentials"
token_url = "https://login.example.com/oauth/token"
sharing = "per-agent"
clients = [
  { client_id_env = "A_ID", client_secret_env = "A_SECRET" },
  { client_id_file = "/run/secrets/b id", client_secret_file = "/run/secrets/b'secret" },
]
refresh_before = "90s"
scope = "flows:write architect"
[[scenario.steps]]
name = "checkout"
method = "post"
path = "/api/v2/flows/actions/checkout"
query = { flow = "{flowId}", "weird key" = "a\"b", n = 3 }
expect = [200, 202, 409]
captures = { zeta = "/lockedClient/id", alpha = "", version = "/a~1b/c~0d" }
checks = [
  { pointer = "/id", equals = "{flowId}" },
  { pointer = "/n", equals = 42 },
  { pointer = "/neg", equals = -7 },
  { pointer = "/f", equals = 2.5 },
  { pointer = "/whole", equals = 3.0 },
  { pointer = "/b", equals = false },
]
[[scenario.steps]]
name = "update.v2 with spaces"
method = "PUT"
path = "/api/v2/flows/{flowId}/{version}"
headers = { Content-Type = "application/json" }
body = '''
{"name": "flow {flowId}", "text": "line\nbreak", "braces": "{{not a var}}", "q": "it's"}
'''
[load]
model = "open"
start_rate = 0.5
max_in_flight = 77
max_total_requests = 9223372036854775807
max_rps = 0.001
stages = [
  { duration = "250ms", target = 15 },
  { duration = "1h2m3s4ms5us6ns", target = 0.125 },
  { duration = "10s", target = 0 },
]
[backoff]
policy = "exponential"
max_retries = 5
retry_budget = 0.35
max_retry_after = "2m"
base = "50ms"
cap = "5s"
[data]
partition = "unique"
on_exhausted = "stop-run"
rows = [
  { flowId = "a \"1\"", token = "x\ny" },
  { flowId = 'b\2', token = "é" },
]
[thresholds]
"latency.p999" = "<= 1.5s"
"service_time.mean" = "> 900us"
"steps.update.v2 with spaces.latency.p95" = "< 500ms"
"errors" = "== 0"
"throttled_ratio" = { expr = "< 0.02", abort_on_fail = true, grace = "10s" }
"goodput_rps" = { expr = ">= 4.5", abort_on_fail = true }
"error_ratio" = { expr = "< 0.5", abort_on_fail = false }
"steps.checkout.latency.p99.5" = "< 2s"
"#;

#[test]
fn every_section_round_trips() {
    let text = round_trip_text(FULL, &BundleFiles::default());
    // Written out: defaults, the model's canonical forms, thresholds in their order.
    assert!(text.contains("method = \"POST\""), "{text}");
    assert!(text.contains("base_url = \"https://api.example.com/v2\""));
    let order: Vec<usize> = ["latency.p999", "service_time.mean", "error_ratio", "p99.5"]
        .iter()
        .map(|k| text.find(k).unwrap())
        .collect();
    assert!(order.is_sorted(), "{text}");
    assert!(text.find("zeta").unwrap() < text.find("alpha").unwrap());
    let plan = crescendo_plan::parse(&text, "rendered").unwrap();
    assert_eq!(plan.ceilings.max_total_requests, Some(i64::MAX as u64));
    assert_eq!(plan.ceilings.max_rps, Some(0.001));
}

#[test]
fn closed_load_bearer_auth_and_a_sequence_round_trip() {
    let text = r#"
name = "closed"
[target]
base_url = "http://127.0.0.1:8080"
[auth]
kind = "bearer"
token_file = "/run/secrets/token"
[[scenario.steps]]
name = "get"
path = "/api/v2/flows/{flowId}"
[load]
model = "closed"
think_time = "100ms"
max_total_requests = 1
max_rps = 250
stages = [{ duration = "10s", target = 10 }, { duration = "5s", target = 0 }]
[backoff]
policy = "none"
max_retries = 9
[data]
partition = "shared"
sequence = { var = "flowId", format = "flow-{n}-{{n}}", count = 1000000 }
"#;
    round_trip_text(text, &BundleFiles::default());
    let text = text.replace(
        "token_file = \"/run/secrets/token\"",
        "token_env = \"TOKEN\"",
    );
    let text = text.replace("think_time = \"100ms\"\n", "start_vus = 3\n");
    let rendered = round_trip_text(&text, &BundleFiles::default());
    assert!(
        rendered.contains("max_total_requests = 1\nmax_rps = 250.0\n"),
        "{rendered}"
    );
    // Without the keys, the plan has no ceilings and none are written.
    let text = text.replace("max_total_requests = 1\nmax_rps = 250\n", "");
    let rendered = round_trip_text(&text, &BundleFiles::default());
    assert!(!rendered.contains("max_total_requests") && !rendered.contains("max_rps"));
}

#[test]
fn oauth_with_one_client_and_no_auth_round_trip() {
    let text = r#"
name = "oauth"
[target]
base_url = "http://127.0.0.1:8080"
[auth]
kind = "oauth2-client-credentials"
token_url = "http://127.0.0.1:8080/oauth/token"
client_id_env = "ID"
client_secret_file = "secret"
[[scenario.steps]]
name = "get"
path = "/"
[load]
stages = [{ duration = "1s", target = 1 }]
"#;
    let plan = parse_with(text, "t", &NoFiles).unwrap();
    let Auth::OAuth2ClientCredentials(o) = &plan.auth else {
        panic!()
    };
    assert_eq!(o.clients[0].client_secret, Secret::File("secret".into()));
    round_trip_text(text, &BundleFiles::default());
    // No [auth], an Authorization header from a data column instead.
    let text = r#"
name = "header auth"
[target]
base_url = "http://127.0.0.1:8080"
headers = { Authorization = "Bearer {token}" }
[[scenario.steps]]
name = "get"
path = "/"
[load]
stages = [{ duration = "1s", target = 1 }]
[data]
rows = [{ token = "t1" }]
"#;
    let rendered = round_trip_text(text, &BundleFiles::default());
    assert!(!rendered.contains("[auth]"), "{rendered}");
}

#[test]
fn body_and_data_files_round_trip_with_what_is_shipped() {
    let text = r#"
name = "files"
[target]
base_url = "http://127.0.0.1:8080"
[[scenario.steps]]
name = "put"
method = "PUT"
path = "/x/{flowId}"
body_file = "bodies/put.json"
[load]
stages = [{ duration = "1s", target = 1 }]
[data]
file = "rows.data"
format = "jsonl"
"#;
    let disk = bundle(&[
        (
            "bodies/put.json",
            "{\r\n  \"id\": \"{flowId}\",\u{7}\n  \"q\": \"'''\\\"\"\"\"\n}",
        ),
        (
            "rows.data",
            "{\"flowId\": \"f1\", \"n\": 1}\n{\"flowId\": \"f2\", \"n\": 2}\n",
        ),
    ]);
    let rendered = round_trip_text(text, &disk);
    assert!(rendered.contains("file = \"rows.data\""), "{rendered}");
    assert!(rendered.contains("format = \"jsonl\""), "{rendered}");
    // Only the data header is needed to parse the rendered text.
    let header_only = bundle(&[("rows.data", "{\"flowId\": \"f1\", \"n\": 1}\n")]);
    parse_with(&rendered, "rendered", &header_only).unwrap();
    let csv = text
        .replace("rows.data", "data/flows.csv")
        .replace("format = \"jsonl\"\n", "");
    let disk = bundle(&[
        ("bodies/put.json", "{}"),
        ("data/flows.csv", "flowId,zeta,alpha\nf1,z,a\n"),
    ]);
    round_trip_text(&csv, &disk);
}

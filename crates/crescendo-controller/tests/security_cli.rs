//! The real binaries, secured: `crescendo-controller certs` makes the PKI,
//! `crescendo-controller run … --tls-cert … --tls-client-ca … --enrol-token-file …
//! --admin-token-file …` serves it, real `crescendo-agent --tls-…` processes attach
//! over https:// against an in-process flowsim.
//!
//! - The agent with the CA's certificate and the enrolment token runs the plan, and
//!   the report's totals equal flowsim's counts.
//! - An agent with a wrong enrolment token exits 1, refused; one with a certificate
//!   from another CA never attaches; neither's requests reach flowsim.
//! - `status` and `cancel` without CRESCENDO_ADMIN_TOKEN are refused, Unauthenticated;
//!   `status` with it answers.
//! - `run --listen 0.0.0.0:0` without TLS client auth or tokens exits 2 and says why,
//!   unless `--insecure`, which it announces loudly.

mod common;
use common::controller;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crescendo_controller::demo;
use tokio_util::sync::CancellationToken;

/// Six seconds of updates at 20 a second; requests carry the agent's id as the token.
fn plan(base_url: &str) -> String {
    format!(
        r#"name = "secured"
[target]
base_url = "{base_url}"
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/api/v2/flows/{{flowId}}"
headers = {{ "Authorization" = "Bearer {{agent}}" }}
body = '{{"name": "x"}}'
[load]
stages = [ {{ duration = "6s", target = 20 }} ]
[backoff]
policy = "none"
[data]
sequence = {{ var = "flowId", format = "flow-{{n}}", count = 50 }}
"#
    )
}

/// The agent binary, built next to the controller's (a nested `cargo build`, quick
/// when it is up to date).
fn agent_binary() -> PathBuf {
    let controller = PathBuf::from(env!("CARGO_BIN_EXE_crescendo-controller"));
    let profile_dir = controller.parent().unwrap();
    let target_dir = profile_dir.parent().unwrap();
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args([
            "build",
            "--quiet",
            "-p",
            "crescendo-agent",
            "--bin",
            "crescendo-agent",
        ])
        .args(["--profile", profile, "--target-dir"])
        .arg(target_dir)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    // Cargo's per-package variables would make build scripts run again.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || key.starts_with("CARGO_BIN_EXE_")
            || [
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "OUT_DIR",
            ]
            .contains(&key.as_str())
        {
            build.env_remove(key);
        }
    }
    let status = build.status().expect("cargo runs");
    assert!(status.success(), "building crescendo-agent failed");
    let agent = profile_dir.join("crescendo-agent");
    assert!(agent.is_file(), "{} missing", agent.display());
    agent
}

/// A child process killed when dropped (a failed test).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An agent process; its stderr goes to `log`.
fn agent(
    bin: &Path,
    url: &str,
    id: &str,
    tls: [&Path; 3],
    env: &[(&str, &str)],
    log: &Path,
) -> Proc {
    let [ca, cert, key] = tls;
    let child = Command::new(bin)
        .args(["--controller", url, "--id", id, "--give-up-after", "20s"])
        .arg("--tls-ca")
        .arg(ca)
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .env_remove("CRESCENDO_ENROL_TOKEN")
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("the agent binary starts");
    Proc(child)
}

/// The controller's `status`/`cancel` over mutual TLS, with `admin_token` when given.
fn admin(url: &str, certs: &Path, command: &str, admin_token: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crescendo-controller"));
    cmd.args([command, "--controller", url])
        .arg("--tls-ca")
        .arg(certs.join("ca.pem"))
        .arg("--tls-cert")
        .arg(certs.join("operator-ops.pem"))
        .arg("--tls-key")
        .arg(certs.join("operator-ops-key.pem"))
        .env_remove("CRESCENDO_ADMIN_TOKEN");
    if let Some(token) = admin_token {
        cmd.env("CRESCENDO_ADMIN_TOKEN", token);
    }
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secured_run_admits_only_the_enrolled_agent_and_counts_exactly() {
    let agent_bin = agent_binary();
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let certs_arg = certs.to_str().unwrap();
    let (code, made) = controller([
        "certs",
        "--out",
        certs_arg,
        "--controller-name",
        "127.0.0.1",
        "--agent",
        "tls-agent",
        "--agent",
        "wrong-token",
        "--operator",
        "ops",
    ]);
    assert_eq!(code, 0, "{made}");
    let other = dir.path().join("other");
    let (code, made) = controller([
        "certs",
        "--out",
        other.to_str().unwrap(),
        "--agent",
        "stranger",
    ]);
    assert_eq!(code, 0, "{made}");
    std::fs::write(dir.path().join("enrol"), "enrol-s3cret\n").unwrap();
    std::fs::write(dir.path().join("admin"), "admin-s3cret\n").unwrap();

    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let sim = crescendo_flowsim::Config {
        auto_create: true,
        limit: 0,
        ..Default::default()
    };
    let base_url = demo::start_flowsim(sim, &shutdown).await.unwrap();
    std::fs::write(dir.path().join("plan.toml"), plan(&base_url)).unwrap();
    let out = dir.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_crescendo-controller"))
        .args(["--progress", "json", "run"])
        .arg(dir.path().join("plan.toml"))
        .args([
            "--agents",
            "1",
            "--listen",
            "127.0.0.1:0",
            "--wait-for-agents",
            "30s",
        ])
        .arg("--tls-cert")
        .arg(certs.join("controller.pem"))
        .arg("--tls-key")
        .arg(certs.join("controller-key.pem"))
        .arg("--tls-client-ca")
        .arg(certs.join("ca.pem"))
        .arg("--enrol-token-file")
        .arg(dir.path().join("enrol"))
        .arg("--admin-token-file")
        .arg(dir.path().join("admin"))
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in stderr.lines().map_while(Result::ok) {
            if let Some(url) = line.split_whitespace().find(|w| w.starts_with("https://")) {
                let _ = url_tx.send(url.trim_end_matches([';', ',']).to_owned());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let child = Proc(child);
    let url = url_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the controller names its https:// address");

    let tls = |dir: &Path, id: &str| {
        [
            certs.join("ca.pem"),
            dir.join(format!("agent-{id}.pem")),
            dir.join(format!("agent-{id}-key.pem")),
        ]
    };
    let logs = dir.path();
    let [a, b, c] = tls(&other, "stranger");
    let _stranger = agent(
        &agent_bin,
        &url,
        "stranger",
        [&a, &b, &c],
        &[],
        &logs.join("stranger.log"),
    );
    let [a, b, c] = tls(&certs, "wrong-token");
    let env = [("CRESCENDO_ENROL_TOKEN", "not-the-token")];
    let mut wrong = agent(
        &agent_bin,
        &url,
        "wrong-token",
        [&a, &b, &c],
        &env,
        &logs.join("wrong.log"),
    );
    // The refused one exits 1 by itself before the enrolled one is started, so the
    // controller (waiting for one agent) can only have run with the enrolled one.
    let wrong_code = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(status) = wrong.0.try_wait().unwrap() {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the agent with a wrong token exits");
    let wrong_log = std::fs::read_to_string(logs.join("wrong.log")).unwrap();
    assert_eq!(wrong_code, Some(1), "{wrong_log}");
    assert!(wrong_log.contains("wrong enrolment token"), "{wrong_log}");

    let [a, b, c] = tls(&certs, "tls-agent");
    let env = [("CRESCENDO_ENROL_TOKEN", "enrol-s3cret")];
    let _enrolled = agent(
        &agent_bin,
        &url,
        "tls-agent",
        [&a, &b, &c],
        &env,
        &logs.join("agent.log"),
    );

    // While it runs: the admin service wants its token.
    let key = crescendo_flowsim::key_name(Some("Bearer tls-agent"));
    let stats_url = format!("{base_url}/__sim/stats");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let stats: serde_json::Value = reqwest::get(&stats_url)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if stats["keys"][&key]["accepted"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no load: {stats}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for command in ["status", "cancel"] {
        let refused = admin(&url, &certs, command, None);
        assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
        assert!(
            text(&refused).contains("Unauthenticated"),
            "{}",
            text(&refused)
        );
    }
    let status = admin(&url, &certs, "status", Some("admin-s3cret"));
    assert!(status.status.success(), "{}", text(&status));
    assert!(
        text(&status).contains("agent tls-agent"),
        "{}",
        text(&status)
    );

    let mut child = child;
    let code = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the controller finishes");
    let stderr = stderr_reader.join().unwrap();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("TLS handshake refused"), "{stderr}");
    assert!(
        stderr.contains("refused: wrong enrolment token"),
        "{stderr}"
    );
    assert!(stderr.contains("refused: missing admin token"), "{stderr}");
    for secret in ["enrol-s3cret", "not-the-token", "admin-s3cret"] {
        assert!(!stderr.contains(secret), "a token in the log: {stderr}");
    }

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let stats: serde_json::Value = reqwest::get(&stats_url)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = summary["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["tls-agent"]);
    let flowsim = stats["accepted"].as_u64().unwrap() + stats["throttled"].as_u64().unwrap();
    assert_eq!(
        summary["totals"]["requests"].as_u64(),
        Some(flowsim),
        "{stats}"
    );
    assert_eq!(summary["agents"][0]["requests"].as_u64(), Some(flowsim));
}

#[test]
fn an_exposed_listen_address_needs_authentication_or_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let plan_path = dir.path().join("plan.toml");
    std::fs::write(&plan_path, plan("http://127.0.0.1:9")).unwrap();
    let plan_arg = plan_path.to_str().unwrap();
    let args = ["run", plan_arg, "--agents", "1", "--listen", "0.0.0.0:0"];
    let (code, said) = controller(args);
    assert_eq!(code, 2, "{said}");
    assert!(said.contains("refusing to listen on 0.0.0.0:0"), "{said}");
    assert!(
        said.contains("--insecure") && said.contains("--enrol-token-file"),
        "{said}"
    );

    let mut insecure = args.to_vec();
    insecure.extend(["--insecure", "--wait-for-agents", "1s"]);
    let (code, said) = controller(insecure);
    assert_ne!(code, 2, "{said}");
    assert!(said.contains("WARNING: INSECURE"), "{said}");
}

//! A flood of strangers against the real controller binary (`serve` with tokens):
//! more raw HTTP/2 connections than `--max-connections`, each opening its 16 streams
//! and pushing all the data HTTP/2 lets it send ahead, over and over. The ones past the
//! cap are closed at once, every stream is refused, the controller's resident memory
//! grows by less than its documented bound (`max_connections ×
//! connections::BYTES_PER_CONNECTION`), and once the flood ends an operator with the
//! admin token gets in again.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crescendo_controller::connections::BYTES_PER_CONNECTION;
use tokio::net::TcpStream;

const MAX_CONNECTIONS: usize = 24;
const STRANGERS: usize = 36;
const STREAMS: usize = 16;
const ROUNDS: usize = 4;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The controller's resident set, in bytes (Linux).
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/PID/status");
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

fn agents_list(port: u16, token: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_crescendo-controller"))
        .args([
            "agents",
            "list",
            "--controller",
            &format!("http://127.0.0.1:{port}"),
        ])
        .env("CRESCENDO_ADMIN_TOKEN", token)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn serve(dir: &Path, port: u16) -> Killed {
    for (name, token) in [("enrol", "enrol-secret"), ("admin", "admin-secret")] {
        std::fs::write(dir.join(name), token).unwrap();
    }
    let log = std::fs::File::create(dir.join("controller.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_crescendo-controller"))
        .arg("serve")
        .arg("--data")
        .arg(dir.join("data"))
        .arg("--enrol-token-file")
        .arg(dir.join("enrol"))
        .arg("--admin-token-file")
        .arg(dir.join("admin"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--max-connections", &MAX_CONNECTIONS.to_string()])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    Killed(child)
}

/// What one stranger's connection got: refused at once, or served (every stream
/// answered, and refused).
enum Stranger {
    ClosedAtOnce,
    Served { refused_streams: usize },
}

/// One stranger: an HTTP/2 connection with `ROUNDS` rounds of `STREAMS` attach
/// streams, each pushing a body as large as the windows allow, without a token.
async fn stranger(port: u16) -> Stranger {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let Ok((client, connection)) = h2::client::handshake(tcp).await else {
        return Stranger::ClosedAtOnce;
    };
    let driver = tokio::spawn(connection);
    let mut refused = 0;
    for _ in 0..ROUNDS {
        let mut answers = Vec::new();
        for _ in 0..STREAMS {
            let Ok(mut client) = client.clone().ready().await else {
                driver.abort();
                return Stranger::ClosedAtOnce;
            };
            let request = http::Request::post(format!(
                "http://127.0.0.1:{port}/crescendo.v1.AgentControl/Attach"
            ))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
            let Ok((response, mut body)) = client.send_request(request, false) else {
                driver.abort();
                return Stranger::ClosedAtOnce;
            };
            // A gRPC frame that claims 4 MiB, then as much of it as the windows take.
            let mut frame = vec![0u8; 1024 * 1024];
            frame[1..5].copy_from_slice(&(4u32 * 1024 * 1024).to_be_bytes());
            let _ = body.send_data(Bytes::from(frame), false);
            answers.push((response, body));
        }
        for (response, _body) in answers {
            let answered = tokio::time::timeout(Duration::from_secs(20), response).await;
            let response = match answered.expect("the controller answers every stream") {
                Ok(response) => response,
                // Closed by the controller before it served anything: past the cap.
                Err(e) if refused == 0 && e.is_io() => {
                    driver.abort();
                    return Stranger::ClosedAtOnce;
                }
                Err(e) => panic!("a served connection broke: {e}"),
            };
            let status = response.headers().get("grpc-status").map(|v| v.to_owned());
            let trailers = match status {
                Some(s) => Some(s),
                None => {
                    let mut body = response.into_body();
                    body.trailers()
                        .await
                        .ok()
                        .flatten()
                        .and_then(|t| t.get("grpc-status").cloned())
                }
            };
            // 16 = UNAUTHENTICATED.
            if trailers.is_some_and(|s| s == "16") {
                refused += 1;
            }
        }
    }
    driver.abort();
    Stranger::Served {
        refused_streams: refused,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_strangers_is_capped_refused_and_bounded_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let controller = serve(dir.path(), port);
    let pid = controller.0.id();
    // Up, and warmed by one real operator call.
    let start = Instant::now();
    loop {
        let (code, text) = agents_list(port, "admin-secret");
        if code == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "serve did not come up: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = rss(pid);

    // The strangers, all at once, the controller's memory sampled while they push.
    let flood: Vec<_> = (0..STRANGERS)
        .map(|_| tokio::spawn(stranger(port)))
        .collect();
    let mut peak = before;
    let mut results = Vec::new();
    for task in flood {
        while !task.is_finished() {
            peak = peak.max(rss(pid));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        results.push(task.await.unwrap());
    }
    peak = peak.max(rss(pid));

    let served: Vec<usize> = results
        .iter()
        .filter_map(|r| match r {
            Stranger::Served { refused_streams } => Some(*refused_streams),
            Stranger::ClosedAtOnce => None,
        })
        .collect();
    let closed = results.len() - served.len();
    assert!(
        served.len() <= MAX_CONNECTIONS,
        "{} connections served, the cap is {MAX_CONNECTIONS}",
        served.len()
    );
    assert!(closed > 0, "no connection was closed past the cap");
    for refused in &served {
        assert_eq!(
            *refused,
            ROUNDS * STREAMS,
            "every stream is refused (unauthenticated)"
        );
    }
    let grew = peak.saturating_sub(before);
    let bound = MAX_CONNECTIONS as u64 * BYTES_PER_CONNECTION;
    eprintln!(
        "{} strangers: {} served, {closed} closed at once; RSS {} → peak {} KiB (+{} KiB; bound {} KiB)",
        STRANGERS,
        served.len(),
        before / 1024,
        peak / 1024,
        grew / 1024,
        bound / 1024
    );
    assert!(
        grew < bound,
        "RSS grew {grew} bytes, more than the bound {bound}"
    );

    // The flood is over: the operator gets in again, and the refusals were logged.
    let (code, text) = agents_list(port, "admin-secret");
    assert_eq!(code, 0, "{text}");
    let log = std::fs::read_to_string(dir.path().join("controller.log")).unwrap();
    assert!(
        log.contains("connection refused:") && log.contains("--max-connections"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

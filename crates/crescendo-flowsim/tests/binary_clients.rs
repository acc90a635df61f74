//! The binary's OAuth clients: from `FLOWSIM_CLIENTS`, never from its command line.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_crescendo-flowsim");

/// Kills the child when the test ends, failed or not.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_secret_on_the_command_line_is_refused_without_echoing_it() {
    for argv in [&["--client", "a:s3cret"][..], &["--client=a"]] {
        let out = Command::new(BIN)
            .args(argv)
            .env_remove("FLOWSIM_CLIENTS")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{argv:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--clients-file PATH") && stderr.contains("FLOWSIM_CLIENTS=id:secret"),
            "{stderr}"
        );
        assert!(!stderr.contains("s3cret"), "{stderr}");
    }
}

#[test]
fn a_malformed_environment_entry_stops_the_binary() {
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0"])
        .env("FLOWSIM_CLIENTS", "a:one,b-s3cret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("FLOWSIM_CLIENTS entry 2"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[tokio::test]
async fn clients_come_from_the_environment() {
    let mut child = Running(
        Command::new(BIN)
            .args(["--listen", "127.0.0.1:0"])
            .env("FLOWSIM_CLIENTS", "env-a:secret-a, env-b:secret-b")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("flowsim listening on ")
        .unwrap()
        .to_owned();
    let client = reqwest::Client::new();
    let token = |id: &'static str, secret: &'static str| {
        client
            .post(format!("{base}/oauth/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    let ok = token("env-b", "secret-b").await.unwrap().status();
    let wrong = token("env-a", "secret-b").await.unwrap().status();
    let api = client
        .get(format!("{base}/api/v2/flows"))
        .send()
        .await
        .unwrap()
        .status();
    drop(child);
    assert_eq!(ok, 200);
    assert_eq!(wrong, 401);
    // Authentication is on: no token, no API.
    assert_eq!(api, 401);
}

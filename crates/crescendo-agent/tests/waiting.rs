//! What the real agent binary says when it cannot reach its controller: a line at once
//! with the cause in words, a hint for a URL without a scheme, and one-line errors
//! (no backtrace, even with RUST_BACKTRACE set).

use std::process::Command;

/// Run the agent with `args`; exit code and stderr.
fn agent(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_crescendo-agent"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .env_remove("CRESCENDO_CONTROLLER")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

#[test]
fn an_unreachable_controller_is_named_with_the_cause() {
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (code, stderr) = agent(&["--controller", &url, "--give-up-after", "2s"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!("waiting for the controller at {url}")),
        "{stderr}"
    );
    assert!(stderr.contains("refused"), "the cause in words: {stderr}");
    assert!(
        stderr.contains(&format!("error: no controller answered at {url}")),
        "{stderr}"
    );
}

#[test]
fn a_url_without_a_scheme_gets_a_hint() {
    let (code, stderr) = agent(&["--controller", "127.0.0.1:7700"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("write http://127.0.0.1:7700"), "{stderr}");
}

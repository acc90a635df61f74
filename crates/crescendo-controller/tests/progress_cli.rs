//! The binary's progress off a terminal: the default and `--progress bar` both fall
//! back to one plain line a second (here stdout is a pipe), and `--metrics-listen`
//! announces the address it serves on.

mod common;
use common::controller;

#[test]
fn off_a_terminal_the_live_display_falls_back_to_plain_lines() {
    let dir = std::env::temp_dir().join(format!("crescendo-cli-bar-{}", std::process::id()));
    let (code, out) = controller([
        "demo",
        "--agents",
        "1",
        "--duration",
        "3s",
        "--progress",
        "bar",
        "--metrics-listen",
        "127.0.0.1:0",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let plain = out.lines().filter(|l| l.contains(" req/s  ok ")).count();
    assert!(plain >= 2, "one plain line a second: {out}");
    assert!(
        !out.contains('\u{1b}'),
        "no terminal escapes in a pipe: {out}"
    );
    let announced = out
        .lines()
        .find_map(|l| l.strip_prefix("metrics on http://"))
        .unwrap_or_else(|| panic!("no metrics address: {out}"));
    assert!(
        announced.starts_with("127.0.0.1:") && announced.ends_with("/metrics"),
        "{announced}"
    );
    assert!(
        !announced.contains(":0/"),
        "the bound port is shown: {announced}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_metrics_address_in_use_is_reported() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, out) = controller([
        "demo",
        "--duration",
        "2s",
        "--metrics-listen",
        addr.as_str(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("--metrics-listen"), "{out}");
}

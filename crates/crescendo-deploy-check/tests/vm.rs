//! deploy/systemd and scripts/fleet.sh: the units run the real binaries with flags they
//! have, with the hardening and signals the binaries need; `systemd-analyze verify`
//! accepts them (scripts/test.sh installs it); `fleet.sh --dry-run` prints the whole
//! install and never runs ssh.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crescendo_deploy_check::cli::{self, HelpCache};
use crescendo_deploy_check::workspace_root;

fn systemd_dir() -> PathBuf {
    workspace_root().join("deploy/systemd")
}

/// `Key=value` lines of a unit (repeated keys keep every value), sections ignored.
fn unit_entries(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// ExecStart as argv: `${VAR}` from the unit's `Environment=` defaults, `%i` = "plan".
fn exec_start(entries: &[(String, String)]) -> Vec<String> {
    let defaults: BTreeMap<&str, &str> = entries
        .iter()
        .filter(|(k, _)| k == "Environment")
        .filter_map(|(_, v)| v.split_once('='))
        .collect();
    let exec = entries
        .iter()
        .find(|(k, _)| k == "ExecStart")
        .map(|(_, v)| v.as_str())
        .expect("no ExecStart");
    exec.split_whitespace()
        .map(|word| {
            let mut w = word.replace("%i", "plan");
            for (k, v) in &defaults {
                w = w.replace(&format!("${{{k}}}"), v);
            }
            assert!(!w.contains("${"), "{w}: no Environment= default");
            w
        })
        .collect()
}

#[test]
fn units_run_the_binaries_with_real_flags_and_hardening() {
    let mut help = HelpCache::new(cli::built_binaries().unwrap_or_else(|e| panic!("{e}")));
    let mut problems = Vec::new();
    for name in ["crescendo-agent.service", "crescendo-controller@.service"] {
        let text = std::fs::read_to_string(systemd_dir().join(name)).unwrap();
        let entries = unit_entries(&text);
        let has = |k: &str, v: &str| entries.iter().any(|(a, b)| a == k && b == v);
        let argv = exec_start(&entries);
        if cli::crescendo_binary(&argv).is_none() || !argv[0].starts_with("/usr/local/bin/") {
            problems.push(format!(
                "{name}: ExecStart {argv:?} is no /usr/local/bin binary"
            ));
        }
        problems.extend(cli::check_argv(&mut help, name, &argv));
        for (k, v) in [
            ("User", "crescendo"),
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
            ("CapabilityBoundingSet", ""),
        ] {
            if !has(k, v) {
                problems.push(format!("{name}: needs {k}={v}"));
            }
        }
    }
    // The agent takes its controller from the env file, by the variable its CLI reads.
    let agent = std::fs::read_to_string(systemd_dir().join("crescendo-agent.service")).unwrap();
    assert!(agent.contains("EnvironmentFile=/etc/crescendo/agent.env"));
    let example = std::fs::read_to_string(systemd_dir().join("agent.env.example")).unwrap();
    assert!(
        example
            .lines()
            .any(|l| l.starts_with("CRESCENDO_CONTROLLER=http"))
    );
    let out = Command::new(cli::built_binaries().unwrap().join("crescendo-agent"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("env: CRESCENDO_CONTROLLER"));
    assert!(
        problems.is_empty(),
        "{} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// `systemd-analyze verify` on copies whose ExecStart points at the built binaries (it
/// checks that the program exists). Needs systemd-analyze on PATH (scripts/test.sh
/// installs Debian's `systemd` where there is none): without it the test fails, it
/// never skips.
#[test]
fn systemd_analyze_accepts_the_units() {
    if let Err(e) = Command::new("systemd-analyze").arg("--version").output() {
        panic!(
            "systemd-analyze not runnable ({e}): it verifies deploy/systemd; \
             scripts/test.sh installs it (apt-get install systemd)"
        );
    }
    let bins = cli::built_binaries().unwrap_or_else(|e| panic!("{e}"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("systemd-units");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut units = Vec::new();
    for (src, dst) in [
        ("crescendo-agent.service", "crescendo-agent.service"),
        (
            "crescendo-controller@.service",
            "crescendo-controller@flow-update.service",
        ),
    ] {
        let text = std::fs::read_to_string(systemd_dir().join(src)).unwrap();
        let text = text.replace("/usr/local/bin/", &format!("{}/", bins.display()));
        std::fs::write(dir.join(dst), text).unwrap();
        units.push(dir.join(dst));
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {}\n{stderr}",
        out.status
    );
}

#[test]
fn fleet_dry_run_prints_the_install_and_runs_no_ssh() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fleet-dry-run");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let hosts = tmp.join("hosts.txt");
    std::fs::write(
        &hosts,
        "# agents\nvm1.example.invalid\nops@vm2.example.invalid # two\n\n",
    )
    .unwrap();
    // An ssh that records being called: the dry run must never call it.
    let called = tmp.join("ssh-called");
    let fake = tmp.join("ssh");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\ntouch '{}'\nexit 97\n", called.display()),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = workspace_root().join("scripts/fleet.sh");
    let run = |args: &[&str], controller: Option<&str>| {
        let mut cmd = Command::new("bash");
        cmd.arg(&script).args(args).env("SSH", &fake);
        match controller {
            Some(c) => cmd.env("CRESCENDO_CONTROLLER", c),
            None => cmd.env_remove("CRESCENDO_CONTROLLER"),
        };
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code(), stdout)
    };
    let hosts = hosts.to_str().unwrap();

    let (code, out) = run(
        &["--dry-run", "install", hosts],
        Some("http://controller.example.invalid:7700"),
    );
    assert_eq!(code, Some(0), "{out}");
    for host in ["vm1.example.invalid", "ops@vm2.example.invalid"] {
        let lines: Vec<&str> = out.lines().filter(|l| l.contains(host)).collect();
        let expect = [
            "/usr/local/bin/crescendo-agent",
            "/etc/systemd/system/crescendo-agent.service",
            "useradd --system",
            "echo CRESCENDO_CONTROLLER=http://controller.example.invalid:7700 |",
            "/etc/crescendo/agent.env",
            "systemctl daemon-reload",
            "systemctl enable crescendo-agent.service",
        ];
        for e in expect {
            assert!(
                lines.iter().any(|l| l.contains(e)),
                "{host}: no {e:?} in\n{out}"
            );
        }
    }
    assert!(
        out.contains("< deploy/systemd/crescendo-agent.service"),
        "{out}"
    );

    for action in ["start", "stop", "status"] {
        let (code, out) = run(&["-n", action, hosts], None);
        assert_eq!(code, Some(0), "{out}");
        assert_eq!(
            out.lines()
                .filter(|l| l.contains(&format!("systemctl {action}")))
                .count(),
            2,
            "{out}"
        );
    }
    // Bad arguments: exit 2 before touching any host.
    assert_eq!(run(&["--dry-run", "install", hosts], None).0, Some(2));
    assert_eq!(run(&["--dry-run", "reboot", hosts], None).0, Some(2));
    assert_eq!(run(&["--dry-run", "start"], None).0, Some(2));
    assert!(!called.exists(), "the dry run called ssh");
}

//! deploy/systemd and scripts/fleet.sh: the units run the real binaries with flags they
//! have, with the hardening the binaries allow, every `%d/NAME` file loaded with
//! `LoadCredential=NAME:…`, and the service's --data in its `StateDirectory=`;
//! `systemd-analyze verify` accepts them (scripts/test.sh installs it); mutated units
//! show each kind of mistake is caught; `fleet.sh --dry-run` prints the whole install
//! and never runs ssh.

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

/// The units in deploy/systemd, as installed (a template as its instance name).
const UNITS: [(&str, &str); 3] = [
    ("crescendo-agent.service", "crescendo-agent.service"),
    (
        "crescendo-controller@.service",
        "crescendo-controller@flow-update.service",
    ),
    (
        "crescendo-controller-serve.service",
        "crescendo-controller-serve.service",
    ),
];

/// ExecStart as argv: `${VAR}` from the unit's `Environment=` defaults, `%i` = "plan",
/// `%S` = /var/lib (a system unit's state root).
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
            let mut w = word.replace("%i", "plan").replace("%S", "/var/lib");
            for (k, v) in &defaults {
                w = w.replace(&format!("${{{k}}}"), v);
            }
            assert!(!w.contains("${"), "{w}: no Environment= default");
            w
        })
        .collect()
}

/// Every problem with one unit; `name` is its file name.
fn check_unit(name: &str, text: &str, help: &mut HelpCache) -> Vec<String> {
    let mut problems = Vec::new();
    let entries = unit_entries(text);
    let has = |k: &str, v: &str| entries.iter().any(|(a, b)| a == k && b == v);
    let values = |k: &str| -> Vec<&str> {
        entries
            .iter()
            .filter(|(a, _)| a == k)
            .map(|(_, b)| b.as_str())
            .collect()
    };
    let argv = exec_start(&entries);
    if cli::crescendo_binary(&argv).is_none() || !argv[0].starts_with("/usr/local/bin/") {
        problems.push(format!(
            "{name}: ExecStart {argv:?} is no /usr/local/bin binary"
        ));
    }
    problems.extend(cli::check_argv(help, name, &argv));
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
    // Token files are systemd credentials: %d/NAME needs LoadCredential=NAME:PATH.
    let credentials: Vec<&str> = values("LoadCredential")
        .into_iter()
        .filter_map(|v| v.split_once(':').map(|(id, _)| id))
        .collect();
    for arg in &argv {
        if let Some(id) = arg.strip_prefix("%d/")
            && !credentials.contains(&id)
        {
            problems.push(format!("{name}: {arg} but no LoadCredential={id}:PATH"));
        }
    }
    for flag in ["--enrol-token-file", "--admin-token-file"] {
        if let Some(path) = cli::flag_value(&argv, flag)
            && !path.starts_with("%d/")
        {
            problems.push(format!(
                "{name}: {flag} {path} is not a systemd credential (%d/NAME)"
            ));
        }
    }
    // `serve` keeps its database in the StateDirectory, the one place it may write
    // under ProtectSystem=strict, and comes back after a crash.
    if cli::subcommand("crescendo-controller", &argv).as_deref() == Some("serve") {
        let data = cli::flag_value(&argv, "--data").unwrap_or_default();
        let in_state = values("StateDirectory")
            .iter()
            .flat_map(|v| v.split_whitespace())
            .any(|d| {
                let dir = format!("/var/lib/{d}");
                data == dir || data.starts_with(&format!("{dir}/"))
            });
        if !in_state {
            problems.push(format!(
                "{name}: --data {data:?} is not in a StateDirectory= (/var/lib/NAME), the \
                 only place ProtectSystem=strict lets it write"
            ));
        }
        if !has("Restart", "on-failure") && !has("Restart", "always") {
            problems.push(format!("{name}: a service needs Restart=on-failure"));
        }
    }
    problems
}

#[test]
fn units_run_the_binaries_with_real_flags_and_hardening() {
    let mut help = HelpCache::new(cli::built_binaries().unwrap_or_else(|e| panic!("{e}")));
    let mut problems = Vec::new();
    for (name, _) in UNITS {
        let text = std::fs::read_to_string(systemd_dir().join(name)).unwrap();
        problems.extend(check_unit(name, &text, &mut help));
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
    let agent_help = String::from_utf8_lossy(&out.stdout);
    assert!(agent_help.contains("env: CRESCENDO_CONTROLLER"));
    // The example's labels line names the variable the agent reads them from.
    assert!(example.contains("# CRESCENDO_AGENT_LABELS="));
    assert!(agent_help.contains("env: CRESCENDO_AGENT_LABELS"));
    // Every variable serve.env.example sets is one the serve unit uses.
    let serve =
        std::fs::read_to_string(systemd_dir().join("crescendo-controller-serve.service")).unwrap();
    let serve_env = std::fs::read_to_string(systemd_dir().join("serve.env.example")).unwrap();
    for line in serve_env
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
    {
        let var = line.split('=').next().unwrap();
        if !serve.contains(&format!("${{{var}}}")) {
            problems.push(format!(
                "serve.env.example: {var} is no ${{{var}}} of the unit"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

#[test]
fn unit_mistakes_are_caught() {
    let mut help = HelpCache::new(cli::built_binaries().unwrap_or_else(|e| panic!("{e}")));
    let serve = "crescendo-controller-serve.service";
    let cases = [
        // (name, unit, from, to, a fragment of the expected problem)
        (
            "serve-flag",
            serve,
            "--keep-days ",
            "--keep-day ",
            "has no flag --keep-day",
        ),
        (
            "serve-data",
            serve,
            "--data %S/crescendo",
            "--data /srv/crescendo",
            "--data \"/srv/crescendo\" is not in a StateDirectory=",
        ),
        (
            "serve-credential",
            serve,
            "LoadCredential=admin-token:",
            "LoadCredential=admin:",
            "%d/admin-token but no LoadCredential=admin-token:PATH",
        ),
        (
            "serve-token-path",
            serve,
            "--admin-token-file %d/admin-token",
            "--admin-token-file /etc/crescendo/admin.token",
            "is not a systemd credential",
        ),
        (
            "serve-restart",
            serve,
            "Restart=on-failure",
            "Restart=no",
            "a service needs Restart=on-failure",
        ),
        (
            "serve-hardening",
            serve,
            "\nProtectSystem=strict",
            "\nProtectSystem=full",
            "needs ProtectSystem=strict",
        ),
        (
            "agent-flag",
            "crescendo-agent.service",
            "--enrol-token-file %d",
            "--enrol-token %d",
            "has no flag --enrol-token",
        ),
    ];
    let mut missed = Vec::new();
    for (case, unit, from, to, expected) in cases {
        let text = std::fs::read_to_string(systemd_dir().join(unit)).unwrap();
        assert!(text.contains(from), "{case}: {unit} has no {from:?}");
        let problems = check_unit(unit, &text.replacen(from, to, 1), &mut help);
        if !problems.iter().any(|p| p.contains(expected)) {
            missed.push(format!(
                "{case}: expected a problem containing {expected:?}, got {problems:#?}"
            ));
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n"));
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
    for (src, dst) in UNITS {
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

//! The real binaries' command lines: `--help` text from the built binaries, and checks
//! that a container's argv only uses flags they have.
//!
//! Binaries of other packages are not `CARGO_BIN_EXE_*` here, so [`built_binaries`]
//! builds them into the target directory the test itself was built into
//! (`target/debug/deps/k8s-…` → `target/debug`), or takes `CRESCENDO_BIN_DIR`.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Crescendo binaries a container may run.
pub const BINARIES: [&str; 3] = [
    "crescendo-controller",
    "crescendo-agent",
    "crescendo-flowsim",
];

/// The binary and package a container's argv runs, if it is one of [`BINARIES`].
pub fn crescendo_binary(argv: &[String]) -> Option<&'static str> {
    let first = argv.first()?;
    let name = first.rsplit('/').next().unwrap_or(first);
    BINARIES.into_iter().find(|b| *b == name)
}

/// Builds the binaries (a no-op when they are fresh) into the target directory this
/// test executable was built into, and returns the directory that holds them.
///
/// `$CRESCENDO_BIN_DIR`, when set, is used as it is, without building.
/// `cargo test --workspace` does not build `crescendo-agent`'s binary (that package has
/// no integration test), and a stale binary would describe an old command line, so the
/// check builds them itself; cargo does not hold the build lock while tests run.
pub fn built_binaries() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("CRESCENDO_BIN_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // target/<profile>/deps/<test>-<hash>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("{} is not in target/<profile>/deps", exe.display()))?;
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(name) => name,
        None => return Err(format!("no profile directory above {}", exe.display())),
    };
    let target_dir = profile_dir.parent().unwrap_or(profile_dir);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.args([
        "build",
        "--quiet",
        "--bins",
        "--profile",
        profile,
        "--target-dir",
    ])
    .arg(target_dir)
    .current_dir(crate::workspace_root());
    // Cargo gives the test its package's CARGO_PKG_*, CARGO_MANIFEST_* … variables; some
    // build scripts (ring, rustls) rerun when those change, so the nested build would
    // rebuild them every time unless it sees the plain environment again.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let from_cargo = ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_BIN_EXE_"]
            .iter()
            .any(|p| key.starts_with(p))
            || [
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
                "OUT_DIR",
            ]
            .contains(&key.as_ref());
        if from_cargo {
            cmd.env_remove(key.as_ref());
        }
    }
    for b in BINARIES {
        cmd.args(["-p", b]);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("running {}: {e}", cargo.to_string_lossy()))?;
    if !out.status.success() {
        return Err(format!(
            "building {BINARIES:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    match BINARIES.iter().find(|b| !profile_dir.join(b).is_file()) {
        Some(missing) => Err(format!(
            "{missing} is not in {} after cargo build; set CRESCENDO_BIN_DIR to where \
             the binaries are",
            profile_dir.display()
        )),
        None => Ok(profile_dir.to_path_buf()),
    }
}

/// `--help` output per (binary, subcommand), each run once.
#[derive(Debug)]
pub struct HelpCache {
    dir: PathBuf,
    flags: HashMap<(String, Option<String>), Result<BTreeSet<String>, String>>,
}

impl HelpCache {
    /// Runs the binaries found in `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            flags: HashMap::new(),
        }
    }

    /// The long flags (`--name`) that `binary [subcommand] --help` lists.
    pub fn flags(
        &mut self,
        binary: &str,
        subcommand: Option<&str>,
    ) -> Result<&BTreeSet<String>, String> {
        let key = (binary.to_owned(), subcommand.map(str::to_owned));
        let dir = &self.dir;
        self.flags
            .entry(key)
            .or_insert_with(|| {
                let path = dir.join(binary);
                let mut cmd = Command::new(&path);
                cmd.args(subcommand).arg("--help");
                let out = cmd
                    .output()
                    .map_err(|e| format!("running {} --help: {e}", path.display()))?;
                if !out.status.success() {
                    return Err(format!(
                        "{} {} --help failed ({}): {}",
                        path.display(),
                        subcommand.unwrap_or(""),
                        out.status,
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
                Ok(long_flags(&String::from_utf8_lossy(&out.stdout)))
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// Every `--long-flag` mentioned in a help text.
pub fn long_flags(help: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in help.match_indices("--") {
        let rest = &help[i + 2..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(rest.len());
        let name = &rest[..len];
        let boundary = help[..i]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || c == '[' || c == ',');
        if boundary && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
            out.insert(format!("--{name}"));
        }
    }
    out
}

/// The subcommand a controller argv runs (`run`, `status`, …); other binaries have none.
pub fn subcommand(binary: &str, argv: &[String]) -> Option<String> {
    if binary != "crescendo-controller" {
        return None;
    }
    argv.iter().skip(1).find(|a| !a.starts_with('-')).cloned()
}

/// The value of `--name=value` or `--name value` in argv.
pub fn flag_value<'a>(argv: &'a [String], name: &str) -> Option<&'a str> {
    let mut it = argv.iter();
    while let Some(arg) = it.next() {
        if let Some(v) = arg
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
        {
            return Some(v);
        }
        if arg == name {
            return it.next().map(String::as_str);
        }
    }
    None
}

/// The port of the `--listen ADDR` flag, if present; an unparseable address is an error.
pub fn listen_port(argv: &[String]) -> Result<Option<u16>, String> {
    match flag_value(argv, "--listen") {
        None => Ok(None),
        Some(addr) => addr
            .parse::<SocketAddr>()
            .map(|a| Some(a.port()))
            .map_err(|e| format!("--listen {addr}: {e}")),
    }
}

/// `host` and `port` of an `http://host:port[/…]` URL (port defaults to 80/443).
pub fn url_host_port(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let default = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
        None => Some((authority.to_owned(), default)),
    }
}

/// Problems with one argv: unknown flags for its binary (and subcommand), or a binary
/// whose help could not be read. `at` names the container in messages.
pub fn check_argv(help: &mut HelpCache, at: &str, argv: &[String]) -> Vec<String> {
    let Some(binary) = crescendo_binary(argv) else {
        return Vec::new();
    };
    let sub = subcommand(binary, argv);
    let known = match help.flags(binary, sub.as_deref()) {
        Ok(known) => known,
        Err(e) => return vec![format!("{at}: {e}")],
    };
    let mut problems = Vec::new();
    for arg in argv.iter().skip(1) {
        if let Some(flag) = arg.strip_prefix("--") {
            let name = format!("--{}", flag.split('=').next().unwrap_or(flag));
            if !known.contains(&name) {
                let cmd = [binary]
                    .into_iter()
                    .chain(sub.as_deref())
                    .collect::<Vec<_>>();
                problems.push(format!(
                    "{at}: `{}` has no flag {name} (its --help lists: {})",
                    cmd.join(" "),
                    known.iter().cloned().collect::<Vec<_>>().join(" ")
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn long_flags_from_clap_help() {
        let help = "Usage: x [OPTIONS] --controller <CONTROLLER>\n\nOptions:\n      \
                    --controller <CONTROLLER>  The URL [env: X=]\n      --give-up-after \
                    <GIVE_UP_AFTER>\n  -h, --help  Print help (see a summary with '-h')\n  \
                    -V, --version\n text--not-a-flag and -- alone\n";
        let flags = long_flags(help);
        let flags: Vec<_> = flags.iter().map(String::as_str).collect();
        assert_eq!(
            flags,
            ["--controller", "--give-up-after", "--help", "--version"]
        );
    }

    #[test]
    fn argv_parts() {
        let a =
            argv("/usr/local/bin/crescendo-controller run p.toml --agents=3 --listen 0.0.0.0:7700");
        assert_eq!(crescendo_binary(&a), Some("crescendo-controller"));
        assert_eq!(
            subcommand("crescendo-controller", &a).as_deref(),
            Some("run")
        );
        assert_eq!(flag_value(&a, "--agents"), Some("3"));
        assert_eq!(listen_port(&a), Ok(Some(7700)));
        assert!(listen_port(&argv("x --listen=:1")).is_err());
        assert_eq!(crescendo_binary(&argv("sh -c true")), None);
        assert_eq!(
            subcommand("crescendo-agent", &argv("crescendo-agent --id x")),
            None
        );
    }

    #[test]
    fn urls() {
        assert_eq!(
            url_host_port("http://crescendo-controller:7700"),
            Some(("crescendo-controller".into(), 7700))
        );
        assert_eq!(
            url_host_port("https://api.example/v2"),
            Some(("api.example".into(), 443))
        );
        assert_eq!(url_host_port("ftp://x"), None);
    }
}

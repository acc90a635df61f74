//! Compose files (`docker-compose.yml`, `docker-compose.service.yml`): each service's
//! `command` with `${VAR:-default}` expanded to its default, checked like a Kubernetes
//! container's argv; the agents' `--controller` URL against the controller service's
//! `--listen` port; health checks that run a binary of the image (no shell) and probe
//! the service's own port; token and certificate files as Compose secrets; `run --out`
//! on a writable mount and `serve --data` on a named volume.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::cli::{self, HelpCache};

/// Expands `${VAR:-default}` and `${VAR-default}` to the default and `${VAR}`/`$VAR`
/// to an empty string, as Compose does with an empty environment. `$$` is a `$`.
pub fn expand_defaults(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').unwrap_or(body.len());
            let inner = &body[..end];
            if let Some((_, default)) = inner.split_once(":-").or_else(|| inner.split_once('-')) {
                out.push_str(default);
            }
            rest = body.get(end + 1..).unwrap_or("");
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    out
}

/// Each service's command as argv (a string command is split on whitespace).
pub fn commands(value: &Value) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let services = value.get("services").and_then(Value::as_object);
    for (name, service) in services.into_iter().flatten() {
        let argv: Vec<String> = match service.get("command") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => expand_defaults(s),
                    other => other.to_string(),
                })
                .collect(),
            Some(Value::String(s)) => expand_defaults(s)
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            _ => continue,
        };
        out.insert(name.clone(), argv);
    }
    out
}

/// A service's volume mount: named volume or host path, where, and whether read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// A named volume, a host path (`./out`, `/srv/x`), or none (an anonymous volume).
    pub source: Option<String>,
    /// The path in the container.
    pub target: String,
    /// `:ro`, or `read_only: true`.
    pub read_only: bool,
}

/// A service's `volumes`, short (`src:dst[:ro]`) and long (`{source, target}`) syntax.
pub fn mounts(service: &Value) -> Vec<Mount> {
    let items = service.get("volumes").and_then(Value::as_array);
    items
        .into_iter()
        .flatten()
        .filter_map(|v| match v {
            Value::String(s) => {
                let s = expand_defaults(s);
                let parts: Vec<&str> = s.split(':').collect();
                let (source, target, mode) = match parts.as_slice() {
                    [target] => (None, *target, ""),
                    [source, target] => (Some(*source), *target, ""),
                    [source, target, mode, ..] => (Some(*source), *target, *mode),
                    [] => return None,
                };
                Some(Mount {
                    source: source.map(str::to_owned),
                    target: target.to_owned(),
                    read_only: mode.split(',').any(|m| m == "ro"),
                })
            }
            Value::Object(o) => Some(Mount {
                source: o.get("source").and_then(Value::as_str).map(str::to_owned),
                target: o.get("target").and_then(Value::as_str)?.to_owned(),
                read_only: o.get("read_only").and_then(Value::as_bool) == Some(true),
            }),
            _ => None,
        })
        .collect()
}

/// The mount `path` lies on (the deepest one).
fn mount_of<'a>(mounts: &'a [Mount], path: &str) -> Option<&'a Mount> {
    mounts
        .iter()
        .filter(|m| {
            let dir = m.target.trim_end_matches('/');
            path == dir || path.starts_with(&format!("{dir}/"))
        })
        .max_by_key(|m| m.target.len())
}

/// Reads a compose file as JSON, with `<<: *anchor` merge keys applied.
pub fn load(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut yaml: serde_norway::Value =
        serde_norway::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    yaml.apply_merge()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::to_value(yaml).map_err(|e| format!("{}: {e}", path.display()))
}

/// Every problem with the compose file at `path`.
pub fn check(path: &Path, help: &mut HelpCache) -> Vec<String> {
    let value = match load(path) {
        Ok(v) => v,
        Err(e) => return vec![e],
    };
    let commands = commands(&value);
    let mut problems = Vec::new();
    if commands.is_empty() {
        problems.push(format!("{}: no service has a command", path.display()));
    }
    for (service, argv) in &commands {
        let at = format!("{} service {service}", path.display());
        if cli::crescendo_binary(argv).is_none() {
            problems.push(format!("{at}: command {argv:?} runs no Crescendo binary"));
        }
        problems.extend(cli::check_argv(help, &at, argv));
        if let Err(e) = cli::listen_port(argv) {
            problems.push(format!("{at}: {e}"));
        }
        if let Some(url) = cli::flag_value(argv, "--controller") {
            let target = cli::url_host_port(url).and_then(|(host, port)| {
                let listen = cli::listen_port(commands.get(&host)?).ok().flatten()?;
                Some(listen == port)
            });
            if target != Some(true) {
                problems.push(format!(
                    "{at}: --controller {url} is no service's --listen port"
                ));
            }
        }
        let spec = &value["services"][service.as_str()];
        check_healthcheck(&at, spec, argv, help, &mut problems);
        check_secret_files(&at, &value, spec, argv, &mut problems);
        check_state(&at, &value, spec, argv, &mut problems);
    }
    problems
}

/// A `healthcheck` runs a binary of the image (no shell in it) with flags it has, and
/// `health --tcp` probes the service's own `--listen` port.
fn check_healthcheck(
    at: &str,
    spec: &Value,
    argv: &[String],
    help: &mut HelpCache,
    out: &mut Vec<String>,
) {
    let Some(test) = spec.get("healthcheck").and_then(|h| h.get("test")) else {
        return;
    };
    let words: Vec<String> = match test {
        Value::Array(items) => items
            .iter()
            .map(|v| expand_defaults(v.as_str().unwrap_or_default()))
            .collect(),
        other => vec!["CMD-SHELL".to_owned(), other.to_string()],
    };
    let Some(("CMD", check)) = words.split_first().map(|(k, rest)| (k.as_str(), rest)) else {
        out.push(format!(
            "{at}: healthcheck {words:?} needs a shell, which the FROM scratch image does \
             not have: use [CMD, crescendo-controller, health, --tcp, ADDR]"
        ));
        return;
    };
    let at_check = format!("{at} healthcheck");
    out.extend(cli::check_argv(help, &at_check, check));
    if cli::crescendo_binary(check).is_none() {
        out.push(format!("{at_check}: {check:?} runs no Crescendo binary"));
    }
    if let Some(addr) = cli::flag_value(check, "--tcp") {
        let probed = addr.parse::<std::net::SocketAddr>().map(|a| a.port()).ok();
        let listen = cli::listen_port(argv).ok().flatten();
        if probed.is_none() || probed != listen {
            out.push(format!(
                "{at_check}: --tcp {addr} but the service listens on {listen:?} (--listen)"
            ));
        }
    }
}

/// Token and certificate files are Compose secrets: `/run/secrets/NAME`, with NAME in
/// the service's `secrets` and defined at the top level.
fn check_secret_files(
    at: &str,
    file: &Value,
    spec: &Value,
    argv: &[String],
    out: &mut Vec<String>,
) {
    let granted: Vec<&str> = spec
        .get("secrets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| match s {
            Value::String(name) => Some(name.as_str()),
            Value::Object(o) => o
                .get("target")
                .or_else(|| o.get("source"))
                .and_then(Value::as_str),
            _ => None,
        })
        .collect();
    for flag in crate::credentials::SECRET_FILE_FLAGS {
        let Some(path) = cli::flag_value(argv, flag) else {
            continue;
        };
        let Some(name) = path.strip_prefix("/run/secrets/") else {
            out.push(format!(
                "{at}: {flag} {path} is not a Compose secret (/run/secrets/NAME)"
            ));
            continue;
        };
        if !granted.contains(&name) {
            out.push(format!(
                "{at}: {flag} {path}: secret {name} is not in the service's secrets"
            ));
        }
        if file.get("secrets").and_then(|s| s.get(name)).is_none() {
            out.push(format!(
                "{at}: {flag} {path}: secret {name} is not defined under the top-level secrets"
            ));
        }
    }
}

/// `run --out` on a writable mount (the root filesystem is read-only); `serve --data`
/// on a writable named volume declared at the top level, which outlives the container
/// and is local to the Docker host (SQLite in WAL mode wants no network file system).
fn check_state(at: &str, file: &Value, spec: &Value, argv: &[String], out: &mut Vec<String>) {
    let mounts = mounts(spec);
    let sub = cli::subcommand("crescendo-controller", argv);
    let (flag, named) = match sub.as_deref() {
        Some("run") if cli::crescendo_binary(argv) == Some("crescendo-controller") => {
            ("--out", false)
        }
        Some("serve") if cli::crescendo_binary(argv) == Some("crescendo-controller") => {
            ("--data", true)
        }
        _ => return,
    };
    let Some(dir) = cli::flag_value(argv, flag) else {
        if named {
            out.push(format!("{at}: `serve` without --data"));
        }
        return;
    };
    let Some(mount) = mount_of(&mounts, dir).filter(|m| !m.read_only) else {
        out.push(format!(
            "{at}: {flag} {dir} is not on a writable volume (the root filesystem is read-only)"
        ));
        return;
    };
    if !named {
        return;
    }
    let declared = mount
        .source
        .as_deref()
        .filter(|s| !s.starts_with(['.', '/', '~']))
        .is_some_and(|s| file.get("volumes").and_then(|v| v.get(s)).is_some());
    if !declared {
        out.push(format!(
            "{at}: --data {dir} is on {:?}, not a named volume of the top-level volumes",
            mount.source
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_expand() {
        assert_eq!(expand_defaults("--agents=${AGENTS:-3}"), "--agents=3");
        assert_eq!(expand_defaults("/plans/${PLAN-a.toml}"), "/plans/a.toml");
        assert_eq!(expand_defaults("x${NOPE}y$ALSO.z $$1"), "xy.z $1");
    }

    #[test]
    fn mounts_short_and_long() {
        let v: Value = serde_norway::from_str(
            "volumes:\n  - data:/var/lib/x\n  - ./plans:/plans:ro\n  - /anon\n  \
             - {type: volume, source: d2, target: /d2, read_only: true}\n",
        )
        .unwrap();
        let m = mounts(&v);
        assert_eq!(m[0].source.as_deref(), Some("data"));
        assert_eq!(m[0].target, "/var/lib/x");
        assert!(m[1].read_only && !m[0].read_only);
        assert_eq!(
            (m[2].source.as_deref(), m[2].target.as_str()),
            (None, "/anon")
        );
        assert!(m[3].read_only);
        assert_eq!(
            mount_of(&m, "/var/lib/x/db").map(|m| m.target.as_str()),
            Some("/var/lib/x")
        );
        assert!(mount_of(&m, "/var/lib/xy").is_none());
    }

    #[test]
    fn commands_from_lists_and_strings() {
        let v: Value = serde_norway::from_str(
            "services:\n  a:\n    command: [crescendo-agent, \"--controller=http://c:${P:-1}\"]\n  \
             b:\n    command: crescendo-flowsim --listen 0.0.0.0:8080\n  c:\n    image: x\n",
        )
        .unwrap();
        let c = commands(&v);
        assert_eq!(c["a"], ["crescendo-agent", "--controller=http://c:1"]);
        assert_eq!(c["b"], ["crescendo-flowsim", "--listen", "0.0.0.0:8080"]);
        assert!(!c.contains_key("c"));
    }
}

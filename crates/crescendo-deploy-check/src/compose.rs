//! `docker-compose.yml`: each service's `command` with `${VAR:-default}` expanded to
//! its default, checked like a Kubernetes container's argv, and the agents'
//! `--controller` URL against the controller service's `--listen` port.

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

/// Every problem with the compose file at `path`.
pub fn check(path: &Path, help: &mut HelpCache) -> Vec<String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return vec![format!("{}: {e}", path.display())],
    };
    let value: Value = match serde_norway::from_str(&text) {
        Ok(v) => v,
        Err(e) => return vec![format!("{}: {e}", path.display())],
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
    }
    problems
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

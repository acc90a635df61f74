//! Command-line overrides of a plan's values: `--set key.path=value`, applied to the
//! document before it is validated, so an override is checked exactly like the file.
//!
//! The key is a dotted path into the plan: `load.max_in_flight`, `target.base_url`,
//! `load.stages[1].target`, `thresholds."latency.p99"` (quote a key holding a dot); a
//! missing table on the way is created. The value is a TOML value (`20`, `0.5`, `true`,
//! `"text"`, `[200, 201]`, `{ duration = "10s", target = 5 }`), or, when it does not
//! parse as one, the text itself as a string, so `--set target.timeout=5s` and
//! `--set target.base_url=http://127.0.0.1:8080` need no quotes.
//!
//! An error about an overridden key names the flag as given
//! (`--set load.max_in_flight=abc: load.max_in_flight: expected …`); an error elsewhere
//! in the plan is located in the file as usual.

use std::path::Path;
use std::str::FromStr;

use toml::{Table, Value};

use crate::files::{DirFiles, PlanFiles};
use crate::{Plan, PlanError};

/// One `--set key.path=value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// The flag as given, `key.path=value`, for error messages.
    pub flag: String,
    path: Vec<Segment>,
    value: Value,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

impl Override {
    /// The key path as the validator names keys (`load.stages[1].target`).
    pub fn key(&self) -> String {
        let mut out = String::new();
        for segment in &self.path {
            match segment {
                Segment::Key(k) if out.is_empty() => out.push_str(k),
                Segment::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    fn error(&self, message: impl Into<String>) -> PlanError {
        let mut e = PlanError::arguments(self.key(), message);
        e.origin = format!("--set {}", self.flag);
        e
    }
}

/// `a.b[2]."c.d"` as segments.
fn parse_path(key: &str) -> Result<Vec<Segment>, String> {
    let mut segments = Vec::new();
    let mut chars = key.chars().peekable();
    loop {
        let name = match chars.peek() {
            Some('"') => {
                chars.next();
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(c) => name.push(c),
                        None => return Err("a quoted key is not closed".into()),
                    }
                }
                name
            }
            _ => {
                let mut name = String::new();
                while let Some(&c) = chars.peek() {
                    if c == '.' || c == '[' {
                        break;
                    }
                    name.push(c);
                    chars.next();
                }
                name
            }
        };
        if name.is_empty() {
            return Err("expected a key path such as load.max_in_flight".into());
        }
        segments.push(Segment::Key(name));
        while chars.peek() == Some(&'[') {
            chars.next();
            let digits: String = chars.by_ref().take_while(|c| *c != ']').collect();
            let index = digits
                .trim()
                .parse()
                .map_err(|_| format!("expected an index such as [0], got [{digits}]"))?;
            segments.push(Segment::Index(index));
        }
        match chars.next() {
            None => return Ok(segments),
            Some('.') => {}
            Some(c) => return Err(format!("unexpected {c:?} in the key path")),
        }
    }
}

/// A TOML value, or the text as a string when it is not one.
fn parse_value(text: &str) -> Value {
    format!("v = {text}")
        .parse::<Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(text.to_owned()))
}

impl FromStr for Override {
    type Err = String;

    /// `key.path=value`; the error says what is wrong with the flag.
    fn from_str(flag: &str) -> Result<Self, String> {
        let Some((key, value)) = flag.split_once('=') else {
            return Err(format!(
                "expected key.path=value (e.g. load.max_in_flight=50), got {flag:?}"
            ));
        };
        let path = parse_path(key.trim())?;
        Ok(Self {
            flag: flag.to_owned(),
            path,
            value: parse_value(value.trim()),
        })
    }
}

/// Sets one override in the document.
fn apply(doc: &mut Table, o: &Override) -> Result<(), PlanError> {
    let Some((last, parents)) = o.path.split_last() else {
        return Err(o.error("expected a key path"));
    };
    let mut here: &mut Value = {
        let Segment::Key(first) = &o.path[0] else {
            return Err(o.error("a key path starts with a key"));
        };
        if parents.is_empty() {
            doc.insert(first.clone(), o.value.clone());
            return Ok(());
        }
        doc.entry(first.clone())
            .or_insert_with(|| Value::Table(Table::new()))
    };
    for (depth, segment) in parents.iter().enumerate().skip(1) {
        let at = || {
            let mut prefix = o.clone();
            prefix.path.truncate(depth);
            prefix.key()
        };
        here = match (segment, here) {
            (Segment::Key(k), Value::Table(t)) => t
                .entry(k.clone())
                .or_insert_with(|| Value::Table(Table::new())),
            (Segment::Index(i), Value::Array(a)) => {
                let len = a.len();
                a.get_mut(*i)
                    .ok_or_else(|| o.error(format!("{} has {len} entries: no index {i}", at())))?
            }
            (Segment::Key(_), _) => return Err(o.error(format!("{} is not a table", at()))),
            (Segment::Index(_), _) => return Err(o.error(format!("{} is not an array", at()))),
        };
    }
    let parent = o.path.len() - 1;
    let mut prefix = o.clone();
    prefix.path.truncate(parent);
    match (last, here) {
        (Segment::Key(k), Value::Table(t)) => {
            t.insert(k.clone(), o.value.clone());
        }
        (Segment::Index(i), Value::Array(a)) => {
            let len = a.len();
            match a.get_mut(*i) {
                Some(slot) => *slot = o.value.clone(),
                None if *i == len => a.push(o.value.clone()),
                None => {
                    return Err(
                        o.error(format!("{} has {len} entries: no index {i}", prefix.key()))
                    );
                }
            }
        }
        (Segment::Key(_), _) => return Err(o.error(format!("{} is not a table", prefix.key()))),
        (Segment::Index(_), _) => {
            return Err(o.error(format!("{} is not an array", prefix.key())));
        }
    }
    Ok(())
}

/// Whether an error at `key` is about the override at `set` (the same key, a key
/// inside it, or the table holding it).
fn concerns(key: &str, set: &str) -> bool {
    let under =
        |a: &str, b: &str| a == b || a.strip_prefix(b).is_some_and(|r| r.starts_with(['.', '[']));
    under(key, set) || (!key.is_empty() && under(set, key))
}

/// `text` (the plan as written, named `origin`) with `overrides` applied, validated;
/// returns the plan and the text to run (the document written again when there are
/// overrides, comments dropped). Errors: see the module docs.
pub fn parse_with_overrides(
    text: &str,
    origin: &str,
    files: &dyn PlanFiles,
    overrides: &[Override],
) -> Result<(Plan, String), PlanError> {
    if overrides.is_empty() {
        return crate::parse_with(text, origin, files).map(|plan| (plan, text.to_owned()));
    }
    // A document that is not TOML: the file's own error, located.
    let Ok(mut doc) = text.parse::<Table>() else {
        return crate::parse_with(text, origin, files).map(|plan| (plan, text.to_owned()));
    };
    for o in overrides {
        apply(&mut doc, o)?;
    }
    let edited = toml::to_string(&doc).map_err(|e| {
        PlanError::arguments("", format!("the overridden plan cannot be written: {e}"))
    })?;
    match crate::parse_with(&edited, "--set", files) {
        Ok(plan) => Ok((plan, edited)),
        Err(e) => {
            // The last override of that key is the one in force.
            if let Some(o) = overrides.iter().rev().find(|o| concerns(&e.key, &o.key())) {
                let mut named = o.error(e.message.clone());
                named.key = e.key;
                return Err(named);
            }
            // Elsewhere: the file's own error where it has one, located in the file.
            crate::parse_with(text, origin, files)?;
            let flags: Vec<String> = overrides
                .iter()
                .map(|o| format!("--set {}", o.flag))
                .collect();
            let mut e = e;
            e.origin = flags.join(" ");
            e.line = 0;
            e.column = 0;
            Err(e)
        }
    }
}

/// [`crate::load_with_text`] with `overrides` applied before validation.
pub fn load_with_overrides(
    path: &Path,
    overrides: &[Override],
) -> Result<(Plan, String), PlanError> {
    if overrides.is_empty() {
        return crate::load_with_text(path);
    }
    let (_, text) = crate::read_text(path)?;
    parse_with_overrides(
        &text,
        &path.display().to_string(),
        &DirFiles::for_plan(path),
        overrides,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoFiles;

    const PLAN: &str = r#"
name = "p"
[target]
base_url = "http://127.0.0.1:9"
[[scenario.steps]]
name = "get"
path = "/x"
[load]
stages = [ { duration = "10s", target = 5 } ]
"#;

    fn set(flags: &[&str]) -> Result<(Plan, String), PlanError> {
        let overrides: Vec<Override> = flags.iter().map(|f| f.parse().unwrap()).collect();
        parse_with_overrides(PLAN, "p.toml", &NoFiles, &overrides)
    }

    #[test]
    fn values_are_toml_or_bare_strings_and_paths_reach_into_arrays() {
        let (plan, text) = set(&[
            "load.max_in_flight=7",
            "target.base_url=http://127.0.0.1:8080/",
            "load.stages[0].target=12.5",
            "load.stages[0].duration=30s",
            "name=\"renamed\"",
        ])
        .unwrap();
        assert_eq!(plan.name, "renamed");
        assert_eq!(plan.target.base_url, "http://127.0.0.1:8080");
        assert!(text.contains("max_in_flight = 7"), "{text}");
        assert_eq!(plan.duration(), std::time::Duration::from_secs(30));
        let (plan, _) = set(&["thresholds.\"latency.p99\"=< 500ms"]).unwrap();
        assert_eq!(plan.thresholds.len(), 1);
    }

    #[test]
    fn errors_name_the_flag_and_the_key() {
        let e = set(&["load.max_in_flight=abc"]).unwrap_err().to_string();
        assert!(
            e.starts_with("--set load.max_in_flight=abc: load.max_in_flight: "),
            "{e}"
        );
        let e = set(&["load.stages[3].target=1"]).unwrap_err().to_string();
        assert!(e.contains("load.stages has 1 entries: no index 3"), "{e}");
        let e = set(&["name.first=1"]).unwrap_err().to_string();
        assert!(e.contains("name is not a table"), "{e}");
        let e = set(&["load.bogus=1"]).unwrap_err().to_string();
        assert!(e.starts_with("--set load.bogus=1: "), "{e}");
        assert!("no-equals".parse::<Override>().is_err());
        assert!("=1".parse::<Override>().is_err());
    }
}

//! The plan reference (`docs/plan-reference.md`), generated from the validator itself:
//! the keys each table accepts are asked of the parser (an unknown key's error lists
//! the keys it expects), and the prose is this crate's own "Format" documentation
//! (the docs of `lib.rs`, which `cargo doc` shows too). [`undocumented_keys`] lists the
//! keys the validator accepts that the prose never names. Regenerate with
//! `cargo run -p crescendo-plan --example plan-reference > docs/plan-reference.md`.

use toml::{Table, Value};

/// The tables of a plan and where they sit, as (key path shown, path to create).
const TABLES: &[(&str, &[&str])] = &[
    ("(top level)", &[]),
    ("target", &["target"]),
    ("auth", &["auth"]),
    ("auth.clients[]", &["auth", "clients[]"]),
    ("scenario", &["scenario"]),
    ("scenario.steps[]", &["scenario", "steps[0]"]),
    (
        "scenario.steps[].checks[]",
        &["scenario", "steps[0]", "checks[]"],
    ),
    ("load", &["load"]),
    ("load.stages[]", &["load", "stages[0]"]),
    ("backoff", &["backoff"]),
    ("data", &["data"]),
    ("data.sequence", &["data", "sequence"]),
    (
        "thresholds.\"KEY\" (table form)",
        &["thresholds", "latency.p99"],
    ),
    ("fleet", &["fleet"]),
];

const MINIMAL: &str = r#"
name = "p"
[target]
base_url = "http://127.0.0.1:9"
[[scenario.steps]]
name = "get"
path = "/x"
[load]
stages = [ { duration = "10s", target = 5 } ]
"#;

/// The key no table has, whose error lists the keys a table takes.
const PROBE: &str = "zz_not_a_key";

/// The keys the validator accepts in the table at `path`.
fn keys_at(path: &[&str]) -> Vec<String> {
    let mut doc: Table = MINIMAL.parse().expect("the minimal plan is TOML");
    let mut here = &mut doc;
    for segment in path {
        here = match segment.strip_suffix("[]").or(segment.strip_suffix("[0]")) {
            Some(name) => {
                let array = here
                    .entry(name.to_owned())
                    .or_insert_with(|| Value::Array(vec![Value::Table(Table::new())]));
                let Value::Array(items) = array else {
                    unreachable!("arrays of tables")
                };
                if items.is_empty() {
                    items.push(Value::Table(Table::new()));
                }
                let Some(Value::Table(first)) = items.first_mut() else {
                    unreachable!("arrays of tables")
                };
                first
            }
            None => {
                let table = here
                    .entry((*segment).to_owned())
                    .or_insert_with(|| Value::Table(Table::new()));
                let Value::Table(table) = table else {
                    unreachable!("tables")
                };
                table
            }
        };
    }
    here.insert(PROBE.to_owned(), Value::Integer(1));
    let text = toml::to_string(&doc).expect("a table writes as TOML");
    let message = match crate::parse(&text, "reference") {
        Ok(_) => String::new(),
        Err(e) => e.message,
    };
    // `expected one of `a`, `b`` or, for two keys, `expected `a` or `b``.
    let expected = message
        .split_once("expected one of ")
        .or_else(|| message.split_once("expected "))
        .map_or("", |(_, e)| e);
    expected
        .split(", ")
        .flat_map(|k| k.split(" or "))
        .map(|k| k.trim().trim_matches('`').to_owned())
        .filter(|k| !k.is_empty())
        .collect()
}

/// Every table's accepted keys, in the order of [`TABLES`].
pub fn accepted_keys() -> Vec<(&'static str, Vec<String>)> {
    TABLES
        .iter()
        .map(|(shown, path)| (*shown, keys_at(path)))
        .collect()
}

/// The "Format" part of this crate's documentation, as Markdown.
fn format_docs() -> String {
    let lib = include_str!("lib.rs");
    let docs: Vec<&str> = lib
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .map(|l| {
            l.strip_prefix("//! ")
                .unwrap_or(l.trim_start_matches("//!"))
        })
        .skip_while(|l| *l != "# Format")
        .skip(1)
        .collect();
    unlink(docs.join("\n").trim_start())
}

/// Rustdoc's intra-doc links (`` [`name`] ``, `` [`name`](crate::path) ``) as plain code
/// spans; a literal `` `[` `` stays.
fn unlink(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("[`") {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        let link = from[1..].find("`]").map(|end| end + 1);
        match link {
            // Not a link: "`[`" is a code span holding a bracket.
            _ if before.ends_with('`') => {
                out.push('[');
                rest = &from[1..];
            }
            Some(end) => {
                out.push_str(&from[1..=end]);
                rest = &from[end + 2..];
                if rest.starts_with('(')
                    && let Some(close) = rest.find(')')
                {
                    rest = &rest[close + 1..];
                }
            }
            None => {
                out.push('[');
                rest = &from[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Keys the validator accepts that the Format documentation never names.
pub fn undocumented_keys() -> Vec<String> {
    let docs = format_docs();
    accepted_keys()
        .into_iter()
        .flat_map(|(table, keys)| keys.into_iter().map(move |k| (table, k)))
        .filter(|(_, key)| !docs.contains(key.as_str()))
        .map(|(table, key)| format!("{table}: {key}"))
        .collect()
}

/// `docs/plan-reference.md`.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Plan reference\n\n\
         <!-- Generated from the validator (crates/crescendo-plan/src/reference.rs); do not edit.\n     \
         Regenerate: cargo run -p crescendo-plan --example plan-reference > docs/plan-reference.md -->\n\n\
         A plan is one TOML file. `crescendo-controller validate PLAN` checks it (errors name the\n\
         file, line, column and key); `--set key.path=value` on `run`, `probe`, `validate` and\n\
         `demo` overrides a value before the check (a TOML value, or plain text as a string).\n\n\
         ## Keys each table accepts\n\n\
         As the validator reports them; any other key is an error.\n\n\
         | table | keys |\n| --- | --- |\n",
    );
    for (table, keys) in accepted_keys() {
        let keys: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
        out.push_str(&format!("| `{table}` | {} |\n", keys.join(" ")));
    }
    out.push_str("\n## Format\n\n");
    out.push_str(format_docs().trim_end());
    out.push('\n');
    out
}

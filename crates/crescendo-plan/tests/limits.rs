//! The plan format's size limits (`crescendo_plan::limits`): each refused one past the
//! limit, at the first item past it, and accepted at the limit.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write;

use common::{assert_err, err, plan};
use crescendo_plan::limits::*;
use crescendo_plan::{BundleFiles, parse, parse_with};

const LIMIT: &str = "(a limit of the plan format)";

/// `n` steps after the base plan's step `a`, as `[[scenario.steps]]` tables.
fn with_steps(n: usize) -> String {
    let mut steps = String::new();
    for i in 1..n {
        write!(steps, "[[scenario.steps]]\nname = \"s{i}\"\npath = \"/\"\n").unwrap();
    }
    plan(&[("[load]", &format!("{steps}[load]"))], "")
}

/// An inline table of `n` entries `k0 = "v"` … written by `entry`.
fn table(n: usize, entry: impl Fn(usize) -> String) -> String {
    let entries: Vec<String> = (0..n).map(entry).collect();
    format!("{{ {} }}", entries.join(", "))
}

#[test]
fn plan_size() {
    let text = plan(&[], &format!("# {}\n", "x".repeat(MAX_PLAN_BYTES)));
    let e = err(&text);
    assert_eq!((e.line, e.column), (0, 0), "{e}");
    assert!(e.message.contains("at most 16 MiB (16777216 bytes"), "{e}");
    assert!(
        e.message.contains(&format!("got {} bytes", text.len())),
        "{e}"
    );
    // Read from a file: refused after reading one byte past the limit.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.toml");
    std::fs::write(&path, &text).unwrap();
    let e = crescendo_plan::load(&path).unwrap_err();
    assert!(
        e.message.contains("at most 16 MiB") && e.message.contains("got more"),
        "{e}"
    );
    assert_eq!(e.origin, path.display().to_string());
}

#[test]
fn items_before_parsing() {
    // A document of many tables is refused by counting, before any tree is built.
    let text = format!("name = \"t\"\n{}", "[[t]]\n".repeat(MAX_ITEMS));
    let e = err(&text);
    // `name =` is item 0 and each `[[` two more: item MAX_ITEMS (0-based) is the second
    // `[` of table MAX_ITEMS / 2 (1-based), on the line after it.
    assert_eq!((e.line, e.column), (MAX_ITEMS / 2 + 1, 2), "{e}");
    assert!(
        e.message.contains("at most 200000 keys, values and tables"),
        "{e}"
    );
    assert!(e.message.contains(LIMIT), "{e}");
}

#[test]
fn steps() {
    assert!(parse(&with_steps(MAX_STEPS), "t").is_ok());
    let text = with_steps(MAX_STEPS + 1);
    let needle = format!("[[scenario.steps]]\nname = \"s{MAX_STEPS}\"");
    assert_err(
        &text,
        &needle,
        "scenario.steps[1000]",
        "expected at most 1000 steps, got 1001 (a limit of the plan format)",
    );
}

#[test]
fn headers_query_captures_and_checks() {
    let max = MAX_ENTRIES_PER_TABLE;
    let headers = |n| table(n, |i| format!("X-H{i} = \"v\""));
    let text = plan(
        &[("base_url", &format!("headers = {}\nbase_url", headers(max)))],
        "",
    );
    assert!(parse(&text, "t").is_ok(), "{}", err(&text));
    let text = plan(
        &[(
            "base_url",
            &format!("headers = {}\nbase_url", headers(max + 1)),
        )],
        "",
    );
    assert_err(
        &text,
        "X-H100",
        "target.headers.X-H100",
        "expected at most 100 headers, got 101",
    );
    let step = |key: &str, value: String| {
        plan(
            &[(
                "path = \"/x\"\n",
                &format!("path = \"/x\"\n{key} = {value}\n"),
            )],
            "",
        )
    };
    let text = step("headers", headers(max + 1));
    assert_err(
        &text,
        "X-H100",
        "scenario.steps[0].headers.X-H100",
        "at most 100 headers",
    );
    let text = step("query", table(max + 1, |i| format!("q{i} = \"v\"")));
    assert_err(
        &text,
        "q100",
        "scenario.steps[0].query.q100",
        "at most 100 query parameters",
    );
    let text = step("captures", table(max + 1, |i| format!("c{i} = \"/x\"")));
    assert_err(
        &text,
        "c100",
        "scenario.steps[0].captures.c100",
        "at most 100 captures",
    );
    let checks: Vec<String> = (0..=max)
        .map(|i| format!("{{ pointer = \"/p{i}\", equals = 1 }}"))
        .collect();
    let text = step("checks", format!("[{}]", checks.join(", ")));
    assert_err(
        &text,
        "{ pointer = \"/p100\"",
        "scenario.steps[0].checks[100]",
        "at most 100 checks",
    );
}

#[test]
fn data_rows_and_columns() {
    let rows = |n: usize| format!("[data]\nrows = [{}]\n", vec!["{ a = 1 }"; n].join(", "));
    assert!(parse(&plan(&[], &rows(MAX_INLINE_ROWS)), "t").is_ok());
    let text = plan(&[], &rows(MAX_INLINE_ROWS + 1));
    let offset = text.find("{ a = 1 }").unwrap() + MAX_INLINE_ROWS * "{ a = 1 }, ".len();
    let e = err(&text);
    assert_eq!(
        (e.line, e.column),
        (
            common::at(&text, "rows").0,
            offset - text.rfind("\nrows").unwrap()
        ),
        "{e}"
    );
    assert_eq!(e.key, "data.rows[10000]");
    assert!(
        e.message.contains("at most 10000 inline rows, got 10001"),
        "{e}"
    );
    let columns = |n| format!("[data]\nrows = [{}]\n", table(n, |i| format!("c{i} = 1")));
    assert!(parse(&plan(&[], &columns(MAX_COLUMNS)), "t").is_ok());
    let text = plan(&[], &columns(MAX_COLUMNS + 1));
    assert_err(
        &text,
        "c100",
        "data.rows[0].c100",
        "at most 100 data columns, got 101",
    );
    // A data file's header: the same limit, at the file key.
    let header: Vec<String> = (0..=MAX_COLUMNS).map(|i| format!("c{i}")).collect();
    let files = BundleFiles(BTreeMap::from([(
        "d.csv".to_owned(),
        format!("{}\n", header.join(",")).into_bytes(),
    )]));
    let text = plan(&[], "[data]\nfile = \"d.csv\"\n");
    let e = parse_with(&text, "t.toml", &files).unwrap_err();
    assert_eq!((e.line, e.column), common::at(&text, "\"d.csv\""), "{e}");
    assert!(
        e.message
            .contains("\"d.csv\": expected at most 100 data columns, got 101"),
        "{e}"
    );
}

#[test]
fn thresholds_stages_and_clients() {
    // Distinct percentiles p50.00, p50.01 … p51.00.
    let t = |n: usize| {
        let mut t = String::from("[thresholds]\n");
        for i in 0..n {
            writeln!(t, "\"latency.p{}.{:02}\" = \"< 1s\"", 50 + i / 100, i % 100).unwrap();
        }
        t
    };
    assert!(
        parse(&plan(&[], &t(MAX_THRESHOLDS)), "t").is_ok(),
        "{}",
        err(&plan(&[], &t(MAX_THRESHOLDS)))
    );
    let text = plan(&[], &t(MAX_THRESHOLDS + 1));
    assert_err(
        &text,
        "\"latency.p51.00\"",
        "thresholds.\"latency.p51.00\"",
        "at most 100 thresholds, got 101",
    );
    let stages = |n| vec!["{ duration = \"1s\", target = 1 }"; n].join(", ");
    let text = plan(
        &[(
            "stages = [{ duration = \"1s\", target = 1 }]",
            &format!("stages = [{}]", stages(MAX_STAGES)),
        )],
        "",
    );
    assert!(parse(&text, "t").is_ok());
    let text = plan(
        &[(
            "stages = [{ duration = \"1s\", target = 1 }]",
            &format!("stages = [{}]", stages(MAX_STAGES + 1)),
        )],
        "",
    );
    let e = err(&text);
    assert_eq!(e.key, "load.stages[1000]", "{e}");
    assert!(e.message.contains("at most 1000 stages, got 1001"), "{e}");
    let clients =
        vec!["{ client_id_env = \"A\", client_secret_env = \"B\" }"; MAX_CLIENTS + 1].join(", ");
    let text = plan(
        &[],
        &format!(
            "[auth]\nkind = \"oauth2-client-credentials\"\ntoken_url = \"http://h/t\"\nsharing = \"per-agent\"\nclients = [{clients}]\n"
        ),
    );
    let e = err(&text);
    assert_eq!(e.key, "auth.clients[1000]", "{e}");
    assert!(e.message.contains("at most 1000 clients, got 1001"), "{e}");
}

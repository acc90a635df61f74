//! Semantic plan errors: values of the right type that are still wrong. Line, column
//! and key asserted for each.

mod common;

use common::{assert_err, at, err, plan};
use crescendo_plan::parse;

#[test]
fn rates_and_vus() {
    let text = plan(&[("target = 1", "target = -5")], "");
    assert_err(
        &text,
        "-5",
        "load.stages[0].target",
        "expected a rate >= 0 (iterations per second), got -5",
    );
    let text = plan(&[("[load]\n", "[load]\nstart_rate = -1\n")], "");
    assert_err(&text, "-1", "load.start_rate", "expected a rate >= 0");
    let text = plan(&[("target = 1", "target = nan")], "");
    assert_err(
        &text,
        "nan",
        "load.stages[0].target",
        "expected a rate >= 0",
    );
    let text = plan(&[("target = 1", "target = 0")], "");
    assert_err(&text, "[{", "load.stages", "above 0 in at least one stage");
    let text = plan(
        &[
            ("[load]\n", "[load]\nmodel = \"closed\"\n"),
            ("target = 1", "target = 2.5"),
        ],
        "",
    );
    assert_err(
        &text,
        "2.5",
        "load.stages[0].target",
        "whole number of virtual users",
    );
    let text = plan(&[("[load]\n", "[load]\nmax_in_flight = 0\n")], "");
    assert_err(
        &text,
        "0\n",
        "load.max_in_flight",
        "expected an integer >= 1",
    );
}

#[test]
fn ceilings() {
    let with = |extra: &str| plan(&[("[load]\n", &format!("[load]\n{extra}\n"))], "");
    for bad in ["0", "-5", "-9223372036854775808"] {
        assert_err(
            &with(&format!("max_total_requests = {bad}")),
            &format!("{bad}\n"),
            "load.max_total_requests",
            &format!("expected an integer >= 1 (requests sent by the whole fleet), got {bad}"),
        );
    }
    for bad in ["0", "-1", "-0.5", "nan", "inf", "2e9"] {
        assert_err(
            &with(&format!("max_rps = {bad}")),
            &format!("{bad}\n"),
            "load.max_rps",
            "expected a rate > 0 (requests per second for the whole fleet), got",
        );
    }
    // Wrong types are located like any other key's.
    for (bad, message) in [
        (
            "max_total_requests = 2.5",
            "expected an integer, got floating point `2.5`",
        ),
        (
            "max_total_requests = \"50\"",
            "expected an integer, got string \"50\"",
        ),
        ("max_total_requests = 99999999999999999999", ""),
        (
            "max_rps = \"fast\"",
            "expected a number, got string \"fast\"",
        ),
        ("max_rps = true", "expected a number, got boolean `true`"),
    ] {
        let text = with(bad);
        let value = bad.split(" = ").nth(1).unwrap();
        let e = err(&text);
        assert!(e.message.contains(message), "{e}");
        assert_eq!(e.line, at(&text, value).0, "{e}");
        if !message.is_empty() {
            assert_eq!(
                (e.column, e.key.as_str()),
                (
                    at(&text, value).1,
                    bad.split(' ')
                        .next()
                        .map(|k| format!("load.{k}"))
                        .unwrap()
                        .as_str()
                ),
                "{e}"
            );
        }
    }
    // Either model takes them; the smallest values are fine.
    let ok = with("model = \"closed\"\nmax_total_requests = 1\nmax_rps = 0.001");
    let plan = parse(&ok, "t.toml").unwrap();
    assert_eq!(plan.ceilings.max_total_requests, Some(1));
    assert_eq!(plan.ceilings.max_rps, Some(0.001));
    assert_eq!(
        parse(&with(""), "t.toml").unwrap().ceilings,
        Default::default()
    );
}

#[test]
fn stages_and_models() {
    let text = plan(
        &[(
            "stages = [{ duration = \"1s\", target = 1 }]",
            "stages = []",
        )],
        "",
    );
    assert_err(&text, "[]", "load.stages", "expected at least one stage");
    let text = plan(&[("[load]\n", "[load]\nmodel = \"ramp\"\n")], "");
    assert_err(
        &text,
        "\"ramp\"",
        "load.model",
        "expected \"open\" or \"closed\"",
    );
    let text = plan(&[("[load]\n", "[load]\nthink_time = \"1s\"\n")], "");
    assert_err(
        &text,
        "\"1s\"\n",
        "load.think_time",
        "applies only to model = \"closed\"",
    );
    let text = plan(
        &[(
            "[load]\n",
            "[load]\nmodel = \"closed\"\nmax_in_flight = 5\n",
        )],
        "",
    );
    assert_err(
        &text,
        "5\n",
        "load.max_in_flight",
        "applies only to model = \"open\"",
    );
}

#[test]
fn durations() {
    let text = plan(&[("\"1s\"", "\"0s\"")], "");
    assert_err(
        &text,
        "\"0s\"",
        "load.stages[0].duration",
        "expected a duration > 0, got \"0s\"",
    );
    let text = plan(&[("\"1s\"", "\"soon\"")], "");
    assert_err(
        &text,
        "\"soon\"",
        "load.stages[0].duration",
        "expected a duration such as \"20s\", \"1m30s\" or \"250ms\"",
    );
    let text = plan(&[("\"1s\"", "\"10\"")], "");
    assert_err(&text, "\"10\"", "load.stages[0].duration", "got \"10\"");
    let text = plan(&[("8080\"\n", "8080\"\ntimeout = \"0ms\"\n")], "");
    assert_err(
        &text,
        "\"0ms\"",
        "target.timeout",
        "expected a duration > 0",
    );
    let text = plan(&[("\"1s\"", "\"400days\"")], "");
    assert_err(
        &text,
        "\"400days\"",
        "load.stages[0].duration",
        "at most 366 days",
    );
}

#[test]
fn urls() {
    for bad in [
        "127.0.0.1:8080",
        "ftp://h",
        "http://",
        "http://h?x=1",
        "http://h:port",
    ] {
        let text = plan(&[("http://127.0.0.1:8080", bad)], "");
        assert_err(
            &text,
            &format!("\"{bad}\""),
            "target.base_url",
            "expected an absolute http:// or https:// URL",
        );
    }
    let text = plan(
        &[("http://127.0.0.1:8080", "https://api.example.com/v2/")],
        "",
    );
    assert_eq!(
        parse(&text, "t").unwrap().target.base_url,
        "https://api.example.com/v2"
    );
}

#[test]
fn steps() {
    let text = plan(&[], "[[scenario.steps]]\nname = \"a\"\npath = \"/y\"\n");
    let e = err(&text);
    let second = text.rfind("\"a\"").unwrap();
    assert_eq!((e.line, e.column), at(&text, "\"a\"\npath = \"/y\"")); // the second "a"
    assert_eq!(text.find("\"a\"\npath = \"/y\""), Some(second));
    assert_eq!(e.key, "scenario.steps[1].name");
    assert!(
        e.message
            .contains("expected a unique step name, got \"a\" again"),
        "{e}"
    );
    let text = plan(&[("path = \"/x\"", "path = \"x\"")], "");
    assert_err(
        &text,
        "\"x\"",
        "scenario.steps[0].path",
        "expected a path starting with '/'",
    );
    let text = plan(&[("path = \"/x\"", "path = \"/x y\"")], "");
    assert_err(&text, " y\"", "scenario.steps[0].path", "without spaces");
    let text = plan(
        &[("path = \"/x\"", "path = \"/x\"\nmethod = \"FETCH\"")],
        "",
    );
    assert_err(
        &text,
        "\"FETCH\"",
        "scenario.steps[0].method",
        "expected one of GET, PUT",
    );
    let text = plan(
        &[("path = \"/x\"", "path = \"/x\"\nexpect = [200, 700]")],
        "",
    );
    assert_err(
        &text,
        "700",
        "scenario.steps[0].expect[1]",
        "from 100 to 599, got 700",
    );
    let text = plan(
        &[(
            "path = \"/x\"",
            "path = \"/x\"\nheaders = { \"Bad Name\" = \"v\" }",
        )],
        "",
    );
    assert_err(
        &text,
        "\"Bad Name\"",
        "scenario.steps[0].headers.\"Bad Name\"",
        "expected a header name",
    );
    let text = plan(
        &[(
            "[[scenario.steps]]\nname = \"a\"\npath = \"/x\"\n",
            "[scenario]\nsteps = []\n",
        )],
        "",
    );
    assert_err(&text, "[]", "scenario.steps", "expected at least one step");
}

#[test]
fn unknown_template_variables() {
    let text = plan(&[("path = \"/x\"", "path = \"/x/{flowid}\"")], "");
    assert_err(
        &text,
        "{flowid}",
        "scenario.steps[0].path",
        "unknown template variable {flowid}, expected one of seq, uuid",
    );
    let text = plan(
        &[(
            "path = \"/x\"",
            "path = \"/x\"\nbody = '{\"a\": \"{nope}\"}'",
        )],
        "",
    );
    assert_err(
        &text,
        "{nope}",
        "scenario.steps[0].body",
        "unknown template variable {nope}",
    );
    let text = plan(
        &[("path = \"/x\"", "path = \"/x\"\nquery = { q = \"{v}\" }")],
        "",
    );
    assert_err(&text, "{v}", "scenario.steps[0].query.q", "{v}");
    let text = plan(
        &[(
            "8080\"\n",
            "8080\"\nheaders = { Authorization = \"Bearer {token}\" }\n",
        )],
        "",
    );
    assert_err(
        &text,
        "{token}",
        "target.headers.Authorization",
        "(data columns come from a [data] table)",
    );
    // Escaped braces and data columns are fine.
    let text = plan(
        &[("path = \"/x\"", "path = \"/x/{id}/{{literal}}/{seq}\"")],
        "[data]\nrows = [{ id = \"a\" }]\n",
    );
    assert_eq!(
        parse(&text, "t").unwrap().scenario.steps[0].path,
        "/x/{id}/{{literal}}/{seq}"
    );
}

#[test]
fn backoff() {
    let text = plan(&[], "[backoff]\npolicy = \"aggressive\"\n");
    assert_err(
        &text,
        "\"aggressive\"",
        "backoff.policy",
        "expected one of \"none\", \"retry-after\"",
    );
    let text = plan(&[], "[backoff]\nretry_budget = 1.5\n");
    assert_err(&text, "1.5", "backoff.retry_budget", "from 0 to 1");
    let text = plan(&[], "[backoff]\nbase = \"2s\"\ncap = \"1s\"\n");
    assert_err(
        &text,
        "\"1s\"\n",
        "backoff.cap",
        "expected base <= cap, got base 2s and cap 1s",
    );
    let text = plan(&[], "[backoff]\npolicy = \"none\"\nmax_retries = 5\n");
    assert_eq!(parse(&text, "t").unwrap().backoff.max_retries, 0);
}

#[test]
fn data() {
    let text = plan(
        &[],
        "[data]\npartition = \"split\"\nrows = [{ a = \"1\" }]\n",
    );
    assert_err(
        &text,
        "\"split\"",
        "data.partition",
        "expected \"per-agent\", \"shared\" or \"unique\"",
    );
    let text = plan(&[], "[data]\npartition = \"shared\"\n");
    assert_err(&text, "[data]", "data", "got none");
    let text = plan(
        &[],
        "[data]\nrows = [{ a = \"1\" }]\nsequence = { var = \"v\", format = \"{n}\", count = 1 }\n",
    );
    assert_err(&text, "[data]", "data", "got more than one");
    let text = plan(&[], "[data]\nrows = []\n");
    assert_err(&text, "[]", "data.rows", "expected at least one row");
    let text = plan(&[], "[data]\nrows = [{ a = \"1\" }, { b = \"2\" }]\n");
    assert_err(
        &text,
        "{ b",
        "data.rows[1]",
        "expected the same columns as data.rows[0] (a), got (b)",
    );
    let text = plan(&[], "[data]\nrows = [{ seq = \"1\" }]\n");
    assert_err(
        &text,
        "seq",
        "data.rows[0].seq",
        "other than the built-in variables",
    );
    let text = plan(
        &[],
        "[data]\nsequence = { var = \"v\", format = \"flow\", count = 3 }\n",
    );
    assert_err(
        &text,
        "\"flow\"",
        "data.sequence.format",
        "expected a format containing {n}",
    );
    let text = plan(
        &[],
        "[data]\nsequence = { var = \"v\", format = \"{n}-{m}\", count = 3 }\n",
    );
    assert_err(&text, "{m}", "data.sequence.format", "only variable");
    let text = plan(
        &[],
        "[data]\nsequence = { var = \"v\", format = \"{n}\", count = 0 }\n",
    );
    assert_err(
        &text,
        "0 }",
        "data.sequence.count",
        "from 1 to 1000000, got 0",
    );
    let text = plan(
        &[],
        "[data]\nsequence = { var = \"1v\", format = \"{n}\", count = 3 }\n",
    );
    assert_err(
        &text,
        "\"1v\"",
        "data.sequence.var",
        "expected a column name",
    );
}

#[test]
fn thresholds() {
    let text = plan(
        &[],
        "[thresholds]\n\"latency.p99\" = \"< 800ms\"\n\"latency.median\" = \"< 1s\"\n",
    );
    assert_err(
        &text,
        "\"latency.median\"",
        "thresholds.\"latency.median\"",
        "unknown metric `latency.median`",
    );
    let text = plan(&[], "[thresholds]\nerrors = \"= 0\"\n");
    assert_err(
        &text,
        "\"= 0\"",
        "thresholds.errors",
        "expected an operator (<, <=, >, >=, ==) and a number",
    );
    let text = plan(&[], "[thresholds]\nerrors = 0\n");
    assert_err(
        &text,
        "0\n",
        "thresholds.errors",
        "expected a string such as",
    );
    let text = plan(&[], "[thresholds]\nthrottled_ratio = \"< 2ms\"\n");
    assert_err(
        &text,
        "\"< 2ms\"",
        "thresholds.throttled_ratio",
        "latency metrics only",
    );
    let text = plan(&[], "[thresholds]\n\"latency.p0\" = \"< 2ms\"\n");
    assert_err(
        &text,
        "\"latency.p0\"",
        "thresholds.\"latency.p0\"",
        "expected a percentile",
    );
}

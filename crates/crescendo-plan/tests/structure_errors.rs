//! Structural plan errors: TOML syntax, unknown keys, wrong types, missing keys, and
//! unreadable files; plus fuzzing that no input panics. Line, column and key asserted.

mod common;

use common::{assert_err, at, err, plan};
use crescendo_plan::parse;

#[test]
fn display_names_file_line_column_key_and_form() {
    let text = plan(
        &[(
            "stages = [{ duration = \"1s\", target = 1 }]",
            "stages = [\n  { duration = \"1s\", target = 1 },\n  { duration = \"1s\", target = -5 },\n]",
        )],
        "",
    );
    let e = err(&text);
    let (line, column) = at(&text, "-5");
    assert_eq!(
        e.to_string(),
        format!(
            "t.toml:{line}:{column}: load.stages[1].target: expected a rate >= 0 (iterations per second), got -5"
        )
    );
}

#[test]
fn syntax_errors() {
    let text = plan(&[], "[backoff\npolicy = \"none\"\n");
    let e = err(&text);
    assert_eq!(e.line, at(&text, "[backoff").0, "{e}");
    assert!(e.message.contains("expected"), "{e}");
    let text = "name = \n";
    let e = err(text);
    assert_eq!((e.line, e.column), (1, 8), "{e}");
    let e = err("name = \"unterminated\n");
    assert_eq!(e.line, 1, "{e}");
}

#[test]
fn unknown_keys_list_the_allowed_ones() {
    let text = plan(&[], "[backoff]\npolicyy = \"none\"\n");
    assert_err(
        &text,
        "policyy",
        "backoff.policyy",
        "unknown key `policyy`, expected one of `policy`",
    );
    let text = plan(&[("path = \"/x\"", "path = \"/x\"\nheader = {}")], "");
    assert_err(&text, "header =", "scenario.steps[0].header", "`headers`");
    let text = plan(&[], "[loads]\n");
    assert_err(&text, "loads", "loads", "expected one of `name`");
    let text = plan(&[("target = 1 }", "target = 1, ramp = true }")], "");
    assert_err(
        &text,
        "ramp",
        "load.stages[0].ramp",
        "expected `duration` or `target`",
    );
}

#[test]
fn wrong_types_and_missing_keys() {
    let text = plan(&[("name = \"a\"", "name = 5")], "");
    assert_err(
        &text,
        "5\npath",
        "scenario.steps[0].name",
        "expected a string, got integer `5`",
    );
    let text = plan(&[("target = 1 }", "target = \"x\" }")], "");
    assert_err(
        &text,
        "\"x\"",
        "load.stages[0].target",
        "expected a number, got string",
    );
    let text = plan(&[], "[load]\n");
    let e = err(&text);
    let second = text.rfind("load]").unwrap();
    assert_eq!(
        (e.line, e.column),
        (text[..second].matches('\n').count() + 1, 2),
        "{e}"
    );
    assert_eq!(e.message, "duplicate key `load`");
    let text = format!("name = \"x\"\n{}", plan(&[], ""));
    assert_err(&text, "name = \"t\"", "", "duplicate key `name`");
    let text = plan(&[("path = \"/x\"\n", "")], "");
    assert_err(
        &text,
        "[[scenario.steps]]",
        "scenario.steps[0].path",
        "missing required key",
    );
    let text = plan(&[("name = \"t\"\n", "")], "");
    let e = err(&text);
    assert_eq!(e.to_string(), "t.toml:1:1: name: missing required key");
    let text = plan(&[], "[data]\nsequence = { var = \"v\", count = 1 }\n");
    assert_err(
        &text,
        "{ var",
        "data.sequence.format",
        "missing required key",
    );
    let text = plan(
        &[],
        "[data]\nsequence = { var = \"v\", format = \"{n}\", count = -1 }\n",
    );
    assert_err(
        &text,
        "-1",
        "data.sequence.count",
        "expected an integer >= 0, got integer `-1`",
    );
}

#[test]
fn unreadable_file() {
    let e = crescendo_plan::load(std::path::Path::new("/nonexistent/plan.toml")).unwrap_err();
    assert_eq!(e.origin, "/nonexistent/plan.toml");
    assert_eq!(e.line, 0);
    assert_eq!(
        e.to_string(),
        "/nonexistent/plan.toml: cannot read the plan"
    );
    assert!(std::error::Error::source(&e).is_some());
}

proptest::proptest! {
    #[test]
    fn parse_never_panics(text in ".{0,400}") {
        let _ = parse(&text, "fuzz");
    }

    #[test]
    fn parse_never_panics_on_plan_like_text(
        lines in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::string::string_regex("[a-z_.\\[\\]]{1,20} = .{0,30}").unwrap(),
                proptest::string::string_regex("\\[{1,2}[a-z.]{1,16}\\]{1,2}").unwrap(),
                proptest::string::string_regex(".{0,40}").unwrap(),
            ],
            0..12,
        )
    ) {
        let text = plan(&[], &lines.join("\n"));
        let _ = parse(&text, "fuzz");
    }
}

//! Helpers shared by the error tests: a small valid plan to break, and assertions on
//! where an error points.

#![allow(dead_code)]

use crescendo_plan::{PlanError, parse};

const TARGET: &str = "[target]\nbase_url = \"http://127.0.0.1:8080\"\n";
const STEP: &str = "[[scenario.steps]]\nname = \"a\"\npath = \"/x\"\n";
const LOAD: &str = "[load]\nstages = [{ duration = \"1s\", target = 1 }]\n";

/// A valid plan with `extra` appended and `replace` substitutions applied.
pub(crate) fn plan(replace: &[(&str, &str)], extra: &str) -> String {
    let mut text = format!("name = \"t\"\n{TARGET}{STEP}{LOAD}{extra}");
    for (from, to) in replace {
        assert!(text.contains(from), "{from:?} not in the base plan");
        text = text.replacen(from, to, 1);
    }
    text
}

pub(crate) fn err(text: &str) -> PlanError {
    match parse(text, "t.toml") {
        Ok(plan) => panic!("expected an error, got {plan:?}\n{text}"),
        Err(e) => e,
    }
}

/// 1-based line and column of the first `needle` in `text`.
pub(crate) fn at(text: &str, needle: &str) -> (usize, usize) {
    let offset = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in {text}"));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before[before.rfind('\n').map_or(0, |i| i + 1)..]
        .chars()
        .count()
        + 1;
    (line, column)
}

/// Asserts the error is at the first `needle`, under `key`, with `message` in its text.
#[track_caller]
pub(crate) fn assert_err(text: &str, needle: &str, key: &str, message: &str) {
    let e = err(text);
    assert_eq!((e.line, e.column), at(text, needle), "{e}\n{text}");
    assert_eq!(e.key, key, "{e}");
    assert!(e.message.contains(message), "{e:?} lacks {message:?}");
    assert_eq!(e.origin, "t.toml");
    assert!(!e.message.contains('\n'));
}

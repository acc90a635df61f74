//! Captures and checks on JSON response bodies.
//!
//! After an answer with an expected status, a step with captures or checks parses
//! its body as JSON. Checks compare the value at a JSON Pointer with the expected
//! one; captures copy values into the iteration's variables, where later steps'
//! templates see them. Any failure (a body that is not JSON, a pointer that finds
//! nothing, a value that differs) makes the attempt
//! [`Outcome::CheckFailed`](crescendo_metrics::Outcome::CheckFailed) and ends the
//! iteration.
//!
//! Values become text as follows: a string as is, numbers, booleans and `null` as
//! their JSON text, objects and arrays as compact JSON.
//!
//! Comparisons: an expected string is a template rendered with the iteration's
//! variables and compared with the value's text (so `"{version}"` matches a number
//! captured earlier); an expected number matches a number numerically (`1` equals
//! `1.0`); anything else must be equal as JSON. Checks run before the step's own
//! captures, so they see the variables of earlier steps.

use std::borrow::Cow;

use crescendo_plan::Template;
use serde_json::Value;

/// `var = "/json/pointer"`: copy a value of the response into a variable.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CaptureRule {
    pub(crate) var: String,
    pub(crate) pointer: String,
}

/// The value at `pointer` must equal `expected`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CheckRule {
    pub(crate) pointer: String,
    pub(crate) expected: Expected,
}

/// What a check expects.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expected {
    /// A string: a template rendered per iteration, compared as text.
    Text(Template),
    /// A number, boolean, null, array or object, compared as JSON.
    Json(Value),
}

impl Expected {
    /// A check's expected value as written in the plan.
    pub(crate) fn from_value(value: Value) -> Self {
        match value {
            Value::String(s) => Expected::Text(Template::parse(&s)),
            other => Expected::Json(other),
        }
    }
}

/// Why a body failed its step's captures or checks (for debug logs and tests; the
/// hot path only counts the outcome).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CheckFailure {
    #[error("body is not JSON")]
    NotJson,
    #[error("nothing at {0}")]
    Missing(String),
    #[error("value at {0} differs")]
    Differs(String),
}

/// Run the checks, then the captures, of one response body. On success returns the
/// captured `(variable, value)` pairs for the iteration.
pub(crate) fn inspect(
    body: &[u8],
    captures: &[CaptureRule],
    checks: &[CheckRule],
    render: impl Fn(&Template) -> String,
) -> Result<Vec<(String, String)>, CheckFailure> {
    if captures.is_empty() && checks.is_empty() {
        return Ok(Vec::new());
    }
    let document: Value = serde_json::from_slice(body).map_err(|_| CheckFailure::NotJson)?;
    for check in checks {
        let actual = document
            .pointer(&check.pointer)
            .ok_or_else(|| CheckFailure::Missing(check.pointer.clone()))?;
        let holds = match &check.expected {
            Expected::Text(template) => value_text(actual) == render(template),
            Expected::Json(expected) => json_equals(actual, expected),
        };
        if !holds {
            return Err(CheckFailure::Differs(check.pointer.clone()));
        }
    }
    captures
        .iter()
        .map(|capture| {
            let value = document
                .pointer(&capture.pointer)
                .ok_or_else(|| CheckFailure::Missing(capture.pointer.clone()))?;
            Ok((capture.var.clone(), value_text(value).into_owned()))
        })
        .collect()
}

/// A JSON value as a variable's text.
pub(crate) fn value_text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

/// JSON equality where two numbers compare by value (`1 == 1.0`).
fn json_equals(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Number(a), Value::Number(b)) => {
            if let (Some(a), Some(b)) = (a.as_i64(), b.as_i64()) {
                a == b
            } else if let (Some(a), Some(b)) = (a.as_u64(), b.as_u64()) {
                a == b
            } else {
                a.as_f64() == b.as_f64()
            }
        }
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BODY: &[u8] = br#"{"id":"f-1","version":3,"ratio":0.5,"locked":false,
        "owner":null,"tags":["a","b"],"meta":{"k":1},"n":18446744073709551615}"#;

    fn capture(var: &str, pointer: &str) -> CaptureRule {
        CaptureRule {
            var: var.into(),
            pointer: pointer.into(),
        }
    }

    fn check(pointer: &str, expected: Value) -> CheckRule {
        CheckRule {
            pointer: pointer.into(),
            expected: Expected::from_value(expected),
        }
    }

    /// Renders `{agent}` as "a1" and `{v}` as "3"; other variables as empty text.
    fn render(t: &Template) -> String {
        t.render_to_string(|name| match name {
            "agent" => Some(Cow::Borrowed("a1")),
            "v" => Some(Cow::Borrowed("3")),
            _ => None,
        })
    }

    #[test]
    fn captures_turn_values_into_text() {
        let rules = [
            capture("id", "/id"),
            capture("version", "/version"),
            capture("locked", "/locked"),
            capture("owner", "/owner"),
            capture("tags", "/tags"),
            capture("meta", "/meta"),
            capture("first", "/tags/0"),
        ];
        let got = inspect(BODY, &rules, &[], render).unwrap();
        let got: Vec<(&str, &str)> = got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            [
                ("id", "f-1"),
                ("version", "3"),
                ("locked", "false"),
                ("owner", "null"),
                ("tags", r#"["a","b"]"#),
                ("meta", r#"{"k":1}"#),
                ("first", "a"),
            ]
        );
    }

    #[test]
    fn a_missing_pointer_or_a_body_that_is_not_json_fails() {
        let missing = inspect(BODY, &[capture("x", "/nope")], &[], render);
        assert_eq!(missing, Err(CheckFailure::Missing("/nope".into())));
        let not_json = inspect(b"<html>", &[capture("x", "/id")], &[], render);
        assert_eq!(not_json, Err(CheckFailure::NotJson));
        let empty = inspect(b"", &[], &[check("/id", json!("f-1"))], render);
        assert_eq!(empty, Err(CheckFailure::NotJson));
        // Without captures or checks the body is not even parsed.
        assert_eq!(inspect(b"<html>", &[], &[], render), Ok(vec![]));
    }

    #[test]
    fn checks_compare_text_templates_and_numbers_by_value() {
        let ok = [
            check("/id", json!("f-1")),
            check("/version", json!(3)),
            check("/version", json!(3.0)),
            check("/version", json!("{v}")),
            check("/ratio", json!(0.5)),
            check("/locked", json!(false)),
            check("/owner", Value::Null),
            check("/tags", json!(["a", "b"])),
            check("/n", json!(18446744073709551615u64)),
        ];
        for rule in ok {
            assert_eq!(
                inspect(BODY, &[], std::slice::from_ref(&rule), render),
                Ok(vec![]),
                "{rule:?}"
            );
        }
        let differs = [
            check("/id", json!("f-{agent}")),
            check("/version", json!(4)),
            check("/id", json!(1)),
            check("/locked", json!("true")),
            check("/n", json!(18446744073709551614u64)),
        ];
        for rule in differs {
            let result = inspect(BODY, &[], std::slice::from_ref(&rule), render);
            assert_eq!(result, Err(CheckFailure::Differs(rule.pointer)));
        }
    }

    #[test]
    fn a_failed_check_captures_nothing() {
        let result = inspect(
            BODY,
            &[capture("id", "/id")],
            &[check("/version", json!(9))],
            render,
        );
        assert!(result.is_err());
    }
}

//! [`PlanError`]: every way a plan can be wrong, with file, line, column and key path.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use crate::limits::MAX_PLAN_BYTES;
use crate::text::NotUtf8;

/// A plan that cannot be used, located as precisely as the input allows.
///
/// Displays as `origin:line:column: key: message`, e.g.
/// `plans/x.toml:12:5: load.stages[1].target: expected a rate >= 0 (iterations per second), got -5`.
/// `line` is 0 when the error is not about a place in the file (bad arguments to
/// [`split`](crate::split), unreadable file); the line and column are then left out.
#[derive(Debug, Clone, thiserror::Error)]
pub struct PlanError {
    /// The file name as given, or `arguments` for errors about how a plan is used.
    pub origin: String,
    /// 1-based line, or 0 when there is no location.
    pub line: usize,
    /// 1-based column in characters (not bytes), or 0 when there is no location.
    pub column: usize,
    /// Dotted key path such as `load.stages[1].target`; empty for syntax errors at the top.
    pub key: String,
    /// What was expected and what was found, lowercase.
    pub message: String,
    #[source]
    source: Option<Arc<std::io::Error>>,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl PlanError {
    /// An error at a byte range of `text`.
    pub(crate) fn at(
        text: &str,
        origin: &str,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> PlanError {
        let (line, column) = line_column(text, span.start);
        PlanError {
            origin: origin.to_owned(),
            line,
            column,
            key: key.into(),
            message: one_line(message.into()),
            source: None,
        }
    }

    /// An error about how a plan is used rather than where in a file it is wrong.
    pub(crate) fn arguments(key: impl Into<String>, message: impl Into<String>) -> PlanError {
        PlanError {
            origin: "arguments".to_owned(),
            line: 0,
            column: 0,
            key: key.into(),
            message: one_line(message.into()),
            source: None,
        }
    }

    /// Keeps `source` (an I/O error reading a file the plan refers to) as the cause.
    pub(crate) fn with_source(mut self, source: std::io::Error) -> PlanError {
        self.source = Some(Arc::new(source));
        self
    }

    /// Plan text over [`MAX_PLAN_BYTES`]; `len` when known (a file is read only that far).
    pub(crate) fn too_large(origin: &str, len: Option<usize>) -> PlanError {
        let got = len.map_or_else(|| "more".to_owned(), |n| format!("{n} bytes"));
        PlanError {
            origin: origin.to_owned(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!(
                "expected a plan of at most 16 MiB ({MAX_PLAN_BYTES} bytes, a limit of the plan \
                 format), got {got}"
            ),
            source: None,
        }
    }

    /// Plan bytes that are not UTF-8 text, located at the first bad byte.
    pub(crate) fn not_utf8(origin: &str, bytes: &[u8], why: &NotUtf8) -> PlanError {
        let offset = why.offset();
        // Valid up to `offset` by construction; the lossy fallback never runs.
        let before = String::from_utf8_lossy(&bytes[..offset.min(bytes.len())]);
        let (line, column) = line_column(&before, offset);
        PlanError {
            origin: origin.to_owned(),
            line,
            column,
            key: String::new(),
            message: why.describe(),
            source: None,
        }
    }

    pub(crate) fn read(origin: &str, source: std::io::Error) -> PlanError {
        PlanError {
            origin: origin.to_owned(),
            line: 0,
            column: 0,
            key: String::new(),
            message: "cannot read the plan".to_owned(),
            source: Some(Arc::new(source)),
        }
    }
}

/// `message` on one line: control characters quoted from the plan (a key may hold an
/// escaped newline) are written as escapes, so an error is always one line of a log.
fn one_line(message: String) -> String {
    if !message.chars().any(char::is_control) {
        return message;
    }
    message
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// 1-based line and character column of byte `offset` in `text` (clamped into range).
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Appends `key` to a dotted key path, quoting it when it is not a bare TOML key.
pub(crate) fn join_key(parent: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let key = if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

/// Appends an array index to a key path.
pub(crate) fn join_index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// Rewrites serde's wording (`invalid type: integer `5`, expected a string`) into the
/// plan's (`expected a string, got integer `5``), naming types the way TOML does.
pub(crate) fn rewrite_serde_message(message: &str) -> String {
    let message = message
        .trim()
        .replace('\n', "; ")
        .replace("unknown field `", "unknown key `")
        .replace("missing field `", "missing key `");
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        let parts = message
            .strip_prefix(prefix)
            .and_then(|rest| rest.rsplit_once(", expected "));
        if let Some((got, expected)) = parts {
            return format!("expected {}, got {got}", type_name(expected));
        }
    }
    message
}

fn type_name(expected: &str) -> &str {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "an integer >= 0",
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer",
        "f32" | "f64" => "a number",
        "a sequence" => "an array",
        "a map" => "a table",
        other if other.starts_with("struct ") => "a table",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters() {
        let text = "ab\nçd\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 2), (1, 3));
        assert_eq!(line_column(text, 3), (2, 1));
        assert_eq!(line_column(text, 5), (2, 2));
        // Inside a multi-byte character: clamped back to its start.
        assert_eq!(line_column(text, 4), (2, 1));
        assert_eq!(line_column(text, 100), (3, 1));
    }

    #[test]
    fn keys_are_quoted_when_not_bare() {
        assert_eq!(join_key("", "load"), "load");
        assert_eq!(
            join_key("thresholds", "latency.p99"),
            "thresholds.\"latency.p99\""
        );
        assert_eq!(
            join_key("target.headers", "Content-Type"),
            "target.headers.Content-Type"
        );
        assert_eq!(join_index("load.stages", 1), "load.stages[1]");
    }

    #[test]
    fn serde_messages_are_rewritten() {
        assert_eq!(
            rewrite_serde_message("invalid type: integer `5`, expected a string"),
            "expected a string, got integer `5`"
        );
        assert_eq!(
            rewrite_serde_message("invalid value: integer `-1`, expected u32"),
            "expected an integer >= 0, got integer `-1`"
        );
        assert_eq!(
            rewrite_serde_message("missing field `name`"),
            "missing key `name`"
        );
        assert_eq!(
            rewrite_serde_message("unknown field `x`, expected `a` or `b`"),
            "unknown key `x`, expected `a` or `b`"
        );
    }

    #[test]
    fn display_forms() {
        let text = "a\nbc = 1\n";
        let e = PlanError::at(
            text,
            "x.toml",
            5..6,
            "bc",
            "expected a string, got integer `1`",
        );
        assert_eq!(
            e.to_string(),
            "x.toml:2:4: bc: expected a string, got integer `1`"
        );
        let e = PlanError::arguments("agents", "expected at least 1 agent, got 0");
        assert_eq!(
            e.to_string(),
            "arguments: agents: expected at least 1 agent, got 0"
        );
        let e = PlanError::read("nope.toml", std::io::Error::other("gone"));
        assert_eq!(e.to_string(), "nope.toml: cannot read the plan");
        assert!(std::error::Error::source(&e).is_some());
    }
}

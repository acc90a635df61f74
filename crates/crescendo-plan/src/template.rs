//! Request templates: `{name}` substitution in paths, query values, headers and bodies.
//!
//! A variable is `{` + identifier (`[A-Za-z_][A-Za-z0-9_]*`) + `}`. Anything else is
//! literal text, so JSON bodies such as `{"name": "flow {flowId}"}` need no escaping.
//! `{{` is a literal `{`; `{{name}}` is the literal text `{name}` (the closing `}}` of
//! an escaped name collapses too). A lone `}` or `}}` elsewhere stays as written, so
//! nested JSON objects (`{"a": {"b": 1}}`) come out unchanged.
//!
//! Templates are parsed once, when a run starts ([`Step::templates`],
//! [`Plan::step_templates`]); rendering a parsed [`Template`] is a walk over its parts
//! with no parsing on the hot path.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::model::{Plan, Step, Target};

/// Variables every template may use, besides the data columns. The agent supplies them:
///
/// - `seq`: the iteration's sequence number within the agent.
/// - `uuid`: a fresh random UUID v4.
/// - `agent`: the agent's id.
/// - `vu`: the virtual user running the iteration (closed model).
/// - `iteration`: the iteration number (of the VU, or of the agent's schedule).
/// - `now_ms`: wall-clock milliseconds since the Unix epoch.
pub const BUILTIN_VARIABLES: &[&str] = &["seq", "uuid", "agent", "vu", "iteration", "now_ms"];

/// A parsed template: literal text interleaved with variables.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Var(String),
}

impl Template {
    /// Parses `s`; never fails, since text that is not a variable is literal.
    pub fn parse(s: &str) -> Template {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = s;
        while let Some(pos) = rest.find('{') {
            lit.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            if let Some(escaped) = after.strip_prefix('{') {
                // `{{name}}` is the literal `{name}`; any other `{{` is a literal `{`.
                match identifier_then(escaped, "}}") {
                    Some(len) => {
                        lit.push('{');
                        lit.push_str(&escaped[..len]);
                        lit.push('}');
                        rest = &escaped[len + 2..];
                    }
                    None => {
                        lit.push('{');
                        rest = escaped;
                    }
                }
            } else if let Some(len) = identifier_then(after, "}") {
                if !lit.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut lit)));
                }
                parts.push(Part::Var(after[..len].to_owned()));
                rest = &after[len + 1..];
            } else {
                lit.push('{');
                rest = after;
            }
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Literal(lit));
        }
        Template { parts }
    }

    /// The variables in order of appearance (repeats included).
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Byte offsets in the source text of each variable's `{`, paired with its name.
    ///
    /// Used by validation to point at the exact column of an unknown variable.
    pub(crate) fn variable_offsets(source: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        let mut i = 0;
        let bytes = source.as_bytes();
        while i < bytes.len() {
            if bytes[i] != b'{' {
                i += 1;
                continue;
            }
            let after = &source[i + 1..];
            if let Some(escaped) = after.strip_prefix('{') {
                i += 2 + identifier_then(escaped, "}}").map_or(0, |len| len + 2);
            } else if let Some(len) = identifier_then(after, "}") {
                out.push((i, after[..len].to_owned()));
                i += len + 2;
            } else {
                i += 1;
            }
        }
        out
    }

    /// True when the template has no variables (it renders to the same text every time).
    pub fn is_literal(&self) -> bool {
        self.variables().next().is_none()
    }

    /// Appends the rendered template to `out`. `lookup` resolves a variable name; a
    /// variable it does not know renders as empty text (validation prevents that).
    pub fn render<'a>(&self, out: &mut String, lookup: impl Fn(&str) -> Option<Cow<'a, str>>) {
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Var(name) => {
                    if let Some(value) = lookup(name) {
                        out.push_str(&value);
                    }
                }
            }
        }
    }

    /// Renders into a new string.
    pub fn render_to_string<'a>(&self, lookup: impl Fn(&str) -> Option<Cow<'a, str>>) -> String {
        let mut out = String::new();
        self.render(&mut out, lookup);
        out
    }
}

/// If `s` starts with an identifier directly followed by `close`, the identifier's length.
fn identifier_then(s: &str, close: &str) -> Option<usize> {
    let len = identifier_len(s)?;
    s[len..].starts_with(close).then_some(len)
}

/// Length of the identifier at the start of `s` (`[A-Za-z_][A-Za-z0-9_]*`).
fn identifier_len(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    match bytes.first() {
        Some(b) if b.is_ascii_alphabetic() || *b == b'_' => {}
        _ => return None,
    }
    let len = bytes
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
        .unwrap_or(bytes.len());
    Some(len)
}

/// True when `s` is a template identifier (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn is_identifier(s: &str) -> bool {
    identifier_len(s) == Some(s.len())
}

/// The parsed templates of one step, ready for rendering on every iteration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepTemplates {
    pub path: Template,
    /// Query parameters in name order; values are templates.
    pub query: Vec<(String, Template)>,
    /// Header names with their value templates.
    pub headers: Vec<(String, Template)>,
    pub body: Option<Template>,
}

impl Step {
    /// Parses this step's templates (its own headers only). Call once per run, not per
    /// request; see [`Plan::step_templates`] for headers merged with the target's.
    pub fn templates(&self) -> StepTemplates {
        StepTemplates {
            path: Template::parse(&self.path),
            query: parse_map(&self.query),
            headers: parse_map(&self.headers),
            body: self.body.as_deref().map(Template::parse),
        }
    }
}

impl Target {
    /// Parses the headers sent with every request.
    pub fn header_templates(&self) -> Vec<(String, Template)> {
        parse_map(&self.headers)
    }
}

impl Plan {
    /// Parsed templates for every step, in step order, with the target's headers merged
    /// in: a step header replaces a target header of the same name (case-insensitive).
    pub fn step_templates(&self) -> Vec<StepTemplates> {
        self.scenario
            .steps
            .iter()
            .map(|step| {
                let mut t = step.templates();
                let mut headers: Vec<(String, Template)> = self
                    .target
                    .header_templates()
                    .into_iter()
                    .filter(|(name, _)| !step.headers.keys().any(|k| k.eq_ignore_ascii_case(name)))
                    .collect();
                headers.append(&mut t.headers);
                t.headers = headers;
                t
            })
            .collect()
    }
}

fn parse_map(map: &BTreeMap<String, String>) -> Vec<(String, Template)> {
    map.iter()
        .map(|(k, v)| (k.clone(), Template::parse(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &str, vars: &[(&str, &str)]) -> String {
        let map: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Template::parse(t).render_to_string(|name| map.get(name).map(|v| Cow::Borrowed(v.as_str())))
    }

    #[test]
    fn variables_and_literals() {
        let t = Template::parse("/api/v2/flows/{flowId}/rev/{seq}");
        assert_eq!(t.variables().collect::<Vec<_>>(), ["flowId", "seq"]);
        assert_eq!(
            render(
                "/api/v2/flows/{flowId}/rev/{seq}",
                &[("flowId", "a"), ("seq", "7")]
            ),
            "/api/v2/flows/a/rev/7"
        );
        assert!(Template::parse("/plain").is_literal());
        assert!(Template::parse("").is_literal());
    }

    #[test]
    fn json_bodies_need_no_escaping() {
        let body = r#"{"name": "flow {flowId} rev {seq}", "nested": {"a": {"b": 1}}}"#;
        let t = Template::parse(body);
        assert_eq!(t.variables().collect::<Vec<_>>(), ["flowId", "seq"]);
        assert_eq!(
            render(body, &[("flowId", "x"), ("seq", "2")]),
            r#"{"name": "flow x rev 2", "nested": {"a": {"b": 1}}}"#
        );
        assert_eq!(render("{}", &[]), "{}");
        assert_eq!(render("{ a }", &[("a", "x")]), "{ a }");
        assert_eq!(render("{1abc}", &[]), "{1abc}");
        assert_eq!(render("{a-b}", &[]), "{a-b}");
        assert_eq!(render("{", &[]), "{");
        assert_eq!(render("}", &[]), "}");
        assert_eq!(render("{a", &[("a", "x")]), "{a");
    }

    #[test]
    fn double_braces_escape() {
        assert_eq!(render("{{seq}}", &[("seq", "1")]), "{seq}");
        assert_eq!(render("{{seq}", &[("seq", "1")]), "{seq}");
        assert_eq!(render("{{{seq}}", &[("seq", "1")]), "{1}");
        assert_eq!(render("a{{b", &[]), "a{b");
        assert_eq!(render("}}", &[]), "}}");
        assert!(Template::parse("{{seq}}").is_literal());
    }

    #[test]
    fn missing_variables_render_empty() {
        assert_eq!(render("a{x}b", &[]), "ab");
    }

    #[test]
    fn offsets_match_parse() {
        let s = "ab{x}{{y}}{z}é{w}";
        let offsets = Template::variable_offsets(s);
        assert_eq!(
            offsets,
            [
                (2, "x".to_string()),
                (10, "z".to_string()),
                (15, "w".to_string())
            ]
        );
        let names: Vec<_> = Template::parse(s).variables().map(str::to_owned).collect();
        assert_eq!(names, ["x", "z", "w"]);
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("flowId"));
        assert!(is_identifier("_a1"));
        assert!(!is_identifier("1a"));
        assert!(!is_identifier(""));
        assert!(!is_identifier("a-b"));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics_and_offsets_agree(s in ".*") {
            let t = Template::parse(&s);
            let names: Vec<String> = t.variables().map(str::to_owned).collect();
            let offsets: Vec<String> = Template::variable_offsets(&s).into_iter().map(|(_, n)| n).collect();
            proptest::prop_assert_eq!(names, offsets);
        }

        #[test]
        fn literal_text_round_trips(s in "[^{]*") {
            proptest::prop_assert_eq!(render(&s, &[]), s);
        }
    }
}

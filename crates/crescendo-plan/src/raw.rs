//! The raw serde layer: the TOML document as written, with spans on every value that
//! gets a semantic check. Structural errors (syntax, unknown keys, wrong types, missing
//! keys) are found here and located with a key path recovered from the parsed tree.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{self, Visitor};
use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{PlanError, join_index, join_key, rewrite_serde_message};
use crate::limits::MAX_ITEMS;

/// A map whose keys and values keep their spans.
pub(crate) type SpannedMap<V> = BTreeMap<Spanned<String>, Spanned<V>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlan {
    pub(crate) name: Spanned<String>,
    pub(crate) description: Option<String>,
    pub(crate) target: Spanned<RawTarget>,
    pub(crate) scenario: Spanned<RawScenario>,
    pub(crate) load: Spanned<RawLoad>,
    pub(crate) backoff: Option<Spanned<RawBackoff>>,
    pub(crate) data: Option<Spanned<RawData>>,
    pub(crate) thresholds: Option<SpannedMap<RawThreshold>>,
    pub(crate) auth: Option<Spanned<RawAuth>>,
    pub(crate) fleet: Option<Spanned<RawFleet>>,
}

/// `[fleet]`: how the run treats its agents.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFleet {
    pub(crate) on_agent_loss: Option<Spanned<String>>,
}

/// `[auth]`. The literal-secret keys are accepted here only to be rejected with a clear
/// message during validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuth {
    pub(crate) kind: Option<Spanned<String>>,
    pub(crate) token_url: Option<Spanned<String>>,
    pub(crate) client_id_env: Option<Spanned<String>>,
    pub(crate) client_id_file: Option<Spanned<String>>,
    pub(crate) client_secret_env: Option<Spanned<String>>,
    pub(crate) client_secret_file: Option<Spanned<String>>,
    pub(crate) client_id: Option<Spanned<toml::Value>>,
    pub(crate) client_secret: Option<Spanned<toml::Value>>,
    pub(crate) token_env: Option<Spanned<String>>,
    pub(crate) token_file: Option<Spanned<String>>,
    pub(crate) sharing: Option<Spanned<String>>,
    pub(crate) clients: Option<Spanned<Vec<Spanned<RawClient>>>>,
    pub(crate) refresh_before: Option<Spanned<String>>,
    pub(crate) scope: Option<Spanned<String>>,
    pub(crate) token: Option<Spanned<toml::Value>>,
    pub(crate) password: Option<Spanned<toml::Value>>,
    pub(crate) access_token: Option<Spanned<toml::Value>>,
}

/// One client's credentials in `auth.clients` (the same keys as directly under `[auth]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClient {
    pub(crate) client_id_env: Option<Spanned<String>>,
    pub(crate) client_id_file: Option<Spanned<String>>,
    pub(crate) client_secret_env: Option<Spanned<String>>,
    pub(crate) client_secret_file: Option<Spanned<String>>,
    pub(crate) client_id: Option<Spanned<toml::Value>>,
    pub(crate) client_secret: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTarget {
    pub(crate) base_url: Spanned<String>,
    pub(crate) timeout: Option<Spanned<String>>,
    pub(crate) headers: Option<SpannedMap<Scalar>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScenario {
    pub(crate) steps: Spanned<Vec<Spanned<RawStep>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStep {
    pub(crate) name: Spanned<String>,
    pub(crate) method: Option<Spanned<String>>,
    pub(crate) path: Spanned<String>,
    pub(crate) query: Option<SpannedMap<Scalar>>,
    pub(crate) headers: Option<SpannedMap<Scalar>>,
    pub(crate) body: Option<Spanned<String>>,
    pub(crate) body_file: Option<Spanned<String>>,
    pub(crate) expect: Option<Vec<Spanned<u16>>>,
    pub(crate) captures: Option<SpannedMap<String>>,
    pub(crate) checks: Option<Vec<Spanned<RawCheck>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCheck {
    pub(crate) pointer: Spanned<String>,
    pub(crate) equals: Spanned<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLoad {
    pub(crate) model: Option<Spanned<String>>,
    pub(crate) start_rate: Option<Spanned<f64>>,
    pub(crate) max_in_flight: Option<Spanned<u32>>,
    pub(crate) start_vus: Option<Spanned<u32>>,
    pub(crate) think_time: Option<Spanned<String>>,
    pub(crate) stages: Spanned<Vec<Spanned<RawStage>>>,
    /// Signed, so that a negative count gets the same message as 0.
    pub(crate) max_total_requests: Option<Spanned<i64>>,
    pub(crate) max_rps: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStage {
    pub(crate) duration: Spanned<String>,
    pub(crate) target: Spanned<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBackoff {
    pub(crate) policy: Option<Spanned<String>>,
    pub(crate) max_retries: Option<Spanned<u32>>,
    pub(crate) retry_budget: Option<Spanned<f64>>,
    pub(crate) max_retry_after: Option<Spanned<String>>,
    pub(crate) base: Option<Spanned<String>>,
    pub(crate) cap: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawData {
    pub(crate) partition: Option<Spanned<String>>,
    pub(crate) rows: Option<Spanned<Vec<Spanned<SpannedMap<Scalar>>>>>,
    pub(crate) sequence: Option<Spanned<RawSequence>>,
    pub(crate) file: Option<Spanned<String>>,
    pub(crate) format: Option<Spanned<String>>,
    pub(crate) on_exhausted: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSequence {
    pub(crate) var: Spanned<String>,
    pub(crate) format: Spanned<String>,
    pub(crate) count: Spanned<u64>,
}

/// A threshold value: `"< 800ms"` or `{ expr = "< 800ms", abort_on_fail = true, grace = "10s" }`.
#[derive(Debug)]
pub(crate) enum RawThreshold {
    Scalar(Scalar),
    Table(RawThresholdTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawThresholdTable {
    pub(crate) expr: Spanned<String>,
    pub(crate) abort_on_fail: Option<Spanned<bool>>,
    pub(crate) grace: Option<Spanned<String>>,
}

impl<'de> Deserialize<'de> for RawThreshold {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<RawThreshold, D::Error> {
        struct ThresholdVisitor;
        impl<'de> Visitor<'de> for ThresholdVisitor {
            type Value = RawThreshold;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string such as \"< 800ms\" or a table { expr = \"< 800ms\", abort_on_fail = true }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawThreshold, E> {
                Ok(RawThreshold::Scalar(Scalar::Str(v.to_owned())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawThreshold, E> {
                Ok(RawThreshold::Scalar(Scalar::Other(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawThreshold, E> {
                Ok(RawThreshold::Scalar(Scalar::Other(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawThreshold, E> {
                Ok(RawThreshold::Scalar(Scalar::Other(v.to_string())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawThreshold, E> {
                Ok(RawThreshold::Scalar(Scalar::Other(v.to_string())))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<RawThreshold, A::Error> {
                RawThresholdTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawThreshold::Table)
            }
        }
        deserializer.deserialize_any(ThresholdVisitor)
    }
}

/// A string, number or boolean; numbers and booleans are used as their TOML text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Str(String),
    Other(String),
}

impl Scalar {
    pub(crate) fn text(&self) -> &str {
        match self {
            Scalar::Str(s) | Scalar::Other(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Scalar, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::Str(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Other(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Other(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Other(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Other(v.to_string()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// Parses `text` into the raw layer; every error carries line, column and key path.
pub(crate) fn parse_raw(text: &str, origin: &str) -> Result<RawPlan, PlanError> {
    if let Some(at) = crate::limits::too_many_items(text) {
        let message = format!(
            "expected at most {MAX_ITEMS} keys, values and tables (a limit of the plan format), \
             got more by here"
        );
        return Err(PlanError::at(text, origin, at..at, "", message));
    }
    let tree = DeTable::parse(text).map_err(|err| {
        // No key path: after a syntax error the partial tree is not worth trusting.
        let span = err.span().unwrap_or(0..0);
        let mut message = rewrite_serde_message(err.message());
        let duplicate = (message == "duplicate key")
            .then(|| text.get(span.clone()))
            .flatten()
            .filter(|k| !k.is_empty());
        if let Some(key) = duplicate {
            message = format!("duplicate key `{}`", key.trim());
        }
        PlanError::at(text, origin, span, "", message)
    })?;
    // The tree is consumed; on an error it is parsed again for the key path (no copy of
    // a large tree on the way to success).
    RawPlan::deserialize(toml::de::Deserializer::from(tree)).map_err(|err| {
        let span = err.span().unwrap_or(0..0);
        let mut key = DeTable::parse(text)
            .map(|tree| key_path_at(&tree, &span))
            .unwrap_or_default();
        let mut message = rewrite_serde_message(err.message());
        // Serde points a missing key at its table; name the key itself in the path.
        if let Some(missing) = message
            .strip_prefix("missing key `")
            .and_then(|m| m.strip_suffix('`'))
        {
            key = join_key(&key, missing);
            message = "missing required key".to_owned();
        }
        PlanError::at(text, origin, span, key, message)
    })
}

/// The key path of the smallest key or value whose span holds `span` (the deepest on a
/// tie, e.g. an array of tables and its first element); empty when none does.
pub(crate) fn key_path_at(tree: &Spanned<DeTable<'_>>, span: &Range<usize>) -> String {
    let mut best: Option<(usize, usize, String)> = None;
    visit_table(tree.get_ref(), "", 0, span, &mut best);
    best.map(|(_, _, path)| path).unwrap_or_default()
}

type Best = Option<(usize, usize, String)>;

fn consider(node: Range<usize>, path: &str, depth: usize, span: &Range<usize>, best: &mut Best) {
    // An empty span (a missing key reported at the top, some syntax errors) must fall
    // strictly inside the node, so a root error at 0..0 is not pinned on the first table.
    let holds = if span.is_empty() {
        node.start < span.start && span.start < node.end
    } else {
        node.start <= span.start && span.end <= node.end
    };
    if !holds {
        return;
    }
    let len = node.end - node.start;
    let better = match best {
        None => true,
        Some((best_len, best_depth, _)) => {
            len < *best_len || (len == *best_len && depth > *best_depth)
        }
    };
    if better {
        *best = Some((len, depth, path.to_owned()));
    }
}

fn visit_table(
    table: &DeTable<'_>,
    parent: &str,
    depth: usize,
    span: &Range<usize>,
    best: &mut Best,
) {
    for (key, value) in table {
        let path = join_key(parent, key.get_ref());
        consider(key.span(), &path, depth + 1, span, best);
        visit_value(value, &path, depth + 1, span, best);
    }
}

fn visit_value(
    value: &Spanned<DeValue<'_>>,
    path: &str,
    depth: usize,
    span: &Range<usize>,
    best: &mut Best,
) {
    consider(value.span(), path, depth, span, best);
    match value.get_ref() {
        DeValue::Table(table) => visit_table(table, path, depth, span, best),
        DeValue::Array(array) => {
            for (i, item) in array.iter().enumerate() {
                visit_value(item, &join_index(path, i), depth + 1, span, best);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_of(text: &str, needle: &str) -> String {
        let tree = DeTable::parse(text).unwrap();
        let start = text.find(needle).unwrap();
        key_path_at(&tree, &(start..start + needle.len()))
    }

    #[test]
    fn key_paths_from_spans() {
        let text = "name = \"x\"\n[[scenario.steps]]\nname = \"a\"\n[[scenario.steps]]\nexpect = [200, 999]\n\
                    [load]\nstages = [{ duration = \"1s\", target = 1 }, { duration = \"2s\" }]\n\
                    [thresholds]\n\"latency.p99\" = \"< 1ms\"\n";
        assert_eq!(path_of(text, "999"), "scenario.steps[1].expect[1]");
        assert_eq!(path_of(text, "\"2s\""), "load.stages[1].duration");
        assert_eq!(path_of(text, "{ duration = \"2s\" }"), "load.stages[1]");
        assert_eq!(path_of(text, "\"< 1ms\""), "thresholds.\"latency.p99\"");
        assert_eq!(path_of(text, "[load]"), "load");
        assert_eq!(path_of(text, "\"a\""), "scenario.steps[0].name");
    }

    #[test]
    fn scalars_take_their_toml_text() {
        #[derive(Deserialize)]
        struct S {
            a: Scalar,
            b: Scalar,
            c: Scalar,
        }
        let s: S = toml::from_str("a = \"x\"\nb = 5\nc = true").unwrap();
        assert_eq!(s.a, Scalar::Str("x".into()));
        assert_eq!(s.b.text(), "5");
        assert_eq!(s.c.text(), "true");
    }
}

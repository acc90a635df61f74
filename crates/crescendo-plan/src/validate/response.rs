//! `captures` and `checks`: JSON Pointers into a step's response body.

use serde_spanned::Spanned;

use super::{Ctx, TemplateSite};
use crate::error::{PlanError, join_index, join_key};
use crate::limits::MAX_ENTRIES_PER_TABLE;
use crate::model::{Capture, Check};
use crate::raw::{RawCheck, RawScenario, SpannedMap};
use crate::template::{BUILTIN_VARIABLES, is_identifier};

/// `captures = { version = "/version" }`, in the order written. Whether a name shadows a
/// data column is checked later, by [`check_captures`], once the columns are known.
pub(super) fn captures(
    ctx: Ctx<'_>,
    raw: Option<&SpannedMap<String>>,
    step_key: &str,
) -> Result<Vec<Capture>, PlanError> {
    let captures_key = join_key(step_key, "captures");
    ctx.at_most_entries(raw, MAX_ENTRIES_PER_TABLE, &captures_key, "captures")?;
    let mut entries: Vec<_> = raw.into_iter().flatten().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    let mut out = Vec::with_capacity(entries.len());
    for (var, pointer) in entries {
        let key = join_key(&captures_key, var.get_ref());
        let v = var.get_ref();
        if !is_identifier(v) {
            return Err(ctx.err(
                var.span(),
                &key,
                format!("expected a variable name of letters, digits and _ (not first a digit), got {v:?}"),
            ));
        }
        if BUILTIN_VARIABLES.contains(&v.as_str()) {
            return Err(ctx.err(
                var.span(),
                &key,
                format!(
                    "expected a capture name other than the built-in variables ({}), got {v:?}",
                    BUILTIN_VARIABLES.join(", ")
                ),
            ));
        }
        json_pointer(ctx, pointer, &key)?;
        out.push(Capture {
            var: v.clone(),
            pointer: pointer.get_ref().clone(),
        });
    }
    Ok(out)
}

/// `checks = [{ pointer = "/id", equals = "{flowId}" }]`; string values are templates.
pub(super) fn checks(
    ctx: Ctx<'_>,
    raw: Option<&Vec<Spanned<RawCheck>>>,
    step_key: &str,
    step: usize,
    sites: &mut Vec<TemplateSite>,
) -> Result<Vec<Check>, PlanError> {
    if let Some(raw) = raw {
        let checks_key = join_key(step_key, "checks");
        ctx.at_most(raw, MAX_ENTRIES_PER_TABLE, &checks_key, "checks")?;
    }
    let mut out = Vec::new();
    for (i, check) in raw.into_iter().flatten().enumerate() {
        let key = join_index(&join_key(step_key, "checks"), i);
        let check = check.get_ref();
        json_pointer(ctx, &check.pointer, &join_key(&key, "pointer"))?;
        let equals_key = join_key(&key, "equals");
        let span = check.equals.span();
        let equals = match check.equals.get_ref() {
            toml::Value::String(s) => {
                sites.push(TemplateSite {
                    key: equals_key,
                    span,
                    value: s.clone(),
                    step,
                });
                serde_json::Value::String(s.clone())
            }
            toml::Value::Integer(n) => serde_json::Value::from(*n),
            toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
            toml::Value::Float(f) if f.is_finite() => serde_json::Value::from(*f),
            other => {
                return Err(ctx.err(
                    span,
                    &equals_key,
                    format!(
                        "expected a string, a finite number or a boolean, got {}",
                        other.type_str()
                    ),
                ));
            }
        };
        out.push(Check {
            pointer: check.pointer.get_ref().clone(),
            equals,
        });
    }
    Ok(out)
}

/// An RFC 6901 JSON Pointer: empty, or `/`-separated tokens where `~` is only in `~0`, `~1`.
fn json_pointer(ctx: Ctx<'_>, pointer: &Spanned<String>, key: &str) -> Result<(), PlanError> {
    let p = pointer.get_ref();
    let bad_escape = p
        .match_indices('~')
        .any(|(i, _)| !matches!(p.as_bytes().get(i + 1), Some(b'0' | b'1')));
    if (!p.is_empty() && !p.starts_with('/')) || bad_escape {
        return Err(ctx.err(
            pointer.span(),
            key,
            format!(
                "expected a JSON Pointer (RFC 6901): \"\" for the whole body or a path such as \
                 \"/version\" or \"/lockedClient/id\" (~0 for ~, ~1 for /), got {p:?}"
            ),
        ));
    }
    Ok(())
}

/// Capture names may not shadow a data column.
pub(super) fn check_captures(
    ctx: Ctx<'_>,
    raw: &Spanned<RawScenario>,
    columns: &[String],
) -> Result<(), PlanError> {
    for (i, step) in raw.get_ref().steps.get_ref().iter().enumerate() {
        for var in step.get_ref().captures.iter().flat_map(|c| c.keys()) {
            if columns.contains(var.get_ref()) {
                let key = join_key(
                    &join_key(&join_index("scenario.steps", i), "captures"),
                    var.get_ref(),
                );
                return Err(ctx.err(
                    var.span(),
                    &key,
                    format!(
                        "expected a capture name other than the data columns ({}), got {:?}",
                        columns.join(", "),
                        var.get_ref()
                    ),
                ));
            }
        }
    }
    Ok(())
}

//! Semantic validation: the raw serde layer becomes the [`model`](crate::model), and every
//! value the model promises (positive durations, absolute URLs, known template
//! variables …) is checked here, with the value's own span for the error location.

mod data;
mod load;
mod request;

use std::ops::Range;
use std::time::Duration;

use serde_spanned::Spanned;

use crate::error::{PlanError, join_key};
use crate::model::{Plan, Threshold};
use crate::raw::{RawPlan, Scalar, SpannedMap};
use crate::template::{BUILTIN_VARIABLES, Template};
use crate::threshold::{parse_metric, parse_threshold};

/// What every check needs to turn a span into a located error.
#[derive(Debug, Clone, Copy)]
struct Ctx<'a> {
    text: &'a str,
    origin: &'a str,
}

/// A string that is a template, remembered until the data columns are known.
#[derive(Debug)]
struct TemplateSite {
    key: String,
    span: Range<usize>,
    value: String,
}

impl Ctx<'_> {
    fn err(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> PlanError {
        PlanError::at(self.text, self.origin, span, key, message)
    }

    /// A duration string such as `20s`, `1m30s` or `250ms`.
    fn duration(&self, value: &Spanned<String>, key: &str) -> Result<Duration, PlanError> {
        humantime::parse_duration(value.get_ref().trim()).map_err(|_| {
            self.err(
                value.span(),
                key,
                format!(
                    "expected a duration such as \"20s\", \"1m30s\" or \"250ms\", got {:?}",
                    value.get_ref()
                ),
            )
        })
    }

    /// A duration that must be above zero.
    fn positive_duration(&self, value: &Spanned<String>, key: &str) -> Result<Duration, PlanError> {
        let d = self.duration(value, key)?;
        if d.is_zero() {
            return Err(self.err(
                value.span(),
                key,
                format!("expected a duration > 0, got {:?}", value.get_ref()),
            ));
        }
        Ok(d)
    }

    /// The span of byte `offset` inside the string `value` written at `span`: exact when
    /// the source is a plain one-line string without escapes, else the string's start.
    fn inside_string(&self, span: &Range<usize>, value: &str, offset: usize) -> Range<usize> {
        let Some(raw) = self.text.get(span.clone()) else {
            return span.clone();
        };
        let plain = raw.len() >= 2
            && !raw.starts_with("\"\"\"")
            && !raw.starts_with("'''")
            && (raw.starts_with('"') || raw.starts_with('\''))
            && raw[1..raw.len() - 1] == *value;
        if plain {
            let at = span.start + 1 + offset;
            at..at + 1
        } else {
            span.clone()
        }
    }
}

/// Converts and checks the raw plan.
pub(crate) fn validate(raw: RawPlan, text: &str, origin: &str) -> Result<Plan, PlanError> {
    let ctx = Ctx { text, origin };
    let name = raw.name.get_ref().trim();
    if name.is_empty() {
        return Err(ctx.err(raw.name.span(), "name", "expected a non-empty name"));
    }
    let mut sites = Vec::new();
    let target = request::target(ctx, &raw.target, &mut sites)?;
    let scenario = request::scenario(ctx, &raw.scenario, &mut sites)?;
    let load = load::load(ctx, &raw.load)?;
    let backoff = load::backoff(ctx, raw.backoff.as_ref())?;
    let data = raw.data.as_ref().map(|d| data::data(ctx, d)).transpose()?;
    let columns = data.as_ref().map(|d| d.columns()).unwrap_or_default();
    check_templates(ctx, &sites, &columns)?;
    let thresholds = thresholds(ctx, raw.thresholds.as_ref())?;
    Ok(Plan {
        name: name.to_owned(),
        description: raw.description,
        target,
        scenario,
        load,
        backoff,
        data,
        thresholds,
    })
}

/// Every variable in every template must be a built-in or a data column.
fn check_templates(
    ctx: Ctx<'_>,
    sites: &[TemplateSite],
    columns: &[String],
) -> Result<(), PlanError> {
    let known = |name: &str| BUILTIN_VARIABLES.contains(&name) || columns.iter().any(|c| c == name);
    for site in sites {
        for (offset, name) in Template::variable_offsets(&site.value) {
            if known(&name) {
                continue;
            }
            let mut names: Vec<&str> = BUILTIN_VARIABLES.to_vec();
            names.extend(columns.iter().map(String::as_str));
            let hint = if columns.is_empty() {
                " (data columns come from a [data] table)"
            } else {
                ""
            };
            return Err(ctx.err(
                ctx.inside_string(&site.span, &site.value, offset),
                &site.key,
                format!(
                    "unknown template variable {{{name}}}, expected one of {}{hint} \
                     (write {{{{{name}}}}} for the literal text)",
                    names.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// `[thresholds]`, in the order they are written.
fn thresholds(ctx: Ctx<'_>, raw: Option<&SpannedMap<Scalar>>) -> Result<Vec<Threshold>, PlanError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let mut entries: Vec<_> = raw.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    entries
        .into_iter()
        .map(|(k, v)| {
            let key = join_key("thresholds", k.get_ref());
            let metric = parse_metric(k.get_ref()).map_err(|m| ctx.err(k.span(), &key, m))?;
            let Scalar::Str(value) = v.get_ref() else {
                return Err(ctx.err(
                    v.span(),
                    &key,
                    format!(
                        "expected a string such as \"< 800ms\" or \"== 0\", got {}",
                        v.get_ref().text()
                    ),
                ));
            };
            parse_threshold(k.get_ref(), metric, value).map_err(|m| ctx.err(v.span(), &key, m))
        })
        .collect()
}

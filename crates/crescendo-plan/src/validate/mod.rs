//! Semantic validation: the raw serde layer becomes the [`model`](crate::model), and every
//! value the model promises (positive durations, absolute URLs, known template
//! variables …) is checked here, with the value's own span for the error location.

mod auth;
mod data;
mod load;
mod request;
mod response;
mod thresholds;

use std::collections::HashSet;
use std::ops::Range;
use std::time::Duration;

use serde_spanned::Spanned;

use crate::error::{PlanError, join_index, join_key};
use crate::files::PlanFiles;
use crate::model::{Auth, Plan};
use crate::raw::{RawPlan, SpannedMap};
use crate::template::{BUILTIN_VARIABLES, Template};

/// What every check needs to turn a span into a located error, and to read the files
/// the plan refers to.
#[derive(Debug, Clone, Copy)]
struct Ctx<'a> {
    text: &'a str,
    origin: &'a str,
    files: &'a dyn PlanFiles,
}

/// A string that is a template, remembered until the data columns are known.
#[derive(Debug)]
struct TemplateSite {
    key: String,
    span: Range<usize>,
    value: String,
    /// Index of the step it belongs to (0 for target headers): captures of earlier
    /// steps are variables there.
    step: usize,
}

/// The variables a step captures, with the step's name, in step order.
type StepCaptures = Vec<(String, Vec<String>)>;

impl Ctx<'_> {
    fn err(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> PlanError {
        PlanError::at(self.text, self.origin, span, key, message)
    }

    /// A whole file the plan names at `path` (a `body_file`), as UTF-8 text.
    fn file_text(&self, path: &Spanned<String>, key: &str) -> Result<String, PlanError> {
        let p = path.get_ref();
        let bytes = self.files.read(p).map_err(|e| {
            self.err(path.span(), key, format!("cannot read {p:?}: {e}"))
                .with_source(e)
        })?;
        crate::text::utf8(bytes)
            .map_err(|(why, _)| self.err(path.span(), key, format!("{p:?}: {}", why.describe())))
    }

    /// The first line of the data file at `path`.
    fn file_header(&self, path: &Spanned<String>, key: &str) -> Result<Vec<u8>, PlanError> {
        let p = path.get_ref();
        self.files.header(p).map_err(|e| {
            self.err(path.span(), key, format!("cannot read {p:?}: {e}"))
                .with_source(e)
        })
    }

    /// Refuses more than `max` items, at the first one past the limit.
    fn at_most<T>(
        &self,
        items: &[Spanned<T>],
        max: usize,
        key: &str,
        what: &str,
    ) -> Result<(), PlanError> {
        match items.get(max) {
            Some(past) => Err(self.err(
                past.span(),
                &join_index(key, max),
                over_limit(max, items.len(), what),
            )),
            None => Ok(()),
        }
    }

    /// Refuses a table of more than `max` entries, at the first entry (as written) past
    /// the limit.
    fn at_most_entries<V>(
        &self,
        map: Option<&SpannedMap<V>>,
        max: usize,
        key: &str,
        what: &str,
    ) -> Result<(), PlanError> {
        let Some(map) = map.filter(|m| m.len() > max) else {
            return Ok(());
        };
        let mut names: Vec<&Spanned<String>> = map.keys().collect();
        names.sort_by_key(|k| k.span().start);
        let past = names[max];
        Err(self.err(
            past.span(),
            &join_key(key, past.get_ref()),
            over_limit(max, map.len(), what),
        ))
    }

    /// A name (of the plan, a step) without control characters, which would garble
    /// logs, reports and terminals.
    fn plain_name(&self, name: &Spanned<String>, key: &str, what: &str) -> Result<(), PlanError> {
        let value = name.get_ref();
        match value.char_indices().find(|(_, c)| is_control(*c)) {
            Some((i, _)) => Err(self.err(
                self.inside_string(&name.span(), value, i),
                key,
                format!("expected a {what} without control characters, got {value:?}"),
            )),
            None => Ok(()),
        }
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

/// The message for `got` items where the format allows `max`.
fn over_limit(max: usize, got: usize, what: &str) -> String {
    format!(
        "expected at most {}, got {got} (a limit of the plan format)",
        crate::limits::count(max, what)
    )
}

/// A control character (C0, DEL, C1) or a bidirectional formatting character, which
/// can make a name display as something else.
pub(crate) fn is_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// Converts and checks the raw plan.
pub(crate) fn validate(
    raw: RawPlan,
    text: &str,
    origin: &str,
    files: &dyn PlanFiles,
) -> Result<Plan, PlanError> {
    let ctx = Ctx {
        text,
        origin,
        files,
    };
    let name = raw.name.get_ref().trim();
    if name.is_empty() {
        return Err(ctx.err(raw.name.span(), "name", "expected a non-empty name"));
    }
    ctx.plain_name(&raw.name, "name", "plan name")?;
    let auth = auth::auth(ctx, raw.auth.as_ref())?;
    let mut sites = Vec::new();
    let target = request::target(ctx, &raw.target, &mut sites, &auth)?;
    let (scenario, captures) = request::scenario(ctx, &raw.scenario, &mut sites, &auth)?;
    let load = load::load(ctx, &raw.load)?;
    let ceilings = load::ceilings(ctx, &raw.load)?;
    let backoff = load::backoff(ctx, raw.backoff.as_ref())?;
    let fleet = load::fleet(ctx, raw.fleet.as_ref())?;
    let data = raw.data.as_ref().map(|d| data::data(ctx, d)).transpose()?;
    let columns = data.as_ref().map(|d| d.columns()).unwrap_or_default();
    response::check_captures(ctx, &raw.scenario, &columns)?;
    check_templates(ctx, &sites, &columns, &captures)?;
    let thresholds = thresholds::thresholds(ctx, raw.thresholds.as_ref(), &scenario)?;
    Ok(Plan {
        name: name.to_owned(),
        description: raw.description,
        target,
        scenario,
        load,
        ceilings,
        backoff,
        data,
        thresholds,
        auth,
        fleet,
    })
}

/// Every variable in every template must be a built-in, a data column or a capture of
/// an earlier step. Linear in the plan: the known variables grow step by step as the
/// sites (in step order) are walked, with a set for the look-ups.
fn check_templates(
    ctx: Ctx<'_>,
    sites: &[TemplateSite],
    columns: &[String],
    captures: &StepCaptures,
) -> Result<(), PlanError> {
    let mut known: Vec<&str> = BUILTIN_VARIABLES.to_vec();
    known.extend(columns.iter().map(String::as_str));
    let mut lookup: HashSet<&str> = known.iter().copied().collect();
    // Steps whose captures are in `known`: those before the current site's step.
    let mut added = 0;
    let mut order: Vec<&TemplateSite> = sites.iter().collect();
    order.sort_by_key(|site| site.step);
    for site in order {
        let upto = site.step.min(captures.len());
        for (_, vars) in captures.get(added..upto).unwrap_or_default() {
            known.extend(vars.iter().map(String::as_str));
            lookup.extend(vars.iter().map(String::as_str));
        }
        added = added.max(upto);
        for (offset, name) in Template::variable_offsets(&site.value) {
            if lookup.contains(name.as_str()) {
                continue;
            }
            let later = captures
                .iter()
                .skip(site.step)
                .find(|(_, vars)| vars.contains(&name));
            let hint = match later {
                Some((step, _)) => format!(
                    " ({{{name}}} is captured by step {step:?}, which does not run before this)"
                ),
                None if columns.is_empty() => " (data columns come from a [data] table)".to_owned(),
                None => String::new(),
            };
            return Err(ctx.err(
                ctx.inside_string(&site.span, &site.value, offset),
                &site.key,
                format!(
                    "unknown template variable {{{name}}}, expected one of {}{hint} \
                     (write {{{{{name}}}}} for the literal text)",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// True when `auth` makes the agent set the `Authorization` header itself.
fn sets_authorization(auth: &Auth) -> bool {
    !matches!(auth, Auth::None)
}

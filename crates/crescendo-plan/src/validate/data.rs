//! `[data]`: inline rows or a generated sequence, and how agents partition them.

use std::collections::BTreeMap;

use serde_spanned::Spanned;

use super::Ctx;
use crate::error::{PlanError, join_index, join_key};
use crate::model::{Data, DataSource, Partition};
use crate::raw::{RawData, RawSequence, Scalar, SpannedMap};
use crate::template::{BUILTIN_VARIABLES, Template, is_identifier};

/// Most rows a `sequence` may generate: every agent materialises its slice.
pub(crate) const MAX_SEQUENCE_ROWS: u64 = 1_000_000;

pub(super) fn data(ctx: Ctx<'_>, raw: &Spanned<RawData>) -> Result<Data, PlanError> {
    let span = raw.span();
    let raw = raw.get_ref();
    let partition = match &raw.partition {
        None => Partition::PerAgent,
        Some(p) => match p.get_ref().as_str() {
            "per-agent" => Partition::PerAgent,
            "shared" => Partition::Shared,
            other => {
                return Err(ctx.err(
                    p.span(),
                    "data.partition",
                    format!("expected \"per-agent\" or \"shared\", got {other:?}"),
                ));
            }
        },
    };
    let source = match (&raw.rows, &raw.sequence) {
        (Some(rows), None) => DataSource::Inline(inline_rows(ctx, rows)?),
        (None, Some(seq)) => sequence(ctx, seq.get_ref())?,
        (rows, _) => {
            let got = if rows.is_some() { "both" } else { "neither" };
            return Err(ctx.err(
                span,
                "data",
                format!(
                    "expected exactly one of `rows = [{{ … }}]` or \
                     `sequence = {{ var = …, format = …, count = … }}`, got {got}"
                ),
            ));
        }
    };
    Ok(Data { source, partition })
}

/// A data column: an identifier that does not shadow a built-in variable.
fn column(ctx: Ctx<'_>, name: &Spanned<String>, key: &str) -> Result<(), PlanError> {
    let n = name.get_ref();
    if !is_identifier(n) {
        return Err(ctx.err(
            name.span(),
            key,
            format!(
                "expected a column name of letters, digits and _ (not first a digit), got {n:?}"
            ),
        ));
    }
    if BUILTIN_VARIABLES.contains(&n.as_str()) {
        return Err(ctx.err(
            name.span(),
            key,
            format!(
                "expected a column name other than the built-in variables ({}), got {n:?}",
                BUILTIN_VARIABLES.join(", ")
            ),
        ));
    }
    Ok(())
}

type RawRows = Spanned<Vec<Spanned<SpannedMap<Scalar>>>>;

fn inline_rows(ctx: Ctx<'_>, raw: &RawRows) -> Result<Vec<BTreeMap<String, String>>, PlanError> {
    if raw.get_ref().is_empty() {
        return Err(ctx.err(
            raw.span(),
            "data.rows",
            "expected at least one row, such as [{ flowId = \"a\" }]",
        ));
    }
    let mut rows = Vec::with_capacity(raw.get_ref().len());
    for (i, row) in raw.get_ref().iter().enumerate() {
        let key = join_index("data.rows", i);
        let mut out = BTreeMap::new();
        for (name, value) in row.get_ref() {
            column(ctx, name, &join_key(&key, name.get_ref()))?;
            out.insert(name.get_ref().clone(), value.get_ref().text().to_owned());
        }
        if let Some(first) = rows.first() {
            let columns =
                |r: &BTreeMap<String, String>| r.keys().cloned().collect::<Vec<_>>().join(", ");
            if !out.keys().eq(BTreeMap::keys(first)) {
                return Err(ctx.err(
                    row.span(),
                    &key,
                    format!(
                        "expected the same columns as data.rows[0] ({}), got ({})",
                        columns(first),
                        columns(&out)
                    ),
                ));
            }
        } else if out.is_empty() {
            return Err(ctx.err(row.span(), &key, "expected a row with at least one column"));
        }
        rows.push(out);
    }
    Ok(rows)
}

fn sequence(ctx: Ctx<'_>, raw: &RawSequence) -> Result<DataSource, PlanError> {
    column(ctx, &raw.var, "data.sequence.var")?;
    let format = raw.format.get_ref();
    let key = "data.sequence.format";
    for (offset, name) in Template::variable_offsets(format) {
        if name != "n" {
            return Err(ctx.err(
                ctx.inside_string(&raw.format.span(), format, offset),
                key,
                format!("expected {{n}} as the only variable of a sequence format, got {{{name}}}"),
            ));
        }
    }
    if Template::parse(format).is_literal() {
        return Err(ctx.err(
            raw.format.span(),
            key,
            format!("expected a format containing {{n}}, such as \"flow-{{n}}\", got {format:?}"),
        ));
    }
    let count = *raw.count.get_ref();
    if !(1..=MAX_SEQUENCE_ROWS).contains(&count) {
        return Err(ctx.err(
            raw.count.span(),
            "data.sequence.count",
            format!("expected a row count from 1 to {MAX_SEQUENCE_ROWS}, got {count}"),
        ));
    }
    Ok(DataSource::Sequence {
        var: raw.var.get_ref().clone(),
        format: format.clone(),
        count,
    })
}

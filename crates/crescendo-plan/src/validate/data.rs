//! `[data]`: inline rows, a generated sequence or a file, and how agents partition them.

use std::collections::BTreeMap;

use serde_spanned::Spanned;

use super::Ctx;
use crate::error::{PlanError, join_index, join_key};
use crate::limits::{MAX_COLUMNS, MAX_INLINE_ROWS};
use crate::model::{Data, DataFile, DataFormat, DataSource, OnExhausted, Partition};
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
            "unique" => Partition::Unique,
            other => {
                return Err(ctx.err(
                    p.span(),
                    "data.partition",
                    format!("expected \"per-agent\", \"shared\" or \"unique\", got {other:?}"),
                ));
            }
        },
    };
    let on_exhausted = match &raw.on_exhausted {
        None => OnExhausted::StopAgent,
        Some(o) => match o.get_ref().as_str() {
            "stop-agent" => OnExhausted::StopAgent,
            "stop-run" => OnExhausted::StopRun,
            other => {
                return Err(ctx.err(
                    o.span(),
                    "data.on_exhausted",
                    format!("expected \"stop-agent\" or \"stop-run\", got {other:?}"),
                ));
            }
        },
    };
    if let (Some(f), None) = (&raw.format, &raw.file) {
        return Err(ctx.err(
            f.span(),
            "data.format",
            "applies only to `file`; remove it or add file = \"…\"",
        ));
    }
    let source = match (&raw.rows, &raw.sequence, &raw.file) {
        (Some(rows), None, None) => DataSource::Inline(inline_rows(ctx, rows)?),
        (None, Some(seq), None) => sequence(ctx, seq.get_ref())?,
        (None, None, Some(path)) => DataSource::File(file(ctx, path, raw.format.as_ref())?),
        (rows, seq, file) => {
            let n = [rows.is_some(), seq.is_some(), file.is_some()]
                .iter()
                .filter(|b| **b)
                .count();
            let got = if n == 0 { "none" } else { "more than one" };
            return Err(ctx.err(
                span,
                "data",
                format!(
                    "expected exactly one of `rows = [{{ … }}]`, \
                     `sequence = {{ var = …, format = …, count = … }}` or `file = \"data.csv\"`, got {got}"
                ),
            ));
        }
    };
    Ok(Data {
        source,
        partition,
        on_exhausted,
    })
}

/// `file = "data/flows.csv"`: the format from `format` or the extension, the columns
/// from the file's first line.
fn file(
    ctx: Ctx<'_>,
    path: &Spanned<String>,
    format: Option<&Spanned<String>>,
) -> Result<DataFile, PlanError> {
    let p = path.get_ref();
    if p.trim().is_empty() {
        return Err(ctx.err(path.span(), "data.file", "expected a file path, got \"\""));
    }
    let format = match format {
        Some(f) => match f.get_ref().as_str() {
            "csv" => DataFormat::Csv,
            "jsonl" | "ndjson" => DataFormat::JsonLines,
            other => {
                return Err(ctx.err(
                    f.span(),
                    "data.format",
                    format!("expected \"csv\" or \"jsonl\", got {other:?}"),
                ));
            }
        },
        None => {
            let ext = p.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
            match ext.as_deref() {
                Some("csv") => DataFormat::Csv,
                Some("jsonl" | "ndjson") => DataFormat::JsonLines,
                _ => {
                    return Err(ctx.err(
                        path.span(),
                        "data.file",
                        format!(
                            "expected a .csv, .jsonl or .ndjson file, or a `format` key, got {p:?}"
                        ),
                    ));
                }
            }
        }
    };
    let header = ctx.file_header(path, "data.file")?;
    let columns = crate::rows::header_columns(format, &header)
        .map_err(|m| ctx.err(path.span(), "data.file", format!("data file {p:?}: {m}")))?;
    if columns.len() > MAX_COLUMNS {
        return Err(ctx.err(
            path.span(),
            "data.file",
            format!(
                "data file {p:?}: {}",
                super::over_limit(MAX_COLUMNS, columns.len(), "data columns")
            ),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for c in &columns {
        let named = Spanned::new(path.span(), c.clone());
        column(ctx, &named, "data.file").map_err(|mut e| {
            e.message = format!("data file {p:?}: {}", e.message);
            e
        })?;
        if !seen.insert(c) {
            return Err(ctx.err(
                path.span(),
                "data.file",
                format!("data file {p:?}: expected unique column names, got {c:?} twice"),
            ));
        }
    }
    Ok(DataFile {
        path: p.clone(),
        format,
        columns,
    })
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
    ctx.at_most(raw.get_ref(), MAX_INLINE_ROWS, "data.rows", "inline rows")?;
    let mut rows = Vec::with_capacity(raw.get_ref().len());
    for (i, row) in raw.get_ref().iter().enumerate() {
        let key = join_index("data.rows", i);
        ctx.at_most_entries(Some(row.get_ref()), MAX_COLUMNS, &key, "data columns")?;
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

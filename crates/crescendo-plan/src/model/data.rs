//! `[data]`: rows that feed template variables, and how agents divide them.
//!
//! Row `i` (0-based, in file or generation order) belongs to agent `i % agents` with
//! [`Partition::PerAgent`] and [`Partition::Unique`]; with [`Partition::Shared`] every
//! agent gets every row. Inline rows and sequences are materialised by each agent from
//! the plan ([`Data::rows_for`]); a file's rows are streamed by the controller with the
//! same rule ([`read_rows`](crate::read_rows)).

use std::collections::BTreeMap;

/// `[data]`: where rows come from and who uses which.
#[derive(Debug, Clone, PartialEq)]
pub struct Data {
    pub source: DataSource,
    pub partition: Partition,
    /// What happens when a `unique` partition runs out of rows (ignored otherwise).
    pub on_exhausted: OnExhausted,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DataSource {
    /// `rows = [{ flowId = "a" }, …]`
    Inline(Vec<BTreeMap<String, String>>),
    /// `sequence = { var = "flowId", format = "flow-{n}", count = 100 }`: rows
    /// `{var: format with {n} replaced by 1..=count}`.
    Sequence {
        var: String,
        format: String,
        count: u64,
    },
    /// `file = "data/flows.csv"`: rows streamed from a CSV or JSON Lines file.
    File(DataFile),
}

/// A data file. Only its columns are known when the plan is loaded; the rows are read
/// later with [`read_rows`](crate::read_rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// The path as written in the plan, relative to the plan's directory.
    pub path: String,
    pub format: DataFormat,
    /// Column names: the CSV header, or the keys of the first JSON Lines object (sorted).
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFormat {
    /// Comma-separated values with a header row (`.csv`).
    Csv,
    /// One JSON object per line (`.jsonl`, `.ndjson`); strings, numbers and booleans
    /// become strings.
    JsonLines,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    /// Disjoint slices (row `i` to agent `i % agents`); every agent cycles over its slice.
    PerAgent,
    /// Every agent cycles over all rows.
    Shared,
    /// The same slices as `PerAgent`, but each row is used at most once in the whole
    /// run: an agent that has used all its rows stops (see [`OnExhausted`]).
    Unique,
}

/// `on_exhausted`: what a `unique` partition does when an agent's rows run out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnExhausted {
    /// The agent starts no more iterations; the others go on (default).
    #[default]
    StopAgent,
    /// The whole fleet stops.
    StopRun,
}

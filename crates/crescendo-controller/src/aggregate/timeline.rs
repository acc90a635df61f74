//! The run's per-second intervals, flat in memory however long the run lasts.
//!
//! A second stays *open* (full per-step histograms, in memory) until snapshots of a
//! second [`CLOSE_AFTER_S`] later have merged; then it is *final*: its
//! `latency.hlog` lines and `results.csv` rows go to a spool (memory first, a
//! temporary file once it grows) and only a compact row of scalars
//! ([`IntervalSummary`]) stays for the time series of `summary.json` and
//! `report.html`. So memory holds a bounded window of full intervals plus about
//! 100 bytes per second of run.
//!
//! A snapshot for a second already final (resent after a reconnect) is still merged
//! exactly once: into the run's totals as usual, and into the files as a *late line*:
//! one more hlog line and csv row per step with the same second `t`, holding only the
//! late snapshot's measurements (readers that add lines up by `t` get exact
//! figures). Its counts are added to the second's compact row; that row's
//! percentiles stay those of the measurements that arrived in time.

use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};
use std::sync::{Mutex, PoisonError};

use crescendo_metrics::LatencySummary;
use tempfile::SpooledTempFile;

use super::Interval;
use crate::report::summary::IntervalSummary;
use crate::report::{csv, hlog};

/// A second is final once a snapshot of a second this much later has merged.
pub(crate) const CLOSE_AFTER_S: u64 = 5;

/// How much of each spool stays in memory before it moves to a temporary file.
const SPOOL_IN_MEMORY: usize = 256 * 1024;

/// Per-second intervals: an open window in full, compact rows and spooled lines for
/// the rest (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    /// Seconds not final yet, merged over agents.
    open: BTreeMap<u64, Interval>,
    /// Every second before this one is final.
    final_before: u64,
    /// One row per final second, in order of `t`.
    rows: Vec<IntervalSummary>,
    /// Snapshots that arrived after their second was final.
    pub(crate) late_snapshots: u64,
    spool: Mutex<Spool>,
}

/// The closed intervals' `latency.hlog` lines and `results.csv` rows.
#[derive(Debug)]
struct Spool {
    hlog: SpooledTempFile,
    csv: SpooledTempFile,
    /// The first write that failed (reported when the files are written).
    failed: Option<std::io::Error>,
}

impl Default for Spool {
    fn default() -> Self {
        Self {
            hlog: SpooledTempFile::new(SPOOL_IN_MEMORY),
            csv: SpooledTempFile::new(SPOOL_IN_MEMORY),
            failed: None,
        }
    }
}

impl Spool {
    fn append(&mut self, t: u64, interval: &Interval) {
        let mut lines = Vec::new();
        let mut rows = String::new();
        let written = hlog::lines(t, interval, &mut lines).and_then(|()| {
            csv::rows(t, interval, &mut rows);
            self.hlog.write_all(&lines)?;
            self.csv.write_all(rows.as_bytes())
        });
        if let Err(e) = written
            && self.failed.is_none()
        {
            tracing::error!("could not spool the closed intervals: {e}");
            self.failed = Some(e);
        }
    }
}

/// Copy all of `file` to `out`, leaving it positioned at its end for more writes.
fn copy_out(file: &mut SpooledTempFile, out: &mut impl Write) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(0))?;
    let copied = std::io::copy(file, out);
    file.seek(SeekFrom::End(0))?;
    copied.map(|_| ())
}

impl Timeline {
    /// The open interval of `second`, or `None` when that second is final already.
    pub(crate) fn open(&mut self, second: u64) -> Option<&mut Interval> {
        (second >= self.final_before).then(|| self.open.entry(second).or_default())
    }

    /// A snapshot of `second` that arrived after it was final: its own lines in the
    /// files, its counts in the second's row.
    pub(crate) fn late(&mut self, second: u64, part: &Interval) {
        self.late_snapshots += 1;
        self.spool().append(second, part);
        let add = row_of(second, part);
        let at = self.rows.partition_point(|r| r.t < second);
        match self.rows.get_mut(at).filter(|r| r.t == second) {
            Some(row) => {
                row.offered = row.offered.saturating_add(add.offered);
                row.requests = row.requests.saturating_add(add.requests);
                row.ok = row.ok.saturating_add(add.ok);
                row.throttled = row.throttled.saturating_add(add.throttled);
                row.errors = row.errors.saturating_add(add.errors);
            }
            None => self.rows.insert(at, add),
        }
    }

    /// A snapshot of `second` merged: every second [`CLOSE_AFTER_S`] or more before it
    /// is final now.
    pub(crate) fn advance(&mut self, second: u64) {
        let final_before = (second + 1).saturating_sub(CLOSE_AFTER_S);
        if final_before <= self.final_before {
            return;
        }
        self.final_before = final_before;
        while let Some(entry) = self.open.first_entry() {
            if *entry.key() >= final_before {
                break;
            }
            let (t, interval) = entry.remove_entry();
            self.spool().append(t, &interval);
            self.rows.push(row_of(t, &interval));
        }
    }

    /// How many seconds are held in full.
    #[cfg(test)]
    pub(crate) fn open_seconds(&self) -> usize {
        self.open.len()
    }

    /// One row per second with data, in order of `t` (`planned` left empty).
    pub(crate) fn rows(&self) -> Vec<IntervalSummary> {
        let open = self.open.iter().map(|(t, i)| row_of(*t, i));
        self.rows.iter().cloned().chain(open).collect()
    }

    /// The `latency.hlog` lines of every second, final ones first.
    pub(crate) fn write_hlog(&self, out: &mut impl Write) -> std::io::Result<()> {
        {
            let mut spool = self.spool();
            if let Some(e) = &spool.failed {
                return Err(std::io::Error::new(e.kind(), e.to_string()));
            }
            copy_out(&mut spool.hlog, out)?;
        }
        let mut lines = Vec::new();
        for (t, interval) in &self.open {
            lines.clear();
            hlog::lines(*t, interval, &mut lines)?;
            out.write_all(&lines)?;
        }
        Ok(())
    }

    /// The `results.csv` rows (without the header) of every second, final ones first.
    pub(crate) fn write_csv(&self, out: &mut impl Write) -> std::io::Result<()> {
        {
            let mut spool = self.spool();
            if let Some(e) = &spool.failed {
                return Err(std::io::Error::new(e.kind(), e.to_string()));
            }
            copy_out(&mut spool.csv, out)?;
        }
        let mut rows = String::new();
        for (t, interval) in &self.open {
            csv::rows(*t, interval, &mut rows);
        }
        out.write_all(rows.as_bytes())
    }

    fn spool(&self) -> std::sync::MutexGuard<'_, Spool> {
        // Only the files' bytes are behind the lock; a panic mid-write loses nothing else.
        self.spool.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The compact row of one second: all steps added up.
fn row_of(t: u64, interval: &Interval) -> IntervalSummary {
    let s = interval.total();
    let latency = LatencySummary::of(&s.latency);
    IntervalSummary {
        t,
        offered: interval.offered,
        planned: None,
        requests: s.counters.requests,
        ok: s.counters.ok,
        throttled: s.counters.throttled,
        errors: s.counters.errors(),
        p50_ms: latency.p50,
        p90_ms: latency.p90,
        p99_ms: latency.p99,
        max_ms: latency.max,
    }
}

#[cfg(test)]
#[path = "timeline_tests.rs"]
mod tests;

//! Report files written at the end of a run: `summary.json`, `latency.hlog`,
//! `report.html`, `results.csv` (per second and step) and `junit.xml` (the
//! thresholds as a test suite). `errors` lists the run's failures by kind for
//! `summary.json`, the terminal and the page.

mod chart;
pub(crate) mod csv;
mod distribution;
pub mod errors;
#[cfg(test)]
pub(crate) mod fixture;
pub(crate) mod hlog;
mod html;
mod junit;
mod plan_text;
pub mod summary;
mod text;
pub mod verdict;

use std::path::Path;

use crate::run::RunOutcome;
pub use summary::Summary;
pub use verdict::Verdict;

/// Write every report file into `dir` (created if needed); returns the summary.
pub fn write_all(outcome: &RunOutcome, dir: &Path) -> std::io::Result<Summary> {
    std::fs::create_dir_all(dir)?;
    let summary = summary::build(outcome);
    let json = serde_json::to_string_pretty(&summary).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("summary.json"), json + "\n")?;
    // Streamed: the intervals' lines come from the run's spool, not from memory.
    let mut log = std::io::BufWriter::new(std::fs::File::create(dir.join("latency.hlog"))?);
    hlog::write(outcome, &mut log)?;
    log.into_inner()
        .map_err(std::io::IntoInnerError::into_error)?;
    std::fs::write(dir.join("report.html"), html::render(&summary))?;
    let mut rows = std::io::BufWriter::new(std::fs::File::create(dir.join("results.csv"))?);
    csv::write(&outcome.aggregate.timeline, &mut rows)?;
    rows.into_inner()
        .map_err(std::io::IntoInnerError::into_error)?;
    std::fs::write(dir.join("junit.xml"), junit::render(&summary))?;
    Ok(summary)
}

/// Escape text for HTML and XML, in content and in quoted attributes.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Why a `summary.json` could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a crescendo summary: {source}")]
    Json {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Read a run's summary back from `path`: a run directory or its `summary.json`.
pub fn load_summary(path: &Path) -> Result<Summary, LoadError> {
    let file = if path.is_dir() {
        path.join("summary.json")
    } else {
        path.to_owned()
    };
    let shown = file.display().to_string();
    let bytes = std::fs::read(&file).map_err(|source| LoadError::Io {
        path: shown.clone(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| LoadError::Json {
        path: shown,
        source,
    })
}

/// Render `report.html` and `junit.xml` in `dir` again from `dir/summary.json` (after
/// an upgrade, or to restyle an old run); returns the summary. `latency.hlog` and
/// `results.csv` need the histograms and are left as they are.
pub fn rerender(dir: &Path) -> Result<Summary, LoadError> {
    let summary = load_summary(dir)?;
    let dir = if dir.is_dir() {
        dir
    } else {
        dir.parent().unwrap_or(Path::new("."))
    };
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| LoadError::Io {
            path: path.display().to_string(),
            source,
        })
    };
    write("report.html", html::render(&summary))?;
    write("junit.xml", junit::render(&summary))?;
    Ok(summary)
}

/// The summary as printed on the terminal.
pub fn text(summary: &Summary) -> String {
    text::render(summary)
}

/// The summary of a run, without writing files.
pub fn summarize(outcome: &RunOutcome) -> Summary {
    summary::build(outcome)
}

/// How long backoff paused the load, when it did: the fleet's wall-clock pause time
/// under the coordinated policy, else the agents' own pauses summed (agent-seconds).
pub(crate) fn paused_line(t: &summary::Totals) -> Option<String> {
    match t.fleet_paused_ms {
        Some(ms) if ms > 0 || t.paused_ms > 0 => Some(format!(
            "paused: the fleet {:.1} s (wall clock; agents' pauses summed {:.1} agent-s)",
            ms as f64 / 1000.0,
            t.paused_ms as f64 / 1000.0
        )),
        None if t.paused_ms > 0 => Some(format!(
            "paused: {:.1} agent-s (each agent's own pauses, summed)",
            t.paused_ms as f64 / 1000.0
        )),
        _ => None,
    }
}

//! Report files written at the end of a run: `summary.json`, `latency.hlog`,
//! `report.html`.

mod hlog;
mod html;
pub mod summary;
mod text;

use std::path::Path;

use crate::run::RunOutcome;
pub use summary::Summary;

/// Write every report file into `dir` (created if needed); returns the summary.
pub fn write_all(outcome: &RunOutcome, dir: &Path) -> std::io::Result<Summary> {
    std::fs::create_dir_all(dir)?;
    let summary = summary::build(outcome);
    let json = serde_json::to_string_pretty(&summary).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("summary.json"), json + "\n")?;
    let mut log = Vec::new();
    hlog::write(outcome, &mut log)?;
    std::fs::write(dir.join("latency.hlog"), log)?;
    std::fs::write(dir.join("report.html"), html::render(&summary))?;
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

//! The spool file of a run's streamed data rows: written from the controller's
//! `DataChunk`s before the agent answers `Ready`, read by the feeder during the run,
//! deleted when the run is over.
//!
//! Each line of the spool is one row, a JSON object of strings, validated as it
//! arrives, so the feeder never meets a malformed row.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::messages::DataChunk;

/// A spool file on disk, deleted when dropped.
#[derive(Debug)]
pub(crate) struct SpoolFile {
    path: PathBuf,
    /// Rows it holds.
    rows: u64,
}

impl SpoolFile {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "data spool not deleted");
        }
    }
}

/// A spool file that cannot be written or read, or a chunk that cannot go into one.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpoolError {
    #[error("cannot create data spool {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write data spool {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open data spool {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("data chunk {chunk} is not UTF-8")]
    NotUtf8 { chunk: u64 },
    #[error("data chunk {chunk} line {line}: not a JSON object")]
    NotObject {
        chunk: u64,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("data chunk {chunk} line {line}: column {column} is not a string")]
    NotString {
        chunk: u64,
        line: usize,
        column: String,
    },
    #[error("data chunk {chunk} announces {announced} rows but holds {held}")]
    RowCount {
        chunk: u64,
        announced: u64,
        held: u64,
    },
}

/// Receives a run's `DataChunk`s into a spool file.
#[derive(Debug)]
pub(crate) struct SpoolWriter {
    file: SpoolFile,
    out: BufWriter<File>,
    chunks: u64,
}

/// `std::env::temp_dir()/crescendo-<run_id>-<agent>.jsonl`, with both names reduced
/// to characters that are safe in a file name.
pub(crate) fn spool_path(run_id: &str, agent_id: &str) -> PathBuf {
    fn clean(s: &str) -> String {
        s.chars()
            .take(64)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
    std::env::temp_dir().join(format!(
        "crescendo-{}-{}.jsonl",
        clean(run_id),
        clean(agent_id)
    ))
}

impl SpoolWriter {
    /// Create (or truncate) the spool file of `run_id` on agent `agent_id`.
    pub(crate) fn create(run_id: &str, agent_id: &str) -> Result<Self, SpoolError> {
        let path = spool_path(run_id, agent_id);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        // Rows may hold credentials (a `token` column): only this user may read them
        // in the shared temporary directory.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let out = match options.open(&path) {
            Ok(out) => out,
            Err(source) => return Err(SpoolError::Create { path, source }),
        };
        Ok(Self {
            file: SpoolFile { path, rows: 0 },
            out: BufWriter::new(out),
            chunks: 0,
        })
    }

    /// Validate one chunk and append its rows.
    pub(crate) fn append(&mut self, chunk: &DataChunk) -> Result<(), SpoolError> {
        self.chunks += 1;
        let n = self.chunks;
        let text =
            std::str::from_utf8(&chunk.rows_jsonl).map_err(|_| SpoolError::NotUtf8 { chunk: n })?;
        let mut rows = 0u64;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let row: serde_json::Map<String, Value> =
                serde_json::from_str(line).map_err(|source| SpoolError::NotObject {
                    chunk: n,
                    line: i + 1,
                    source,
                })?;
            if let Some((column, _)) = row.iter().find(|(_, v)| !v.is_string()) {
                return Err(SpoolError::NotString {
                    chunk: n,
                    line: i + 1,
                    column: column.clone(),
                });
            }
            self.out
                .write_all(line.as_bytes())
                .and_then(|()| self.out.write_all(b"\n"))
                .map_err(|e| self.write_error(e))?;
            rows += 1;
        }
        if rows != chunk.rows {
            return Err(SpoolError::RowCount {
                chunk: n,
                announced: chunk.rows,
                held: rows,
            });
        }
        self.file.rows += rows;
        Ok(())
    }

    /// All chunks arrived: flush and hand over the file.
    pub(crate) fn finish(mut self) -> Result<SpoolFile, SpoolError> {
        self.out.flush().map_err(|e| self.write_error(e))?;
        self.out
            .get_ref()
            .sync_data()
            .map_err(|e| self.write_error(e))?;
        Ok(self.file)
    }

    fn write_error(&self, source: std::io::Error) -> SpoolError {
        SpoolError::Write {
            path: self.file.path.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(text: &str, rows: u64, last: bool) -> DataChunk {
        DataChunk {
            run_id: "r".into(),
            rows_jsonl: text.as_bytes().to_vec(),
            rows,
            last,
        }
    }

    #[test]
    fn rows_are_validated_written_and_the_file_deleted_on_drop() {
        let mut w = SpoolWriter::create("run/1", "agent 1").unwrap();
        let path = w.file.path().to_owned();
        assert!(path.file_name().unwrap().to_str().unwrap() == "crescendo-run_1-agent_1.jsonl");
        w.append(&chunk("{\"a\":\"1\"}\n\n{\"a\":\"2\"}\n", 2, false))
            .unwrap();
        w.append(&chunk("{\"a\":\"3\"}", 1, true)).unwrap();
        let file = w.finish().unwrap();
        assert_eq!(file.rows(), 3);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "rows may hold tokens: {mode:o}");
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"a\":\"1\"}\n{\"a\":\"2\"}\n{\"a\":\"3\"}\n");
        drop(file);
        assert!(!path.exists());
    }

    #[test]
    fn garbage_chunks_are_refused_with_a_clear_message() {
        let mut w = SpoolWriter::create("run-2", "garbage").unwrap();
        let path = w.file.path().to_owned();
        let mut refuse = |c: DataChunk| w.append(&c).unwrap_err().to_string();
        let err = refuse(chunk("not json\n", 1, false));
        assert!(err.contains("chunk 1 line 1: not a JSON object"), "{err}");
        let err = refuse(chunk("{\"a\":1}\n", 1, false));
        assert!(err.contains("column a is not a string"), "{err}");
        let err = refuse(chunk("[\"a\"]\n", 1, false));
        assert!(err.contains("not a JSON object"), "{err}");
        let err = refuse(chunk("{\"a\":\"1\"}\n", 2, false));
        assert!(err.contains("announces 2 rows but holds 1"), "{err}");
        let bad = DataChunk {
            rows_jsonl: vec![0xff, 0xfe],
            ..chunk("", 0, false)
        };
        assert!(refuse(bad).contains("not UTF-8"));
        drop(w);
        assert!(!path.exists());
    }
}

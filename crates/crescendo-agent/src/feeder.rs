//! Data rows for iterations: from memory (inline rows, sequences) or streamed from
//! the run's spool file, cycling or each row once.
//!
//! Many tasks take rows at once. Rows in memory are handed out with an atomic
//! cursor; a spool file is read line by line through one `BufReader` behind a mutex
//! (never loaded whole), which costs far less than the HTTP request the row feeds.
//! Cycling reopens the pass by seeking back to the start.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::spool::{SpoolError, SpoolFile};

/// One row: column name to value.
pub(crate) type Row = BTreeMap<String, String>;

/// How rows are handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Start over after the last row.
    Cycle,
    /// Each row once; then the feeder is exhausted.
    Once,
}

/// What an agent does when its `unique` data rows run out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum OnExhausted {
    /// Start no more iterations; finish the ones in flight and report as at a normal end.
    #[default]
    StopAgent,
    /// Stop the whole run: the agent finishes with "data rows exhausted".
    StopRun,
}

/// What the next iteration gets.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Feed {
    /// The plan has no data (or this agent holds no rows and cycles): run without.
    NoData,
    Row(Arc<Row>),
    /// Every row was used once.
    Exhausted,
    /// The spool could not be read; the run cannot go on.
    Failed(String),
}

/// The run's source of rows.
#[derive(Debug)]
pub(crate) struct Feeder {
    mode: Mode,
    source: Source,
}

#[derive(Debug)]
enum Source {
    None,
    Memory {
        rows: Vec<Arc<Row>>,
        next: AtomicU64,
    },
    Spool {
        reader: Mutex<SpoolReader>,
        /// Kept so the file lives (and is deleted) with the feeder.
        _file: SpoolFile,
    },
}

/// A pass over the spool file.
#[derive(Debug)]
struct SpoolReader {
    reader: BufReader<File>,
    line: String,
    /// Rows read in the current pass (an empty pass ends cycling).
    pass_rows: u64,
}

impl Feeder {
    /// No data: every iteration runs without a row.
    pub(crate) fn none() -> Self {
        Self {
            mode: Mode::Cycle,
            source: Source::None,
        }
    }

    /// Rows held in memory.
    pub(crate) fn memory(rows: Vec<Row>, mode: Mode) -> Self {
        Self {
            mode,
            source: Source::Memory {
                rows: rows.into_iter().map(Arc::new).collect(),
                next: AtomicU64::new(0),
            },
        }
    }

    /// Rows streamed from a spool file, which is deleted when the feeder is dropped.
    pub(crate) fn spool(file: SpoolFile, mode: Mode) -> Result<Self, SpoolError> {
        let opened = File::open(file.path()).map_err(|source| SpoolError::Open {
            path: file.path().to_owned(),
            source,
        })?;
        Ok(Self {
            mode,
            source: Source::Spool {
                reader: Mutex::new(SpoolReader {
                    reader: BufReader::with_capacity(64 * 1024, opened),
                    line: String::new(),
                    pass_rows: 0,
                }),
                _file: file,
            },
        })
    }

    /// The row for the next iteration.
    pub(crate) fn next(&self) -> Feed {
        match &self.source {
            Source::None => Feed::NoData,
            Source::Memory { rows, next } => {
                let len = rows.len() as u64;
                if len == 0 {
                    return match self.mode {
                        Mode::Cycle => Feed::NoData,
                        Mode::Once => Feed::Exhausted,
                    };
                }
                let n = next.fetch_add(1, Ordering::Relaxed);
                match self.mode {
                    Mode::Cycle => Feed::Row(rows[(n % len) as usize].clone()),
                    Mode::Once if n < len => Feed::Row(rows[n as usize].clone()),
                    Mode::Once => Feed::Exhausted,
                }
            }
            Source::Spool { reader, .. } => reader
                .lock()
                .expect("spool lock")
                .next(self.mode)
                .unwrap_or_else(|e| Feed::Failed(format!("cannot read data spool: {e}"))),
        }
    }
}

impl SpoolReader {
    fn next(&mut self, mode: Mode) -> std::io::Result<Feed> {
        loop {
            self.line.clear();
            if self.reader.read_line(&mut self.line)? == 0 {
                if mode == Mode::Once {
                    return Ok(Feed::Exhausted);
                }
                if self.pass_rows == 0 {
                    return Ok(Feed::NoData);
                }
                self.reader.seek(SeekFrom::Start(0))?;
                self.pass_rows = 0;
                continue;
            }
            let line = self.line.trim();
            if line.is_empty() {
                continue;
            }
            // The spool writer validated every line; one that does not parse now was
            // damaged on disk and is skipped.
            match serde_json::from_str::<Row>(line) {
                Ok(row) => {
                    self.pass_rows += 1;
                    return Ok(Feed::Row(Arc::new(row)));
                }
                Err(e) => tracing::warn!(error = %e, "damaged data spool line skipped"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::DataChunk;
    use crate::spool::SpoolWriter;

    fn row(n: u64) -> Row {
        Row::from([("flowId".to_owned(), format!("flow-{n}"))])
    }

    fn take(feed: Feed) -> String {
        match feed {
            Feed::Row(row) => row["flowId"].clone(),
            other => panic!("expected a row, got {other:?}"),
        }
    }

    /// A spool of `rows` rows sent in chunks of 1000, as the controller streams them.
    fn spool(name: &str, rows: u64) -> SpoolFile {
        let mut writer = SpoolWriter::create("feeder-test", name).unwrap();
        let mut n = 0;
        while n < rows {
            let end = (n + 1000).min(rows);
            let text: String = (n..end)
                .map(|i| format!("{{\"flowId\":\"flow-{i}\"}}\n"))
                .collect();
            let chunk = DataChunk {
                run_id: "feeder-test".into(),
                rows_jsonl: text.into_bytes(),
                rows: end - n,
                last: end == rows,
            };
            writer.append(&chunk).unwrap();
            n = end;
        }
        writer.finish().unwrap()
    }

    #[test]
    fn memory_rows_cycle_or_run_out() {
        let cycling = Feeder::memory((0..3).map(row).collect(), Mode::Cycle);
        let got: Vec<String> = (0..7).map(|_| take(cycling.next())).collect();
        assert_eq!(got[..4], ["flow-0", "flow-1", "flow-2", "flow-0"]);
        assert_eq!(got[6], "flow-0");

        let once = Feeder::memory((0..3).map(row).collect(), Mode::Once);
        for n in 0..3 {
            assert_eq!(take(once.next()), format!("flow-{n}"));
        }
        assert_eq!(once.next(), Feed::Exhausted);
        assert_eq!(once.next(), Feed::Exhausted);

        assert_eq!(Feeder::memory(vec![], Mode::Cycle).next(), Feed::NoData);
        assert_eq!(Feeder::memory(vec![], Mode::Once).next(), Feed::Exhausted);
        assert_eq!(Feeder::none().next(), Feed::NoData);
    }

    #[test]
    fn a_spool_is_streamed_in_order_and_cycles() {
        let feeder = Feeder::spool(spool("cycle", 25_000), Mode::Cycle).unwrap();
        for pass in 0..2 {
            for n in 0..25_000 {
                assert_eq!(take(feeder.next()), format!("flow-{n}"), "pass {pass}");
            }
        }
        assert_eq!(take(feeder.next()), "flow-0");
    }

    #[test]
    fn a_unique_spool_gives_every_row_once_across_threads() {
        let file = spool("unique", 20_000);
        let path = file.path().to_owned();
        let feeder = Arc::new(Feeder::spool(file, Mode::Once).unwrap());
        let workers: Vec<_> = (0..8)
            .map(|_| {
                let feeder = feeder.clone();
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    // Bounded: never more takes than rows plus one per worker.
                    for _ in 0..=20_000 {
                        match feeder.next() {
                            Feed::Row(row) => seen.push(row["flowId"].clone()),
                            Feed::Exhausted => break,
                            other => panic!("{other:?}"),
                        }
                    }
                    seen
                })
            })
            .collect();
        let mut all: Vec<String> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        assert_eq!(all.len(), 20_000);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 20_000);
        assert_eq!(feeder.next(), Feed::Exhausted);
        drop(feeder);
        assert!(!path.exists(), "the spool goes with the feeder");
    }

    #[test]
    fn an_empty_spool_has_no_data_or_is_exhausted() {
        let empty = Feeder::spool(spool("empty-cycle", 0), Mode::Cycle).unwrap();
        assert_eq!(empty.next(), Feed::NoData);
        let empty = Feeder::spool(spool("empty-once", 0), Mode::Once).unwrap();
        assert_eq!(empty.next(), Feed::Exhausted);
    }
}

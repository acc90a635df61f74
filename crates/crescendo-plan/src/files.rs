//! Where `body_file` and `[data] file` contents come from, so that [`parse`](crate::parse)
//! stays pure: [`DirFiles`] reads next to the plan (the controller), [`BundleFiles`]
//! serves what the controller shipped (an agent), and [`NoFiles`] refuses every read.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::limits::MAX_BODY_FILE_BYTES;
use crate::model::{DataSource, Plan};

/// The longest first line (a data file's header) read when a plan is loaded.
const MAX_HEADER_BYTES: usize = 1024 * 1024;

/// A source of the files a plan refers to, by the path written in the plan.
pub trait PlanFiles {
    /// The whole file (a `body_file`).
    fn read(&self, path: &str) -> io::Result<Vec<u8>>;
    /// The first line only, with its line break (a data file's header).
    fn header(&self, path: &str) -> io::Result<Vec<u8>>;
}

/// Files on disk, relative paths resolved against the plan's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirFiles {
    base: PathBuf,
}

impl DirFiles {
    /// Resolves relative paths against `base`.
    pub fn new(base: impl Into<PathBuf>) -> DirFiles {
        DirFiles { base: base.into() }
    }

    /// Resolves relative paths against the directory holding `plan_path`.
    pub fn for_plan(plan_path: &Path) -> DirFiles {
        let dir = plan_path.parent().unwrap_or(Path::new(""));
        DirFiles::new(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })
    }

    /// Where `path` (as written in the plan) is on disk.
    pub fn resolve(&self, path: &str) -> PathBuf {
        self.base.join(path)
    }

    /// Opens `path` for streaming, e.g. a data file's rows for [`read_rows`](crate::read_rows).
    pub fn open(&self, path: &str) -> io::Result<BufReader<File>> {
        File::open(self.resolve(path)).map(BufReader::new)
    }
}

impl PlanFiles for DirFiles {
    /// At most [`MAX_BODY_FILE_BYTES`]: a larger file is an error, not read whole.
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        let bytes = crate::text::read_at_most(&self.resolve(path), MAX_BODY_FILE_BYTES)?;
        if bytes.len() > MAX_BODY_FILE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "larger than {MAX_BODY_FILE_BYTES} bytes (16 MiB), a limit of the plan format"
                ),
            ));
        }
        Ok(bytes)
    }

    fn header(&self, path: &str) -> io::Result<Vec<u8>> {
        let mut line = Vec::new();
        // Bounded: a file without line breaks must not be loaded whole.
        let limit = MAX_HEADER_BYTES as u64 + 1;
        self.open(path)?.take(limit).read_until(b'\n', &mut line)?;
        if line.len() > MAX_HEADER_BYTES && line.last() != Some(&b'\n') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the first line is longer than {MAX_HEADER_BYTES} bytes"),
            ));
        }
        Ok(line)
    }
}

/// An agent's view of the files: the contents the controller shipped with the plan
/// ([`Plan::bundle_files`]), keyed by the path as written in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BundleFiles(pub BTreeMap<String, Vec<u8>>);

impl PlanFiles for BundleFiles {
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        self.0.get(path).cloned().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "not in the files shipped with the plan",
            )
        })
    }

    fn header(&self, path: &str) -> io::Result<Vec<u8>> {
        let bytes = self.read(path)?;
        let end = bytes
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| i + 1);
        Ok(bytes[..end].to_vec())
    }
}

/// Refuses every read: what [`parse`](crate::parse) uses, since it has no directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NoFiles;

impl PlanFiles for NoFiles {
    fn read(&self, _path: &str) -> io::Result<Vec<u8>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the plan uses body_file/file: load it from a file (crescendo_plan::load) \
             or parse it with parse_with",
        ))
    }

    fn header(&self, path: &str) -> io::Result<Vec<u8>> {
        self.read(path)
    }
}

impl fmt::Debug for dyn PlanFiles + '_ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlanFiles")
    }
}

impl Plan {
    /// What the controller ships to agents with the plan text, so that
    /// [`parse_with`](crate::parse_with)`(text, origin, &BundleFiles(map))` succeeds there:
    /// every `body_file` whole and, for a data file, only its header line (the rows are
    /// streamed separately).
    pub fn bundle_files(&self, files: &dyn PlanFiles) -> io::Result<BTreeMap<String, Vec<u8>>> {
        let mut out = BTreeMap::new();
        for path in self
            .scenario
            .steps
            .iter()
            .filter_map(|s| s.body_file.as_ref())
        {
            if !out.contains_key(path) {
                out.insert(path.clone(), files.read(path)?);
            }
        }
        if let Some(DataSource::File(file)) = self.data.as_ref().map(|d| &d.source) {
            out.insert(file.path.clone(), files.header(&file.path)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_header_is_the_first_line() {
        let files = BundleFiles(BTreeMap::from([
            ("a.csv".to_owned(), b"id,name\n1,x\n".to_vec()),
            ("b.csv".to_owned(), b"id".to_vec()),
        ]));
        assert_eq!(files.header("a.csv").unwrap(), b"id,name\n");
        assert_eq!(files.header("b.csv").unwrap(), b"id");
        assert_eq!(files.read("c").unwrap_err().kind(), io::ErrorKind::NotFound);
        assert!(
            NoFiles
                .read("x")
                .unwrap_err()
                .to_string()
                .contains("load it from a file")
        );
    }

    #[test]
    fn dir_files_read_headers_and_stream_rows() {
        let dir = std::env::temp_dir().join(format!("crescendo-plan-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("rows.csv"), "flowId\nf1\nf2\n").unwrap();
        let files = DirFiles::new(&dir);
        assert_eq!(files.header("rows.csv").unwrap(), b"flowId\n");
        assert_eq!(files.read("rows.csv").unwrap().len(), 13);
        let file = crate::DataFile {
            path: "rows.csv".into(),
            format: crate::DataFormat::Csv,
            columns: vec!["flowId".into()],
        };
        let rows: Vec<_> = crate::read_rows(&file, files.open("rows.csv").unwrap())
            .map(|r| r.unwrap()["flowId"].clone())
            .collect();
        assert_eq!(rows, ["f1", "f2"]);
        assert!(files.open("missing.csv").is_err());
        std::fs::write(dir.join("long.jsonl"), vec![b'x'; MAX_HEADER_BYTES + 10]).unwrap();
        let e = files.header("long.jsonl").unwrap_err();
        assert!(e.to_string().contains("first line is longer"), "{e}");
        std::fs::write(dir.join("exact.csv"), vec![b'x'; MAX_HEADER_BYTES]).unwrap();
        assert_eq!(files.header("exact.csv").unwrap().len(), MAX_HEADER_BYTES);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dir_files_resolve_next_to_the_plan() {
        let d = DirFiles::for_plan(Path::new("plans/x.toml"));
        assert_eq!(d.resolve("data/f.csv"), Path::new("plans/data/f.csv"));
        assert_eq!(
            DirFiles::for_plan(Path::new("x.toml")).resolve("f"),
            Path::new("./f")
        );
    }
}

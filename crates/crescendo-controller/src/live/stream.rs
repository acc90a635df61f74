//! `--out json=FILE`: the run as JSON Lines in a file, readable while it goes: a
//! `progress` object each second (the same fields as `--progress json`), an `aborted`
//! event when an `abort_on_fail` threshold stops the run, and a `summary` at the end.
//! Each line is written whole and flushed, so `tail -f` and a parser never see half a
//! line.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

/// A JSON Lines file shared by the run loop and the command that started the run.
#[derive(Debug, Clone)]
pub struct JsonStream {
    file: Arc<Mutex<BufWriter<File>>>,
}

impl JsonStream {
    /// Create (or truncate) `path`.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            file: Arc::new(Mutex::new(BufWriter::new(File::create(path)?))),
        })
    }

    /// One line: `value` as an object with `"type": kind` first. A write error is
    /// logged once per line, never fatal to the run.
    pub fn line(&self, kind: &str, value: Value) {
        let mut object = serde_json::Map::new();
        object.insert("type".to_owned(), Value::String(kind.to_owned()));
        match value {
            Value::Object(fields) => object.extend(fields),
            other => {
                object.insert("value".to_owned(), other);
            }
        }
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let written = serde_json::to_writer(&mut *file, &Value::Object(object))
            .map_err(std::io::Error::from)
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.flush());
        if let Err(e) = written {
            tracing::warn!("--out json: {e}");
        }
    }
}

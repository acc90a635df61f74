//! Reading a data file: its columns from the header line when the plan is loaded, and
//! its rows, streamed, when the controller hands them out ([`read_rows`]).

use std::collections::BTreeMap;
use std::io::BufRead;

use crate::model::{DataFile, DataFormat};

/// A data file row that cannot be used. Reading stops at the first one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct RowError {
    /// 1-based line of the file (0 when unknown).
    pub line: u64,
    /// What is wrong, lowercase.
    pub message: String,
}

impl RowError {
    fn new(line: u64, message: impl Into<String>) -> RowError {
        RowError {
            line,
            message: message.into(),
        }
    }
}

/// The columns a data file's first line declares: a CSV header, or the keys (sorted) of
/// the first JSON Lines object. Names are not checked here.
pub(crate) fn header_columns(format: DataFormat, first_line: &[u8]) -> Result<Vec<String>, String> {
    let line = strip_bom(first_line);
    match format {
        DataFormat::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(line);
            match reader.records().next() {
                None => Err("expected a header row of column names, got an empty file".into()),
                Some(Err(e)) => Err(format!("expected a header row of column names: {e}")),
                Some(Ok(record)) => Ok(record.iter().map(|c| c.trim().to_owned()).collect()),
            }
        }
        DataFormat::JsonLines => {
            if line.trim_ascii().is_empty() {
                return Err("expected a JSON object on the first line, got an empty line".into());
            }
            json_row(line, None).map(|row| row.into_keys().collect())
        }
    }
}

/// The rows of `file`, read from `reader` holding the whole file (header included), as
/// column → value maps in file order. Yields at most one error, then stops; never panics.
///
/// CSV: the header must name the plan's columns in any order; every record needs one
/// field per column. JSON Lines: every non-blank line is an object with exactly the
/// plan's columns, whose values are strings, numbers or booleans.
pub fn read_rows<R: BufRead>(
    file: &DataFile,
    reader: R,
) -> impl Iterator<Item = Result<BTreeMap<String, String>, RowError>> + use<R> {
    let columns = file.columns.clone();
    let (mut csv, mut json) = match file.format {
        DataFormat::Csv => (Some(csv_rows(columns, reader)), None),
        DataFormat::JsonLines => (None, Some(json_lines(columns, reader))),
    };
    let inner = std::iter::from_fn(move || match (&mut csv, &mut json) {
        (Some(rows), _) => rows.next(),
        (_, Some(rows)) => rows.next(),
        (None, None) => None,
    });
    let mut failed = false;
    inner.take_while(move |row| {
        let go = !failed;
        failed |= row.is_err();
        go
    })
}

fn csv_rows<R: BufRead>(
    columns: Vec<String>,
    reader: R,
) -> impl Iterator<Item = Result<BTreeMap<String, String>, RowError>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(reader);
    let mut header: Option<Vec<String>> = None;
    let mut record = csv::StringRecord::new();
    std::iter::from_fn(move || {
        loop {
            let line = reader.position().line();
            match reader.read_record(&mut record) {
                Err(e) => {
                    let line = e.position().map_or(line, |p| p.line());
                    return Some(Err(RowError::new(line, csv_message(&e))));
                }
                Ok(false) => return None,
                Ok(true) => {}
            }
            let line = record.position().map_or(line, |p| p.line());
            let Some(names) = &header else {
                let mut names: Vec<String> = record.iter().map(|c| c.trim().to_owned()).collect();
                if let Some(first) = names.first_mut() {
                    *first = first.trim_start_matches('\u{feff}').to_owned();
                }
                let mut sorted = names.clone();
                sorted.sort();
                let mut expected = columns.clone();
                expected.sort();
                if sorted != expected {
                    return Some(Err(RowError::new(
                        line,
                        format!(
                            "expected a header with the columns {}, got {}",
                            columns.join(","),
                            names.join(",")
                        ),
                    )));
                }
                header = Some(names);
                continue;
            };
            let row = names
                .iter()
                .cloned()
                .zip(record.iter().map(str::to_owned))
                .collect();
            return Some(Ok(row));
        }
    })
}

fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("expected {expected_len} fields like the header, got {len}"),
        csv::ErrorKind::Utf8 { .. } => "expected UTF-8 text".to_owned(),
        csv::ErrorKind::Io(e) => format!("cannot read: {e}"),
        _ => e.to_string(),
    }
}

fn json_lines<R: BufRead>(
    columns: Vec<String>,
    mut reader: R,
) -> impl Iterator<Item = Result<BTreeMap<String, String>, RowError>> {
    let mut line_no = 0u64;
    let mut buf = Vec::new();
    std::iter::from_fn(move || {
        loop {
            buf.clear();
            line_no += 1;
            match reader.read_until(b'\n', &mut buf) {
                Err(e) => return Some(Err(RowError::new(line_no, format!("cannot read: {e}")))),
                Ok(0) => return None,
                Ok(_) => {}
            }
            let line = if line_no == 1 {
                strip_bom(&buf)
            } else {
                &buf[..]
            };
            if line.trim_ascii().is_empty() {
                continue;
            }
            return Some(json_row(line, Some(&columns)).map_err(|m| RowError::new(line_no, m)));
        }
    })
}

/// One JSON Lines object as column → text; with `columns`, exactly those keys.
fn json_row(line: &[u8], columns: Option<&[String]>) -> Result<BTreeMap<String, String>, String> {
    let value: serde_json::Value = serde_json::from_slice(line)
        .map_err(|e| format!("expected a JSON object on one line: {e}"))?;
    let serde_json::Value::Object(object) = value else {
        return Err(format!(
            "expected a JSON object such as {{\"flowId\": \"a\"}}, got {}",
            kind(&value)
        ));
    };
    let mut row = BTreeMap::new();
    for (key, value) in object {
        let text = match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            other => {
                return Err(format!(
                    "expected a string, number or boolean for {key:?}, got {}",
                    kind(&other)
                ));
            }
        };
        row.insert(key, text);
    }
    if let Some(columns) = columns
        && !row.keys().eq(columns.iter())
    {
        let got: Vec<&str> = row.keys().map(String::as_str).collect();
        return Err(format!(
            "expected the keys {} (like the first line), got {}",
            columns.join(", "),
            got.join(", ")
        ));
    }
    Ok(row)
}

fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn file(format: DataFormat, columns: &[&str]) -> DataFile {
        DataFile {
            path: "f".into(),
            format,
            columns: columns.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn rows(f: &DataFile, text: &[u8]) -> Vec<Result<BTreeMap<String, String>, RowError>> {
        read_rows(f, text).collect()
    }

    #[test]
    fn csv_rows_follow_the_header() {
        let f = file(DataFormat::Csv, &["flowId", "name"]);
        let got = rows(&f, b"name,flowId\r\nx,flow-1\n\"a, b\",flow-2\n");
        let got: Vec<_> = got.into_iter().map(Result::unwrap).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0]["flowId"].as_str(), got[0]["name"].as_str()),
            ("flow-1", "x")
        );
        assert_eq!(got[1]["name"], "a, b");
        assert_eq!(
            header_columns(DataFormat::Csv, b"\xEF\xBB\xBFa, b\r\n").unwrap(),
            ["a", "b"]
        );
    }

    #[test]
    fn csv_errors_name_the_line() {
        let f = file(DataFormat::Csv, &["id"]);
        let got = rows(&f, b"id\n1\n2,3\n4\n");
        assert_eq!(got.len(), 2, "{got:?}");
        let e = got[1].clone().unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("expected 1 fields"), "{e}");
        let e = rows(&f, b"other\n1\n")[0].clone().unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("columns id"), "{e}");
        let e = rows(&f, b"id\n\xff\n")[0].clone().unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (2, "expected UTF-8 text"));
        assert!(rows(&f, b"").is_empty());
        assert!(header_columns(DataFormat::Csv, b"").is_err());
    }

    #[test]
    fn json_lines_rows() {
        let f = file(DataFormat::JsonLines, &["flowId", "n", "ok"]);
        let text = b"{\"flowId\": \"a\", \"n\": 1, \"ok\": true}\n\n{\"flowId\": \"b\", \"n\": 2.5, \"ok\": false}";
        let got: Vec<_> = rows(&f, text).into_iter().map(Result::unwrap).collect();
        assert_eq!(got[1]["flowId"], "b");
        assert_eq!((got[0]["n"].as_str(), got[1]["n"].as_str()), ("1", "2.5"));
        assert_eq!(got[0]["ok"], "true");
        let first = &text[..text.iter().position(|&b| b == b'\n').unwrap()];
        assert_eq!(
            header_columns(DataFormat::JsonLines, first).unwrap(),
            ["flowId", "n", "ok"]
        );
        for (bad, line, message) in [
            (
                &b"{\"flowId\":\"a\",\"n\":1,\"ok\":true}\n[1]\n"[..],
                2,
                "got an array",
            ),
            (b"{\"flowId\":\"a\",\"n\":1}\n", 1, "expected the keys"),
            (b"{\"flowId\":null,\"n\":1,\"ok\":true}\n", 1, "got null"),
            (b"\n\n{oops\n", 3, "expected a JSON object on one line"),
        ] {
            let got = rows(&f, bad);
            let e = got.last().unwrap().clone().unwrap_err();
            assert_eq!(e.line, line, "{e}");
            assert!(e.message.contains(message), "{e}");
        }
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            for format in [DataFormat::Csv, DataFormat::JsonLines] {
                let f = file(format, &["a", "b"]);
                let got = rows(&f, &bytes);
                // At most one error, and it is the last item.
                let errors = got.iter().filter(|r| r.is_err()).count();
                prop_assert!(errors <= 1);
                if errors == 1 {
                    prop_assert!(got.last().unwrap().is_err());
                }
                let _ = header_columns(format, &bytes);
            }
        }
    }
}

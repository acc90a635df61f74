//! Input that is not a plan's text: bytes that are not UTF-8 (located by byte offset,
//! UTF-16 named by its byte order mark) and names with control characters.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{assert_err, plan};
use crescendo_plan::{BundleFiles, PlanError, parse_with};

fn load_bytes(bytes: &[u8]) -> (PlanError, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, bytes).unwrap();
    let e = crescendo_plan::load(&path).unwrap_err();
    assert_eq!(e.origin, path.display().to_string());
    (e, path, dir)
}

#[test]
fn utf16_is_named_by_its_byte_order_mark() {
    let utf16 = |big: bool| -> Vec<u8> {
        let mut bytes = if big {
            vec![0xFE, 0xFF]
        } else {
            vec![0xFF, 0xFE]
        };
        for unit in plan(&[], "").encode_utf16() {
            bytes.extend(if big {
                unit.to_be_bytes()
            } else {
                unit.to_le_bytes()
            });
        }
        bytes
    };
    let (e, ..) = load_bytes(&utf16(false));
    assert_eq!((e.line, e.column), (1, 1), "{e}");
    assert!(
        e.message
            .contains("expected UTF-8 text, got UTF-16 (little-endian byte order mark FF FE)"),
        "{e}"
    );
    assert!(e.message.contains("save the file as UTF-8"), "{e}");
    let (e, ..) = load_bytes(&utf16(true));
    assert!(
        e.message.contains("big-endian byte order mark FE FF"),
        "{e}"
    );
}

#[test]
fn binary_and_other_encodings_name_the_byte_offset() {
    let mut bytes = b"name = \"t\"\n\x7fELF\x02\x01\x01\x00".to_vec();
    bytes.extend([0xFF, 0x00, 0x3E]);
    let (e, path, _dir) = load_bytes(&bytes);
    assert_eq!((e.line, e.column), (2, 9), "{e}");
    assert_eq!(e.key, "");
    assert!(
        e.message
            .contains("got byte 0xFF at byte offset 19, which is not UTF-8"),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with(&format!("{}:2:9: expected UTF-8", path.display()))
    );
    // Latin-1: é is the single byte 0xE9.
    let (e, ..) = load_bytes(b"name = \"caf\xe9\"\n");
    assert_eq!((e.line, e.column), (1, 12), "{e}");
    assert!(e.message.contains("byte 0xE9 at byte offset 11"), "{e}");
    // A UTF-8 byte order mark is fine.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bom.toml");
    std::fs::write(&path, format!("\u{FEFF}{}", plan(&[], ""))).unwrap();
    crescendo_plan::load(&path).unwrap();
}

#[test]
fn body_files_name_the_byte_offset() {
    let files = BundleFiles(BTreeMap::from([(
        "b.json".to_owned(),
        b"{\"a\": \"\xC0\"}".to_vec(),
    )]));
    let text = plan(
        &[("path = \"/x\"\n", "path = \"/x\"\nbody_file = \"b.json\"\n")],
        "",
    );
    let e = parse_with(&text, "t.toml", &files).unwrap_err();
    assert_eq!((e.line, e.column), common::at(&text, "\"b.json\""), "{e}");
    assert_eq!(e.key, "scenario.steps[0].body_file");
    assert!(
        e.message
            .contains("\"b.json\": expected UTF-8 text, got byte 0xC0 at byte offset 7"),
        "{e}"
    );
}

#[test]
fn names_refuse_control_characters() {
    let text = plan(&[("name = \"t\"", "name = \"a\\u0000b\"")], "");
    assert_err(
        &text,
        "\"a\\u0000b\"",
        "name",
        "expected a plan name without control characters, got \"a\\0b\"",
    );
    // A literal tab is located exactly.
    let text = plan(&[("name = \"t\"", "name = \"a\tb\"")], "");
    assert_err(&text, "\tb", "name", "without control characters");
    let text = plan(&[("name = \"a\"", "name = \"s\\u202Ex\"")], "");
    assert_err(
        &text,
        "\"s\\u202Ex\"",
        "scenario.steps[0].name",
        "expected a step name without control characters",
    );
    let text = plan(&[("name = \"a\"", "name = \"s\\u001b[31m\"")], "");
    assert_err(
        &text,
        "\"s\\u001b",
        "scenario.steps[0].name",
        "without control characters",
    );
    let step = |extra: &str| {
        plan(
            &[("path = \"/x\"\n", &format!("path = \"/x\"\n{extra}\n"))],
            "",
        )
    };
    let text = step("captures = { \"v\\u0000\" = \"/x\" }");
    assert_err(
        &text,
        "\"v\\u0000\"",
        "scenario.steps[0].captures.\"v\\0\"",
        "expected a variable name of letters, digits and _",
    );
    let text = step("headers = { \"X-A\\u0000\" = \"v\" }");
    assert_err(
        &text,
        "\"X-A\\u0000\"",
        "scenario.steps[0].headers.\"X-A\\0\"",
        "expected a header name of letters",
    );
    let text = plan(
        &[],
        "[data]\nsequence = { var = \"a\\u0007\", format = \"f-{n}\", count = 1 }\n",
    );
    assert_err(
        &text,
        "\"a\\u0007\"",
        "data.sequence.var",
        "expected a column name of letters",
    );
    let text = plan(&[], "[data]\nrows = [{ \"c\\u0085\" = 1 }]\n");
    assert_err(
        &text,
        "\"c\\u0085\"",
        "data.rows[0].\"c\\u{85}\"",
        "expected a column name of letters",
    );
}

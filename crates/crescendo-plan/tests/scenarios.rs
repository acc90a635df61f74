//! Real scenarios: captures and checks, body and data files, bundles for agents, and
//! the shipped plans.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{assert_err, at, plan};
use crescendo_plan::{
    Auth, BundleFiles, ClientSharing, DataFormat, DataSource, DirFiles, OnExhausted, Partition,
    PlanError, Secret, parse, parse_with,
};

fn plans_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../plans")
}

fn bundle(files: &[(&str, &str)]) -> BundleFiles {
    BundleFiles(
        files
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect(),
    )
}

/// Parses with `files`, expecting an error at the first `needle`.
#[track_caller]
fn assert_file_err(text: &str, files: &BundleFiles, needle: &str, key: &str, message: &str) {
    let e: PlanError = parse_with(text, "t.toml", files).expect_err(text);
    assert_eq!((e.line, e.column), at(text, needle), "{e}");
    assert_eq!(e.key, key, "{e}");
    assert!(e.message.contains(message), "{e:?} lacks {message:?}");
}

const TWO_STEPS: &str = "[[scenario.steps]]\nname = \"b\"\npath = \"/y/{version}\"\n";

#[test]
fn captures_are_scoped_to_later_steps() {
    let text = plan(
        &[(
            "path = \"/x\"\n",
            "path = \"/x\"\ncaptures = { version = \"/version\", lock = \"/lockedClient/id\" }\n",
        )],
        TWO_STEPS,
    );
    let p = parse(&text, "t").unwrap();
    let caps: Vec<(&str, &str)> = p.scenario.steps[0]
        .captures
        .iter()
        .map(|c| (c.var.as_str(), c.pointer.as_str()))
        .collect();
    assert_eq!(
        caps,
        [("version", "/version"), ("lock", "/lockedClient/id")]
    );

    // Used by the capturing step itself: not yet known.
    let text = plan(
        &[(
            "path = \"/x\"\n",
            "path = \"/x/{version}\"\ncaptures = { version = \"/version\" }\n",
        )],
        "",
    );
    assert_err(
        &text,
        "{version}",
        "scenario.steps[0].path",
        "captured by step \"a\"",
    );
    // Used before the step that captures it.
    let text = plan(
        &[],
        "[[scenario.steps]]\nname = \"b\"\npath = \"/y\"\ncaptures = { version = \"/v\" }\n",
    );
    let text = text.replacen("path = \"/x\"", "path = \"/x/{version}\"", 1);
    let e = common::err(&text);
    assert_eq!(e.key, "scenario.steps[0].path");
    assert!(
        e.message.contains("unknown template variable {version}"),
        "{e}"
    );
    assert!(e.message.contains("seq, uuid"), "{e}");
    // Undefined anywhere.
    let text = plan(&[], TWO_STEPS);
    assert_err(
        &text,
        "{version}",
        "scenario.steps[1].path",
        "unknown template variable {version}",
    );
}

#[test]
fn capture_and_check_errors() {
    let with = |extra: &str| {
        plan(
            &[("path = \"/x\"\n", &format!("path = \"/x\"\n{extra}\n"))],
            "",
        )
    };
    let text = with("captures = { v = \"version\" }");
    assert_err(
        &text,
        "\"version\"",
        "scenario.steps[0].captures.v",
        "expected a JSON Pointer",
    );
    let text = with("captures = { v = \"/a~2\" }");
    assert_err(
        &text,
        "\"/a~2\"",
        "scenario.steps[0].captures.v",
        "~0 for ~",
    );
    let text = with("captures = { seq = \"/x\" }");
    assert_err(
        &text,
        "seq =",
        "scenario.steps[0].captures.seq",
        "other than the built-in",
    );
    let text = with("captures = { \"1x\" = \"/x\" }");
    assert_err(
        &text,
        "\"1x\"",
        "scenario.steps[0].captures.1x",
        "expected a variable name",
    );
    let text = plan(
        &[(
            "path = \"/x\"\n",
            "path = \"/x\"\ncaptures = { flowId = \"/id\" }\n",
        )],
        "[data]\nrows = [{ flowId = \"a\" }]\n",
    );
    assert_err(
        &text,
        "flowId =",
        "scenario.steps[0].captures.flowId",
        "other than the data columns (flowId)",
    );
    let text = with("checks = [{ pointer = \"id\", equals = 1 }]");
    assert_err(
        &text,
        "\"id\"",
        "scenario.steps[0].checks[0].pointer",
        "expected a JSON Pointer",
    );
    let text = with("checks = [{ pointer = \"/id\", equals = [1] }]");
    assert_err(
        &text,
        "[1]",
        "scenario.steps[0].checks[0].equals",
        "expected a string, a finite number or a boolean",
    );
    let text = with("checks = [{ pointer = \"/id\", equals = \"{nope}\" }]");
    assert_err(
        &text,
        "{nope}",
        "scenario.steps[0].checks[0].equals",
        "unknown template variable {nope}",
    );
    let text = with("checks = [{ pointer = \"/id\" }]");
    let e = common::err(&text);
    assert_eq!(
        (e.key.as_str(), e.message.as_str()),
        ("scenario.steps[0].checks[0].equals", "missing required key")
    );

    let text = with(
        "checks = [{ pointer = \"/id\", equals = \"{seq}\" }, { pointer = \"\", equals = 2 }, { pointer = \"/a/0\", equals = true }, { pointer = \"/f\", equals = 1.5 }]",
    );
    let checks = &parse(&text, "t").unwrap().scenario.steps[0].checks;
    let values: Vec<serde_json::Value> = checks.iter().map(|c| c.equals.clone()).collect();
    assert_eq!(
        values,
        [
            serde_json::json!("{seq}"),
            2.into(),
            true.into(),
            1.5.into()
        ]
    );
    assert_eq!(checks[1].pointer, "");
}

#[test]
fn body_files() {
    let text = plan(
        &[(
            "path = \"/x\"\n",
            "path = \"/x\"\nbody_file = \"bodies/b.json\"\n",
        )],
        "",
    );
    let files = bundle(&[("bodies/b.json", "{\"n\": \"{seq}\"}")]);
    let p = parse_with(&text, "t", &files).unwrap();
    assert_eq!(
        p.scenario.steps[0].body.as_deref(),
        Some("{\"n\": \"{seq}\"}")
    );
    assert_eq!(
        p.scenario.steps[0].body_file.as_deref(),
        Some("bodies/b.json")
    );

    // parse() is pure: it says how to load the file.
    assert_err(
        &text,
        "\"bodies/b.json\"",
        "scenario.steps[0].body_file",
        "load it from a file",
    );
    assert_file_err(
        &text,
        &bundle(&[]),
        "\"bodies/b.json\"",
        "scenario.steps[0].body_file",
        "cannot read \"bodies/b.json\"",
    );
    let bad = bundle(&[("bodies/b.json", "{\"n\": \"{nope}\"}")]);
    assert_file_err(
        &text,
        &bad,
        "\"bodies/b.json\"",
        "scenario.steps[0].body_file",
        "unknown template variable {nope}",
    );
    let bad = BundleFiles(BTreeMap::from([("bodies/b.json".to_owned(), vec![0xff])]));
    assert_file_err(
        &text,
        &bad,
        "\"bodies/b.json\"",
        "scenario.steps[0].body_file",
        "expected UTF-8",
    );
    let text = plan(
        &[(
            "path = \"/x\"\n",
            "path = \"/x\"\nbody = \"x\"\nbody_file = \"b\"\n",
        )],
        "",
    );
    assert_err(&text, "\"b\"", "scenario.steps[0].body_file", "got both");

    // A real directory: the OS error is kept as the source.
    let e = parse_with(
        &text.replace("body = \"x\"\n", ""),
        "t",
        &DirFiles::new("/nonexistent-crescendo"),
    )
    .unwrap_err();
    assert!(std::error::Error::source(&e).is_some(), "{e}");
}

#[test]
fn data_files() {
    let data = |keys: &str| {
        plan(
            &[("path = \"/x\"\n", "path = \"/x/{flowId}\"\n")],
            &format!("[data]\n{keys}\n"),
        )
    };
    let text = data("file = \"flows.csv\"\npartition = \"unique\"\non_exhausted = \"stop-run\"");
    let files = bundle(&[("flows.csv", "flowId,name\nflow-1,a\n")]);
    let p = parse_with(&text, "t", &files).unwrap();
    let d = p.data.as_ref().unwrap();
    assert_eq!(
        (d.partition, d.on_exhausted),
        (Partition::Unique, OnExhausted::StopRun)
    );
    let DataSource::File(f) = &d.source else {
        panic!("{d:?}")
    };
    assert_eq!((f.path.as_str(), f.format), ("flows.csv", DataFormat::Csv));
    assert_eq!(f.columns, ["flowId", "name"]);
    assert_eq!(d.row_count(), None);
    assert!(crescendo_plan::split(&p, 5).is_ok());

    let text = data("file = \"f.data\"\nformat = \"jsonl\"");
    let files = bundle(&[("f.data", "{\"flowId\": \"a\", \"n\": 1}\n")]);
    let d = parse_with(&text, "t", &files).unwrap().data.unwrap();
    assert!(
        matches!(&d.source, DataSource::File(f) if f.format == DataFormat::JsonLines && f.columns == ["flowId", "n"])
    );
    assert_eq!(d.on_exhausted, OnExhausted::StopAgent);

    let text = data("file = \"f.txt\"");
    assert_file_err(
        &text,
        &bundle(&[("f.txt", "a\n")]),
        "\"f.txt\"",
        "data.file",
        "expected a .csv, .jsonl or .ndjson file",
    );
    let text = data("file = \"f.csv\"\nformat = \"xml\"");
    assert_file_err(
        &text,
        &bundle(&[("f.csv", "a\n")]),
        "\"xml\"",
        "data.format",
        "expected \"csv\" or \"jsonl\"",
    );
    let text = data("file = \"f.csv\"");
    assert_file_err(
        &text,
        &bundle(&[("f.csv", "")]),
        "\"f.csv\"",
        "data.file",
        "empty file",
    );
    assert_file_err(
        &text,
        &bundle(&[("f.csv", "flowId,seq\n")]),
        "\"f.csv\"",
        "data.file",
        "other than the built-in variables",
    );
    assert_file_err(
        &text,
        &bundle(&[("f.csv", "flowId,flowId\n")]),
        "\"f.csv\"",
        "data.file",
        "unique column names",
    );
    assert_file_err(
        &text,
        &bundle(&[("f.csv", "id\n")]),
        "{flowId}",
        "scenario.steps[0].path",
        "unknown template variable {flowId}",
    );
    assert_file_err(
        &text,
        &bundle(&[]),
        "\"f.csv\"",
        "data.file",
        "cannot read \"f.csv\"",
    );
    let text = data("file = \"f.jsonl\"");
    assert_file_err(
        &text,
        &bundle(&[("f.jsonl", "[1]\n")]),
        "\"f.jsonl\"",
        "data.file",
        "expected a JSON object",
    );
    let text = data("file = \"f.csv\"\nrows = [{ flowId = \"a\" }]");
    assert_file_err(
        &text,
        &bundle(&[("f.csv", "flowId\n")]),
        "[data]",
        "data",
        "got more than one",
    );
    let text =
        data("sequence = { var = \"flowId\", format = \"{n}\", count = 2 }\nformat = \"csv\"");
    assert_err(&text, "\"csv\"", "data.format", "applies only to `file`");
    let text = data(
        "sequence = { var = \"flowId\", format = \"{n}\", count = 2 }\non_exhausted = \"halt\"",
    );
    assert_err(
        &text,
        "\"halt\"",
        "data.on_exhausted",
        "expected \"stop-agent\" or \"stop-run\"",
    );
}

#[test]
fn the_shipped_plans_load_and_bundle_round_trips() {
    for name in ["flow-update.toml", "architect-flow-update.toml"] {
        let path = plans_dir().join(name);
        let plan = crescendo_plan::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(&path).unwrap();
        let shipped = plan.bundle_files(&DirFiles::for_plan(&path)).unwrap();
        let on_agent = parse_with(&text, name, &BundleFiles(shipped)).unwrap();
        assert_eq!(on_agent, plan, "{name}");
    }
    let path = plans_dir().join("architect-flow-update.toml");
    let plan = crescendo_plan::load(&path).unwrap();
    let steps: Vec<&str> = plan
        .scenario
        .steps
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(steps, ["checkout", "get", "update", "checkin"]);
    assert!(
        plan.scenario.steps[2]
            .body
            .as_deref()
            .unwrap()
            .contains("{version}")
    );
    let Auth::OAuth2ClientCredentials(oauth) = &plan.auth else {
        panic!("{:?}", plan.auth)
    };
    assert_eq!(oauth.sharing, ClientSharing::Shared);
    assert_eq!(
        oauth.clients[0].client_secret,
        Secret::Env("CRESCENDO_CLIENT_SECRET".into())
    );
    assert!(
        plan.thresholds
            .iter()
            .any(|t| t.step.as_deref() == Some("update"))
    );
    assert!(plan.thresholds.iter().any(|t| t.abort.is_some()));
    let shares = crescendo_plan::split(&plan, 4).unwrap();
    assert_eq!(shares.iter().map(|s| s.vus).sum::<u32>(), 50);
}

#[test]
fn bundles_carry_bodies_whole_and_data_headers_only() {
    let text = plan(
        &[(
            "path = \"/x\"\n",
            "path = \"/x/{flowId}\"\nbody_file = \"b.json\"\n",
        )],
        "[data]\nfile = \"rows.csv\"\n",
    );
    let disk = bundle(&[("b.json", "{\"a\": 1}"), ("rows.csv", "flowId\nf1\nf2\n")]);
    let plan = parse_with(&text, "t", &disk).unwrap();
    let shipped = plan.bundle_files(&disk).unwrap();
    assert_eq!(shipped["b.json"], b"{\"a\": 1}");
    assert_eq!(shipped["rows.csv"], b"flowId\n");
    assert_eq!(parse_with(&text, "t", &BundleFiles(shipped)).unwrap(), plan);
}

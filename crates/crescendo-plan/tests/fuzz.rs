//! Fuzzing the plan parser on stable Rust: the seed corpus in `tests/corpus/plan/` is
//! replayed (`ok-*` must load, `err-*` must fail), then proptest feeds mutations of the
//! seeds and arbitrary text. Every outcome must be a plan or a well-formed error (origin,
//! a location inside the text, a one-line message), never a panic. Inputs stay small, so
//! time and memory per case are bounded; `FUZZ_CASES` sets the case count (default 256;
//! scripts/test.sh sets it).

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use crescendo_plan::{PlanError, parse};
use proptest::prelude::*;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/plan")
}

/// The corpus files, sorted by name.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// The corpus, read once for every proptest case.
static SEEDS: LazyLock<Vec<(String, Vec<u8>)>> = LazyLock::new(corpus);

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// What every error must look like, whatever the input.
fn assert_well_formed(e: &PlanError, text: &str, origin: &str) {
    assert_eq!(e.origin, origin, "{e}");
    assert!(!e.message.is_empty() && !e.message.contains('\n'), "{e:?}");
    let lines = text.split('\n').count();
    if e.line > 0 {
        assert!(
            e.line <= lines && e.column >= 1,
            "{e} outside {lines} lines"
        );
    } else {
        assert_eq!(e.column, 0, "{e}");
    }
    assert!(e.to_string().starts_with(origin), "{e}");
}

#[test]
fn the_corpus_replays() {
    let corpus = corpus();
    assert!(corpus.iter().any(|(n, _)| n.starts_with("ok-")));
    assert!(corpus.iter().filter(|(n, _)| n.starts_with("err-")).count() >= 10);
    for (name, _) in &corpus {
        let path = corpus_dir().join(name);
        let outcome = crescendo_plan::load(&path);
        match (name.starts_with("ok-"), outcome) {
            (true, Ok(_)) => {}
            (false, Err(e)) => {
                let bytes = std::fs::read(&path).unwrap();
                let text = String::from_utf8_lossy(&bytes);
                assert_well_formed(&e, &text, &path.display().to_string());
            }
            (true, Err(e)) => panic!("{name} should load: {e}"),
            (false, Ok(_)) => panic!("{name} should fail"),
        }
    }
}

/// Fragments that tend to reach deep into the parser and the checks.
const TOKENS: &[&str] = &[
    "[[scenario.steps]]\nname = \"s\"\npath = \"/\"\n",
    "[",
    "]",
    "{",
    "}",
    "\"",
    "'",
    "'''",
    "\"\"\"",
    "=",
    ",",
    ".",
    "\n",
    "#",
    "\\u0000",
    "\\",
    "{seq}",
    "{{",
    "}}",
    "{x}",
    "1e999",
    "-1",
    "nan",
    "0",
    "\u{202E}",
    "\u{0}",
    "é",
    "😀",
    "headers = { Authorization = \"Bearer x\" }\n",
    "[data]\nrows = [{ a = 1 }]\n",
    "[thresholds]\n\"steps.s.latency.p99\" = \"< 1ms\"\n",
    "captures = { v = \"/a\" }\n",
    "body_file = \"x\"\n",
    "[auth]\nkind = \"bearer\"\n",
    "duration = \"0s\"",
];

#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, usize),
    Delete(usize, usize),
    Byte(usize, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, t)| Edit::Insert(at, t)),
        (any::<usize>(), 1usize..16).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Edit::Byte(at, b)),
    ]
}

fn mutate(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = bytes.len().max(1);
        match *e {
            Edit::Insert(at, t) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, TOKENS[t].bytes());
            }
            Edit::Delete(at, n) => {
                let at = at % len;
                let end = (at + n).min(bytes.len());
                if at < end {
                    bytes.drain(at..end);
                }
            }
            Edit::Byte(_, b) if bytes.is_empty() => bytes.push(b),
            Edit::Byte(at, b) => bytes[at % len] = b,
        }
    }
    bytes
}

fn check(text: &str) {
    if let Err(e) = parse(text, "fuzz.toml") {
        assert_well_formed(&e, text, "fuzz.toml");
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_seeds_never_panic(seed in any::<prop::sample::Index>(), edits in prop::collection::vec(edit(), 1..12)) {
        let (_, bytes) = &SEEDS[seed.index(SEEDS.len())];
        let mutated = mutate(bytes.clone(), &edits);
        check(&String::from_utf8_lossy(&mutated));
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}|[\\[\\]{}=,.\"'\\n a-z0-9]{0,300}") {
        check(&text);
    }

    #[test]
    fn spliced_tokens_never_panic(parts in prop::collection::vec(0..TOKENS.len(), 0..40)) {
        let text: String = parts.iter().map(|&i| TOKENS[i]).collect();
        check(&format!("name = \"t\"\n{text}"));
    }
}

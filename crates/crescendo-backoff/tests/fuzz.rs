//! Fuzzing the rate-limit header parsers on stable Rust (the nightly cargo-fuzz target
//! is `fuzz/fuzz_targets/parse_response.rs`). The seeds in `tests/corpus/signals/` are
//! replayed with their `expect` lines, then proptest feeds the fuzz target's byte layout
//! and mutations of the seeds. Whatever the headers, `parse_response` and `classify`
//! must not panic, delays stay within `MAX_DELAY` and numbers are finite and >= 0.
//! `FUZZ_CASES` sets the case count (default 256; scripts/test.sh sets it).
//!
//! A seed is `status N`, `now SECS` (wall clock, seconds since the epoch), then
//! `name: value` lines (`\xNN` is a byte) and `expect FIELD VALUE` lines.

use std::path::Path;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crescendo_backoff::signals::MAX_DELAY;
use crescendo_backoff::{RateLimitInfo, Signal, classify, parse_response};
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

/// The header names the parsers read (as in the cargo-fuzz target).
const NAMES: &[&str] = &[
    "retry-after",
    "date",
    "inin-ratelimit-allowed",
    "inin-ratelimit-count",
    "inin-ratelimit-reset",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-reset-after",
    "ratelimit",
    "ratelimit-policy",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
];

#[derive(Debug, Clone)]
struct Seed {
    name: String,
    status: u16,
    now: u64,
    headers: Vec<(String, Vec<u8>)>,
    expect: Vec<(String, String)>,
}

fn unescape(value: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = value.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        let hex = tail
            .strip_prefix(b"x")
            .and_then(|t| t.get(..2))
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (b, hex) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                rest = &tail[3..];
            }
            _ => {
                out.push(b);
                rest = tail;
            }
        }
    }
    out
}

fn read_seeds() -> Vec<Seed> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/signals");
    let mut seeds: Vec<Seed> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let mut seed = Seed {
                name: path.file_name().unwrap().to_string_lossy().into_owned(),
                status: 200,
                now: 0,
                headers: Vec::new(),
                expect: Vec::new(),
            };
            for line in text
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
            {
                if let Some(v) = line.strip_prefix("status ") {
                    seed.status = v.parse().unwrap();
                } else if let Some(v) = line.strip_prefix("now ") {
                    seed.now = v.parse().unwrap();
                } else if let Some(v) = line.strip_prefix("expect ") {
                    let (field, value) = v.split_once(' ').unwrap();
                    seed.expect.push((field.to_owned(), value.to_owned()));
                } else {
                    let (name, value) = line.split_once(':').unwrap();
                    seed.headers
                        .push((name.to_owned(), unescape(value.trim_start())));
                }
            }
            seed
        })
        .collect();
    seeds.sort_by(|a, b| a.name.cmp(&b.name));
    seeds
}

static SEEDS: LazyLock<Vec<Seed>> = LazyLock::new(read_seeds);

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .unwrap_or(UNIX_EPOCH)
}

/// Parses and classifies; asserts what must hold for any input.
fn check(status: u16, headers: &[(String, Vec<u8>)], now: u64) -> (RateLimitInfo, Signal) {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        // Header values a client library would hand over (no CR, LF or NUL).
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            map.append(name, value);
        }
    }
    let info = parse_response(status, &map, at(now));
    for d in [info.retry_after, info.reset].into_iter().flatten() {
        assert!(d <= MAX_DELAY, "{d:?} from {headers:?}");
    }
    for v in [info.limit, info.remaining].into_iter().flatten() {
        assert!(v.is_finite() && v >= 0.0, "{v} from {headers:?}");
    }
    (info, classify(status, &info))
}

#[test]
fn the_corpus_replays() {
    assert!(SEEDS.len() >= 8);
    for seed in SEEDS.iter() {
        let (info, signal) = check(seed.status, &seed.headers, seed.now);
        let secs =
            |d: Option<Duration>| d.map_or("none".to_owned(), |d| d.as_secs_f64().to_string());
        let num = |v: Option<f64>| v.map_or("none".to_owned(), |v| v.to_string());
        for (field, want) in &seed.expect {
            let got = match field.as_str() {
                "retry_after" => secs(info.retry_after),
                "reset" => secs(info.reset),
                "limit" => num(info.limit),
                "remaining" => num(info.remaining),
                "family" => info.family.map_or("none".to_owned(), |f| format!("{f:?}")),
                "signal" => format!("{signal:?}"),
                other => panic!("{}: unknown expect field {other}", seed.name),
            };
            assert_eq!(&got, want, "{}: {field}", seed.name);
        }
    }
}

/// Fragments that reach the number, date and structured-field parsers' edges.
const TOKENS: &[&[u8]] = &[
    b",",
    b";",
    b"=",
    b"\"",
    b".",
    b"-",
    b"e",
    b"1e999",
    b"0",
    b"99999999999999999999",
    b"r=",
    b"t=",
    b"q=",
    b"w=",
    b" GMT",
    b"Fri, 31 Dec 9999 23:59:59 GMT",
    b"\xff",
    b"\x80",
    b"\t",
    b" ",
    b"NaN",
    b"inf",
];

fn mutated_value() -> impl Strategy<Value = (usize, Vec<(usize, usize)>)> {
    (
        any::<usize>(),
        prop::collection::vec((any::<usize>(), 0..TOKENS.len()), 0..8),
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// The cargo-fuzz target's layout: status, wall clock, then `\n`-separated records
    /// whose first byte picks a header name.
    #[test]
    fn fuzz_target_layout_never_panics(data in prop::collection::vec(any::<u8>(), 10..400)) {
        let status = u16::from_le_bytes([data[0], data[1]]);
        let now = u64::from_le_bytes(data[2..10].try_into().unwrap());
        let headers: Vec<(String, Vec<u8>)> = data[10..]
            .split(|b| *b == b'\n')
            .filter_map(|r| r.split_first())
            .map(|(first, value)| (NAMES[usize::from(*first) % NAMES.len()].to_owned(), value.to_vec()))
            .collect();
        check(status, &headers, now);
    }

    #[test]
    fn mutated_seeds_never_panic(
        seed in any::<prop::sample::Index>(),
        status in prop_oneof![Just(None), (0u16..1000).prop_map(Some)],
        edits in prop::collection::vec(mutated_value(), 1..6),
    ) {
        let seed = &SEEDS[seed.index(SEEDS.len())];
        let mut headers = seed.headers.clone();
        for (which, inserts) in edits {
            if headers.is_empty() {
                break;
            }
            let i = which % headers.len();
            for (at, token) in inserts {
                let value = &mut headers[i].1;
                let at = at % (value.len() + 1);
                value.splice(at..at, TOKENS[token].iter().copied());
            }
        }
        check(status.unwrap_or(seed.status), &headers, seed.now);
    }
}

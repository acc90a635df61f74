//! Fuzzing the snapshot histogram decoder ([`decode`], what the controller runs on every
//! histogram an agent sends) on stable Rust. The seeds in `tests/corpus/histogram/`
//! (`valid-*` must decode, `hostile-*` must be refused) are replayed, then proptest
//! feeds arbitrary bytes, byte-level mutations of the seeds, and mutations of a seed's
//! inflated V2 payload deflated again (so they get past the zlib checksum). Nothing may
//! panic; an accepted histogram has Crescendo's shape and survives a round trip.
//! `FUZZ_CASES` sets the case count (default 256; scripts/test.sh sets it).
//!
//! `cargo test -p crescendo-metrics --test fuzz -- --ignored write_seeds` rewrites the
//! seeds.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use crescendo_metrics::histogram::{HIGHEST_US, LOWEST_US, SIGFIG};
use crescendo_metrics::{decode, encode, new_histogram};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2Serializer};
use proptest::prelude::*;

const V2_DEFLATE_COOKIE: u32 = 0x1c84_9314;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/histogram")
}

fn read_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    seeds.sort();
    seeds
}

static SEEDS: LazyLock<Vec<(String, Vec<u8>)>> = LazyLock::new(read_seeds);

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// Decodes; asserts what must hold for any input. True when accepted.
fn check(bytes: &[u8]) -> bool {
    match decode(bytes) {
        Ok(h) => {
            assert_eq!(
                (h.low(), h.high(), h.sigfig()),
                (LOWEST_US, HIGHEST_US, SIGFIG)
            );
            let back = decode(&encode(&h)).expect("a decoded histogram re-encodes");
            assert_eq!(
                (back.len(), back.max(), back.min()),
                (h.len(), h.max(), h.min())
            );
            true
        }
        Err(e) => {
            let text = e.to_string();
            assert!(
                text.starts_with("histogram bytes rejected: ") && text.len() > 26,
                "{text}"
            );
            false
        }
    }
}

/// The V2 payload inside a V2+deflate encoding, when it inflates.
fn inflate(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(bytes.get(8..)?)
        .take(1 << 20)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

/// `payload` framed as V2+deflate.
fn deflate(payload: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(payload).unwrap();
    let zlib = z.finish().unwrap();
    let mut out = V2_DEFLATE_COOKIE.to_be_bytes().to_vec();
    out.extend(u32::try_from(zlib.len()).unwrap().to_be_bytes());
    out.extend(zlib);
    out
}

#[test]
fn the_corpus_replays() {
    assert!(
        SEEDS
            .iter()
            .filter(|(n, _)| n.starts_with("hostile-"))
            .count()
            >= 6
    );
    for (name, bytes) in SEEDS.iter() {
        let accepted = check(bytes);
        assert_eq!(accepted, name.starts_with("valid-"), "{name}");
    }
}

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        4 => (any::<usize>(), 1u8..=255).prop_map(|(at, x)| Edit::Flip(at, x)),
        1 => any::<usize>().prop_map(Edit::Truncate),
        2 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..9)).prop_map(|(at, b)| Edit::Insert(at, b)),
    ];
    prop::collection::vec(edit, 1..6)
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        match e {
            Edit::Flip(at, x) if !bytes.is_empty() => {
                let i = at % bytes.len();
                bytes[i] ^= x;
            }
            Edit::Truncate(at) => bytes.truncate(at % (bytes.len() + 1)),
            Edit::Insert(at, b) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            Edit::Flip(..) => {}
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes);
    }

    #[test]
    fn mutated_seeds_never_panic(seed in any::<prop::sample::Index>(), edits in edits()) {
        let (_, bytes) = &SEEDS[seed.index(SEEDS.len())];
        check(&apply(bytes.clone(), &edits));
    }

    /// Past the zlib checksum: the V2 header and counts themselves are mutated.
    #[test]
    fn mutated_payloads_never_panic(seed in any::<prop::sample::Index>(), edits in edits()) {
        let (_, bytes) = &SEEDS[seed.index(SEEDS.len())];
        if let Some(payload) = inflate(bytes) {
            check(&deflate(&apply(payload, &edits)));
        }
    }
}

/// Writes the seeds (run once, with `--ignored`); the files are committed.
#[test]
#[ignore = "rewrites tests/corpus/histogram"]
fn write_seeds() {
    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).unwrap();
    let mut few = new_histogram();
    for us in [1, 1_000, 1_000_000, HIGHEST_US] {
        few.record(us).unwrap();
    }
    let mut many = new_histogram();
    for i in 0..10_000u64 {
        many.record(1 + i * i % HIGHEST_US).unwrap();
    }
    let plain = |h: &Histogram<u64>| {
        let mut v = Vec::new();
        V2Serializer::new().serialize(h, &mut v).unwrap();
        v
    };
    write("valid-empty.bin", &encode(&new_histogram()));
    write("valid-few.bin", &encode(&few));
    write("valid-many.bin", &encode(&many));
    write("valid-plain-v2.bin", &plain(&few));
    let few_bytes = encode(&few);
    write("hostile-truncated.bin", &few_bytes[..few_bytes.len() / 2]);
    write(
        "hostile-wrong-cookie.bin",
        &[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0],
    );
    write("hostile-short.bin", &[0x1c, 0x84]);
    let other = Histogram::<u64>::new_with_bounds(1, 1_000, 2).unwrap();
    write("hostile-other-bounds.bin", &encode(&other));
    // A plain V2 header claiming a 4 GiB payload.
    let mut huge = plain(&few);
    huge[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
    write("hostile-payload-length.bin", &huge);
    // A valid header declaring one byte more than the 8 MiB the decoder allows, then
    // that many zero counts: 38 KB that would inflate to 8 MiB, refused before inflating.
    let mut zeros = plain(&new_histogram());
    zeros[4..8].copy_from_slice(&((8u32 << 20) + 1).to_be_bytes());
    zeros.resize(zeros.len() + (8 << 20) + 1, 0);
    write("hostile-deflate-bomb.bin", &deflate(&zeros));
    // The count hdrhistogram's decoder cannot negate (i64::MIN, zig-zag encoded).
    let mut min = plain(&new_histogram());
    min.truncate(40);
    min.extend([0xff; 9]);
    min[4..8].copy_from_slice(&9u32.to_be_bytes());
    write("hostile-i64-min-count.bin", &deflate(&min));
    // Counts that are one enormous varint each.
    let mut counts = plain(&few);
    let len = counts.len();
    counts.truncate(40);
    counts.extend(std::iter::repeat_n([0xff; 9], 64).flatten());
    let payload = u32::try_from(counts.len() - 40).unwrap();
    counts[4..8].copy_from_slice(&payload.to_be_bytes());
    assert!(len > 40);
    write("hostile-varint-counts.bin", &deflate(&counts));
}

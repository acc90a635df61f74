//! HdrHistogram helpers: one shape for every latency histogram, V2+deflate bytes on
//! the wire, and a decoder that refuses hostile input before allocating for it.

use std::io::Read;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::Serialize;

use crate::MetricsError;

/// Lowest recordable value: 1 µs.
pub const LOWEST_US: u64 = 1;
/// Highest recordable value: 1 hour in µs. Larger values are clamped to it.
pub const HIGHEST_US: u64 = 3_600_000_000;
/// Significant decimal digits kept.
pub const SIGFIG: u8 = 3;

/// Most compressed bytes accepted for one histogram.
const MAX_ENCODED: usize = 1 << 20;
/// V2+deflate cookie, followed by a 4-byte length and the zlib stream.
const V2_DEFLATE_COOKIE: u32 = 0x1c84_9314;
/// V2 (uncompressed) cookie, the first field of the inflated payload.
const V2_COOKIE: u32 = 0x1c84_9313;

/// A histogram of the shape every Crescendo latency histogram has.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGFIG).expect("constant bounds are valid")
}

/// Serialize as HdrHistogram V2+deflate bytes.
pub fn encode(hist: &Histogram<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    V2DeflateSerializer::new()
        .serialize(hist, &mut out)
        .expect("serializing into a Vec cannot fail for a valid histogram");
    out
}

/// Decode V2+deflate (or plain V2) bytes from an untrusted peer.
///
/// The header is checked first, so a hostile peer cannot make us allocate a huge
/// histogram or inflate a deflate bomb; then the result must have Crescendo's shape so
/// it can be merged.
pub fn decode(bytes: &[u8]) -> Result<Histogram<u64>, MetricsError> {
    let bad = |m: &str| MetricsError::BadHistogram(m.to_owned());
    if bytes.is_empty() {
        return Ok(new_histogram());
    }
    if bytes.len() > MAX_ENCODED {
        return Err(bad("more than 1 MiB"));
    }
    let payload_len = check_header(bytes)?;
    let plain = plain_v2(bytes, payload_len)?;
    check_counts(plain.get(40..).unwrap_or_default())?;
    let hist: Histogram<u64> = Deserializer::new()
        .deserialize(&mut &plain[..])
        .map_err(|e| MetricsError::BadHistogram(format!("{e:?}")))?;
    if hist.low() != LOWEST_US || hist.high() != HIGHEST_US || hist.sigfig() != SIGFIG {
        return Err(bad("unexpected histogram bounds"));
    }
    Ok(hist)
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The plain V2 encoding (40-byte header, then `payload_len` bytes of counts): `bytes`
/// themselves, or inflated from V2+deflate, never more than the header promised.
fn plain_v2(bytes: &[u8], payload_len: usize) -> Result<std::borrow::Cow<'_, [u8]>, MetricsError> {
    let want = 40 + payload_len;
    if be_u32(bytes, 0) != Some(V2_DEFLATE_COOKIE) {
        return Ok(std::borrow::Cow::Borrowed(&bytes[..want.min(bytes.len())]));
    }
    let mut plain = Vec::new();
    flate2::read::ZlibDecoder::new(bytes.get(8..).unwrap_or_default())
        .take(want as u64)
        .read_to_end(&mut plain)
        .map_err(|e| MetricsError::BadHistogram(format!("deflate: {e}")))?;
    Ok(std::borrow::Cow::Owned(plain))
}

/// Refuses a count that hdrhistogram's decoder cannot take: the zig-zag encoding of
/// `i64::MIN` (nine bytes of `0xff`) overflows its negation (a panic with overflow
/// checks on, found by tests/fuzz.rs). Varints are LEB128 of at most 9 bytes, the 9th
/// taken whole, as hdrhistogram reads them.
fn check_counts(payload: &[u8]) -> Result<(), MetricsError> {
    let mut rest = payload;
    while !rest.is_empty() {
        let mut value = 0u64;
        let mut used = 0;
        for (i, &b) in rest.iter().take(9).enumerate() {
            used = i + 1;
            if i == 8 {
                value |= u64::from(b) << 56;
                break;
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                break;
            }
        }
        if value == u64::MAX {
            return Err(MetricsError::BadHistogram(
                "a count out of range".to_owned(),
            ));
        }
        rest = &rest[used..];
    }
    Ok(())
}

/// Reads the V2 header (inflating only its first bytes), checks its bounds and returns
/// the payload length it declares.
fn check_header(bytes: &[u8]) -> Result<usize, MetricsError> {
    let bad = |m: &str| MetricsError::BadHistogram(m.to_owned());
    let cookie = be_u32(bytes, 0).ok_or_else(|| bad("too short"))?;
    let header: Vec<u8> = match cookie {
        V2_DEFLATE_COOKIE => {
            let mut head = Vec::with_capacity(40);
            let zlib = bytes.get(8..).ok_or_else(|| bad("too short"))?;
            flate2::read::ZlibDecoder::new(zlib)
                .take(40)
                .read_to_end(&mut head)
                .map_err(|e| MetricsError::BadHistogram(format!("deflate: {e}")))?;
            head
        }
        V2_COOKIE => bytes.iter().take(40).copied().collect(),
        _ => return Err(bad("not an HdrHistogram V2 encoding")),
    };
    if be_u32(&header, 0) != Some(V2_COOKIE) {
        return Err(bad("bad inner cookie"));
    }
    let payload_len = be_u32(&header, 4).ok_or_else(|| bad("short header"))?;
    let sigfig = be_u32(&header, 12).ok_or_else(|| bad("short header"))?;
    let low = be_u64(&header, 16).ok_or_else(|| bad("short header"))?;
    let high = be_u64(&header, 24).ok_or_else(|| bad("short header"))?;
    if sigfig != u32::from(SIGFIG) || low != LOWEST_US || high != HIGHEST_US {
        return Err(bad("unexpected histogram bounds"));
    }
    if payload_len as usize > 8 * MAX_ENCODED {
        return Err(bad("payload too large"));
    }
    Ok(payload_len as usize)
}

/// Record a duration in microseconds, clamped to the histogram's range.
pub fn record(hist: &mut Histogram<u64>, value: std::time::Duration) {
    let us = u64::try_from(value.as_micros()).unwrap_or(u64::MAX);
    hist.saturating_record(us.clamp(LOWEST_US, HIGHEST_US));
}

/// The percentiles a report shows, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl LatencySummary {
    /// Read the summary of a (merged) histogram; all zeros when it is empty.
    pub fn of(hist: &Histogram<u64>) -> Self {
        if hist.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: hist.len(),
            p50: ms(hist.value_at_quantile(0.50)),
            p90: ms(hist.value_at_quantile(0.90)),
            p95: ms(hist.value_at_quantile(0.95)),
            p99: ms(hist.value_at_quantile(0.99)),
            p999: ms(hist.value_at_quantile(0.999)),
            max: ms(hist.max()),
            mean: hist.mean() / 1000.0,
        }
    }
}

/// The value at a percentile (0–100] in milliseconds; 0 for an empty histogram.
pub fn percentile_ms(hist: &Histogram<u64>, percentile: f64) -> f64 {
    if hist.is_empty() {
        return 0.0;
    }
    hist.value_at_percentile(percentile) as f64 / 1000.0
}

//! Feeds arbitrary bytes as header values to `parse_response` and `classify`.
//!
//! Input layout: two bytes of status, eight bytes of wall clock (seconds since the epoch),
//! then `\n`-separated records whose first byte picks a header name.
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crescendo_backoff::{classify, parse_response};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

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

fuzz_target!(|data: &[u8]| {
    if data.len() < 10 {
        return;
    }
    let status = u16::from_le_bytes([data[0], data[1]]);
    let secs = u64::from_le_bytes(data[2..10].try_into().unwrap());
    let now = UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut headers = HeaderMap::new();
    for record in data[10..].split(|b| *b == b'\n') {
        let Some((first, value)) = record.split_first() else {
            continue;
        };
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(NAMES[usize::from(*first) % NAMES.len()], value);
        }
    }
    let info = parse_response(status, &headers, now);
    let _ = classify(status, &info);
});

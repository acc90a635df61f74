use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

use super::*;

/// 2026-11-27 19:00:00 UTC.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_806_000)
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn parse(status: u16, pairs: &[(&str, &str)]) -> RateLimitInfo {
    parse_response(status, &headers(pairs), now())
}

#[test]
fn genesys_429() {
    let info = parse(
        429,
        &[
            ("Retry-After", "42"),
            ("inin-ratelimit-allowed", "300"),
            ("inin-ratelimit-count", "300"),
            ("inin-ratelimit-reset", "42"),
            ("inin-correlation-id", "abc"),
        ],
    );
    assert_eq!(info.retry_after, Some(Duration::from_secs(42)));
    assert_eq!(info.limit, Some(300.0));
    assert_eq!(info.remaining, Some(0.0));
    assert_eq!(info.reset, Some(Duration::from_secs(42)));
    assert_eq!(info.family, Some(HeaderFamily::Inin));
    assert_eq!(classify(429, &info), Signal::Throttle);
}

#[test]
fn genesys_ok_response_and_overcount_floors_at_zero() {
    let info = parse(
        200,
        &[
            ("inin-ratelimit-allowed", "300"),
            ("inin-ratelimit-count", "120"),
            ("inin-ratelimit-reset", "38"),
        ],
    );
    assert_eq!(info.remaining, Some(180.0));
    assert_eq!(info.reset, Some(Duration::from_secs(38)));
    assert!(info.has_quota());
    assert_eq!(classify(200, &info), Signal::Success);

    let over = parse(
        429,
        &[
            ("inin-ratelimit-allowed", "300"),
            ("inin-ratelimit-count", "312"),
        ],
    );
    assert_eq!(over.remaining, Some(0.0));
    assert_eq!(over.reset, None);
}

#[test]
fn retry_after_http_date_relative_to_date_header() {
    let info = parse(
        503,
        &[
            ("Retry-After", "Fri, 27 Nov 2026 19:00:05 GMT"),
            ("Date", "Fri, 27 Nov 2026 18:59:50 GMT"),
        ],
    );
    assert_eq!(info.retry_after, Some(Duration::from_secs(15)));
    assert_eq!(classify(503, &info), Signal::Throttle);
}

#[test]
fn retry_after_http_date_relative_to_now_and_past_is_zero() {
    let info = parse(503, &[("Retry-After", "Fri, 27 Nov 2026 19:00:05 GMT")]);
    assert_eq!(info.retry_after, Some(Duration::from_secs(5)));
    let past = parse(429, &[("Retry-After", "Thu, 01 Jan 2015 00:00:00 GMT")]);
    assert_eq!(past.retry_after, Some(Duration::ZERO));
}

#[test]
fn retry_after_ignored_on_success_and_garbage() {
    assert_eq!(parse(200, &[("Retry-After", "5")]).retry_after, None);
    assert_eq!(parse(429, &[("Retry-After", "soon")]).retry_after, None);
    assert_eq!(parse(429, &[("Retry-After", "-3")]).retry_after, None);
    assert_eq!(parse(429, &[("Retry-After", "NaN")]).retry_after, None);
    assert_eq!(parse(429, &[("Retry-After", "inf")]).retry_after, None);
    assert_eq!(
        parse(429, &[("Retry-After", "1.5")]).retry_after,
        Some(Duration::from_millis(1500))
    );
    assert_eq!(
        parse(429, &[("Retry-After", "99999999999999999999999999")]).retry_after,
        Some(MAX_DELAY)
    );
}

#[test]
fn x_ratelimit_epoch_and_delta_reset() {
    let github = parse(
        403,
        &[
            ("x-ratelimit-limit", "5000"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1795806060"),
        ],
    );
    assert_eq!(github.reset, Some(Duration::from_secs(60)));
    assert_eq!(github.family, Some(HeaderFamily::XRateLimit));
    assert_eq!(classify(403, &github), Signal::Throttle);

    let delta = parse(
        200,
        &[
            ("X-RateLimit-Limit", "100"),
            ("X-RateLimit-Remaining", "7"),
            ("X-RateLimit-Reset", "12"),
        ],
    );
    assert_eq!(delta.remaining, Some(7.0));
    assert_eq!(delta.reset, Some(Duration::from_secs(12)));

    let past_epoch = parse(200, &[("x-ratelimit-reset", "1700000000")]);
    assert_eq!(past_epoch.reset, Some(Duration::ZERO));
}

#[test]
fn ietf_structured_takes_most_restrictive_policy() {
    let info = parse(
        200,
        &[
            (
                "RateLimit-Policy",
                r#""burst";q=100;w=60, "daily";q=1000;w=86400"#,
            ),
            ("RateLimit", r#""burst";r=50;t=30, "daily";r=20;t=3600"#),
        ],
    );
    assert_eq!(info.remaining, Some(20.0));
    assert_eq!(info.limit, Some(1000.0));
    assert_eq!(info.reset, Some(Duration::from_secs(3600)));
    assert_eq!(info.family, Some(HeaderFamily::RateLimit));

    let single = parse(
        429,
        &[
            ("RateLimit-Policy", r#""burst";q=100;w=60"#),
            ("RateLimit", r#""burst";r=0;t=30"#),
            ("Retry-After", "30"),
        ],
    );
    assert_eq!(single.remaining, Some(0.0));
    assert_eq!(single.limit, Some(100.0));
    assert_eq!(single.retry_after, Some(Duration::from_secs(30)));
}

#[test]
fn ietf_structured_split_over_lines_and_policy_only() {
    let info = parse(
        200,
        &[
            ("RateLimit-Policy", r#""burst";q=100;w=60"#),
            ("RateLimit-Policy", r#""daily";q=1000;w=86400"#),
        ],
    );
    // burst: 1.67/s, daily: 0.0116/s: daily is the slowest.
    assert_eq!(info.limit, Some(1000.0));
    assert_eq!(info.remaining, None);
    assert_eq!(info.family, Some(HeaderFamily::RateLimit));
}

#[test]
fn ietf_dictionary_and_legacy_drafts() {
    let dict = parse(200, &[("RateLimit", "limit=10, remaining=5, reset=30")]);
    assert_eq!(dict.limit, Some(10.0));
    assert_eq!(dict.remaining, Some(5.0));
    assert_eq!(dict.reset, Some(Duration::from_secs(30)));

    let legacy = parse(
        200,
        &[
            ("RateLimit-Limit", "100, 100;w=60"),
            ("RateLimit-Remaining", "42"),
            ("RateLimit-Reset", "17"),
        ],
    );
    assert_eq!(legacy.limit, Some(100.0));
    assert_eq!(legacy.remaining, Some(42.0));
    assert_eq!(legacy.reset, Some(Duration::from_secs(17)));
    assert_eq!(legacy.family, Some(HeaderFamily::RateLimitLegacy));
}

#[test]
fn family_with_remaining_beats_family_with_limit_only() {
    let info = parse(
        200,
        &[
            ("RateLimit-Policy", r#""burst";q=100;w=60"#),
            ("inin-ratelimit-allowed", "300"),
            ("inin-ratelimit-count", "10"),
        ],
    );
    assert_eq!(info.family, Some(HeaderFamily::Inin));
    assert_eq!(info.remaining, Some(290.0));
}

#[test]
fn classification() {
    let none = RateLimitInfo::default();
    let with_ra = RateLimitInfo {
        retry_after: Some(Duration::from_secs(1)),
        ..RateLimitInfo::default()
    };
    assert_eq!(classify(200, &none), Signal::Success);
    assert_eq!(classify(304, &none), Signal::Success);
    assert_eq!(classify(429, &none), Signal::Throttle);
    assert_eq!(classify(503, &none), Signal::ServerError);
    assert_eq!(classify(503, &with_ra), Signal::Throttle);
    assert_eq!(classify(500, &with_ra), Signal::ServerError);
    assert_eq!(classify(403, &none), Signal::ClientError);
    assert_eq!(classify(409, &none), Signal::ClientError);
    assert_eq!(classify(404, &with_ra), Signal::ClientError);
    assert_eq!(classify(999, &none), Signal::ServerError);
    assert!(none.is_empty());
    assert!(!with_ra.is_empty());
}

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

fn value_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Arbitrary bytes that a HeaderValue accepts (no CR/LF/NUL).
        proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(|v| v.into_iter().filter(|b| *b >= 0x20 && *b != 0x7f).collect()),
        // Numbers of every shape.
        any::<f64>().prop_map(|f| f.to_string().into_bytes()),
        any::<i128>().prop_map(|i| i.to_string().into_bytes()),
        Just(b"NaN".to_vec()),
        Just(b"-inf".to_vec()),
        Just(b"1e400".to_vec()),
        Just(b"\"a\";r=1;t=\"".to_vec()),
        Just(b"Fri, 31 Dec 9999 23:59:59 GMT".to_vec()),
        Just(vec![0xff, 0xfe, b'1']),
    ]
}

proptest! {
    #[test]
    fn never_panics_on_any_header(
        status in 0u16..1000,
        pairs in proptest::collection::vec((0..NAMES.len(), value_strategy()), 0..12),
        now_secs in any::<u64>(),
    ) {
        let mut map = HeaderMap::new();
        for (i, bytes) in pairs {
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                map.append(NAMES[i], value);
            }
        }
        let now = UNIX_EPOCH.checked_add(Duration::from_secs(now_secs)).unwrap_or(UNIX_EPOCH);
        let info = parse_response(status, &map, now);
        for d in [info.retry_after, info.reset].into_iter().flatten() {
            prop_assert!(d <= MAX_DELAY);
        }
        for v in [info.limit, info.remaining].into_iter().flatten() {
            prop_assert!(v.is_finite() && v >= 0.0);
        }
        let _ = classify(status, &info);
    }

    #[test]
    fn delay_seconds_round_trip(secs in 0u32..=u32::MAX) {
        let info = parse(429, &[("retry-after", &secs.to_string())]);
        prop_assert_eq!(info.retry_after, Some(Duration::from_secs(u64::from(secs))));
    }
}

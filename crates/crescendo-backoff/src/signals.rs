//! Throttle signals: what one HTTP response says about the API's rate limit.
//!
//! [`parse_response`] reads every header family listed in `API-FACTS.md` into one
//! [`RateLimitInfo`]; [`classify`] turns a status (plus that info) into a [`Signal`].
//! Both are total: any bytes in any header give a result, never a panic. Values that
//! cannot be read (non-UTF-8, negative, NaN, infinite, malformed) are ignored as if the
//! header were absent, and huge ones are clamped to [`MAX_DELAY`] so that adding them to a
//! run clock cannot overflow.
//!
//! # Which family wins
//!
//! `Retry-After` is read on its own and always kept: it wins over any reset when a
//! consumer needs one delay. Remaining/limit/reset come from exactly one family, the first
//! of these that supplies a remaining count or a reset (else the first that supplies a
//! limit): the IETF structured `RateLimit`/`RateLimit-Policy` fields, Genesys
//! `inin-ratelimit-*`, de-facto `X-RateLimit-*`, the older IETF draft
//! `RateLimit-Limit/-Remaining/-Reset`. Mixing fields of two families would mix two
//! different counters.

mod structured;
#[cfg(test)]
mod tests;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

/// Longest delay or reset represented (about 136 years); larger values are clamped.
pub const MAX_DELAY: Duration = Duration::from_secs(u32::MAX as u64);

/// A reset above this many seconds is a Unix epoch, not a delta (GitHub, X/Twitter).
const EPOCH_THRESHOLD: f64 = 1e9;

/// The header family that supplied remaining/limit/reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeaderFamily {
    /// IETF draft structured fields `RateLimit` / `RateLimit-Policy`.
    RateLimit,
    /// Genesys Cloud `inin-ratelimit-allowed` / `-count` / `-reset`.
    Inin,
    /// De-facto `X-RateLimit-Limit` / `-Remaining` / `-Reset`.
    XRateLimit,
    /// Older IETF drafts: `RateLimit-Limit` / `-Remaining` / `-Reset`.
    RateLimitLegacy,
}

/// What a response said about the rate limit. Every field is optional: most responses
/// carry only some of them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RateLimitInfo {
    /// `Retry-After`, as a delay from the response (an HTTP-date in the past gives zero).
    pub retry_after: Option<Duration>,
    /// Requests allowed per window.
    pub limit: Option<f64>,
    /// Requests left in the current window (never negative).
    pub remaining: Option<f64>,
    /// Time until the window resets and the quota returns, from the response.
    pub reset: Option<Duration>,
    /// Which family supplied `limit`/`remaining`/`reset`.
    pub family: Option<HeaderFamily>,
}

impl RateLimitInfo {
    /// True when the response carried no rate-limit information at all.
    pub fn is_empty(&self) -> bool {
        self.retry_after.is_none()
            && self.limit.is_none()
            && self.remaining.is_none()
            && self.reset.is_none()
    }

    /// True when both `remaining` and `reset` are known, enough for quota pacing.
    pub fn has_quota(&self) -> bool {
        self.remaining.is_some() && self.reset.is_some()
    }
}

/// How the backoff logic should treat one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// Anything below 400: nothing to back off from.
    Success,
    /// The API asked us to slow down (429, or 503/403 that carry rate-limit evidence).
    Throttle,
    /// Other 5xx (and anything at or above 600): maybe transient.
    ServerError,
    /// Other 4xx: retrying will not help.
    ClientError,
}

/// Reads every rate-limit header of a response.
///
/// `now` is the wall clock when the response arrived; it is needed only for HTTP-dates in
/// `Retry-After` (taken relative to the response's `Date` header when present, else to
/// `now`) and for epoch resets. `Retry-After` is read only on statuses >= 300, where RFC
/// 9110 gives it a meaning (3xx, 429, 503 …).
pub fn parse_response(status: u16, headers: &HeaderMap, now: SystemTime) -> RateLimitInfo {
    let retry_after = if status >= 300 {
        parse_retry_after(headers, now)
    } else {
        None
    };
    let candidates = [
        (HeaderFamily::RateLimit, structured::parse(headers)),
        (HeaderFamily::Inin, parse_inin(headers)),
        (HeaderFamily::XRateLimit, parse_x_ratelimit(headers, now)),
        (HeaderFamily::RateLimitLegacy, parse_legacy(headers, now)),
    ];
    let chosen = candidates
        .iter()
        .find(|(_, q)| q.remaining.is_some() || q.reset.is_some())
        .or_else(|| candidates.iter().find(|(_, q)| q.limit.is_some()));
    let mut info = RateLimitInfo {
        retry_after,
        ..RateLimitInfo::default()
    };
    if let Some((family, quota)) = chosen {
        info.limit = quota.limit;
        info.remaining = quota.remaining;
        info.reset = quota.reset;
        info.family = Some(*family);
    }
    info
}

/// Classifies a response for the retry policies and the governor.
///
/// 429 is a throttle; 503 with `Retry-After` is a throttle (RFC 9110: overloaded, come
/// back later). 403 with `Retry-After` or with `remaining == 0` is a throttle too: GitHub
/// answers its primary and secondary rate limits that way. Other 5xx (and any status
/// >= 600) are server errors, other 4xx client errors, everything below 400 success.
pub fn classify(status: u16, info: &RateLimitInfo) -> Signal {
    match status {
        429 => Signal::Throttle,
        503 if info.retry_after.is_some() => Signal::Throttle,
        403 if info.retry_after.is_some() || info.remaining.is_some_and(|r| r <= 0.0) => {
            Signal::Throttle
        }
        500.. => Signal::ServerError,
        400..=499 => Signal::ClientError,
        _ => Signal::Success,
    }
}

/// Limit/remaining/reset as read from one family.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Quota {
    limit: Option<f64>,
    remaining: Option<f64>,
    reset: Option<Duration>,
}

fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = header_str(headers, "retry-after")?;
    if let Some(secs) = parse_number(text) {
        return Some(secs_to_duration(secs));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    let base = header_str(headers, "date")
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .unwrap_or(now);
    Some(
        at.duration_since(base)
            .unwrap_or(Duration::ZERO)
            .min(MAX_DELAY),
    )
}

fn parse_inin(headers: &HeaderMap) -> Quota {
    let allowed = header_number(headers, "inin-ratelimit-allowed");
    let count = header_number(headers, "inin-ratelimit-count");
    Quota {
        limit: allowed,
        remaining: allowed.zip(count).map(|(a, c)| (a - c).max(0.0)),
        reset: header_number(headers, "inin-ratelimit-reset").map(secs_to_duration),
    }
}

fn parse_x_ratelimit(headers: &HeaderMap, now: SystemTime) -> Quota {
    let reset = header_number(headers, "x-ratelimit-reset")
        .map(|v| reset_to_duration(v, now))
        // Discord-style fractional delta.
        .or_else(|| header_number(headers, "x-ratelimit-reset-after").map(secs_to_duration));
    Quota {
        limit: header_number(headers, "x-ratelimit-limit"),
        remaining: header_number(headers, "x-ratelimit-remaining"),
        reset,
    }
}

fn parse_legacy(headers: &HeaderMap, now: SystemTime) -> Quota {
    Quota {
        limit: header_number(headers, "ratelimit-limit"),
        remaining: header_number(headers, "ratelimit-remaining"),
        reset: header_number(headers, "ratelimit-reset").map(|v| reset_to_duration(v, now)),
    }
}

/// The first value of a header as trimmed text; `None` when absent or not UTF-8.
fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let value = headers.get(name)?;
    let text = std::str::from_utf8(value.as_bytes()).ok()?.trim();
    (!text.is_empty()).then_some(text)
}

fn header_number(headers: &HeaderMap, name: &str) -> Option<f64> {
    parse_number(header_str(headers, name)?)
}

/// A finite, non-negative number. Only the part before the first `,` or `;` counts, so
/// that list forms such as `100, 100;w=60` (older drafts) give their first value.
fn parse_number(text: &str) -> Option<f64> {
    let head = text.split([',', ';']).next()?.trim();
    // `f64::from_str` also accepts "inf", "NaN" and "1e3"; only plain decimals are wanted.
    if head.is_empty() || !head.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let value: f64 = head.parse().ok()?;
    value.is_finite().then_some(value)
}

/// A reset that is either delta seconds or, above 10^9, epoch seconds.
fn reset_to_duration(value: f64, now: SystemTime) -> Duration {
    if value > EPOCH_THRESHOLD {
        let now_epoch = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        secs_to_duration(value - now_epoch)
    } else {
        secs_to_duration(value)
    }
}

/// Seconds to a duration, clamped to `[0, MAX_DELAY]`; NaN gives zero.
pub(crate) fn secs_to_duration(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        Duration::ZERO
    } else if secs >= MAX_DELAY.as_secs_f64() {
        MAX_DELAY
    } else {
        Duration::from_secs_f64(secs)
    }
}

//! Rate-limit response headers, in whichever families are switched on:
//! `inin-ratelimit-*` (Genesys), `X-RateLimit-*` (de facto), and the IETF draft's
//! `RateLimit-Policy` / `RateLimit`. Plus `inin-correlation-id` on every API response.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::config::Config;
use crate::error::{CORRELATION_ID, correlation_id};
use crate::limiter::{Policy, Report, Scope};

const ININ_ALLOWED: HeaderName = HeaderName::from_static("inin-ratelimit-allowed");
const ININ_COUNT: HeaderName = HeaderName::from_static("inin-ratelimit-count");
const ININ_RESET: HeaderName = HeaderName::from_static("inin-ratelimit-reset");
const X_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
const IETF_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const IETF_RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// Adds the correlation id (unless an error body already chose one) and, when a limit
/// applied, the rate-limit headers for `report` (the limit that refused, or the tighter
/// of the two that admitted).
pub(crate) fn apply(headers: &mut HeaderMap, report: Option<(Report, &Policy)>, config: &Config) {
    if !headers.contains_key(CORRELATION_ID) {
        let id = correlation_id().to_string();
        headers.insert(
            CORRELATION_ID,
            HeaderValue::from_str(&id).expect("a uuid is a valid header value"),
        );
    }
    let Some((Report { scope, quota }, policy)) = report else {
        return;
    };
    let families = config.headers;
    let reset = config.retry_after_rounding.seconds(quota.reset);
    if families.inin {
        headers.insert(ININ_ALLOWED, HeaderValue::from(quota.limit));
        headers.insert(ININ_COUNT, HeaderValue::from(quota.used()));
        headers.insert(ININ_RESET, HeaderValue::from(reset));
    }
    if families.x_ratelimit {
        let x_reset = if config.x_reset_epoch {
            epoch_seconds(quota.reset)
        } else {
            reset
        };
        headers.insert(X_LIMIT, HeaderValue::from(quota.limit));
        headers.insert(X_REMAINING, HeaderValue::from(quota.remaining));
        headers.insert(X_RESET, HeaderValue::from(x_reset));
    }
    if families.ietf {
        let name = match scope {
            Scope::Token => "default",
            Scope::Org => "org",
        };
        let window = policy.window.as_secs() + u64::from(policy.window.subsec_nanos() > 0);
        let policy_value = format!("\"{name}\";q={};w={window}", policy.limit);
        let ratelimit_value = format!("\"{name}\";r={};t={reset}", quota.remaining);
        for (header, value) in [
            (IETF_POLICY, policy_value),
            (IETF_RATELIMIT, ratelimit_value),
        ] {
            headers.insert(
                header,
                HeaderValue::from_str(&value).expect("ascii digits and quotes"),
            );
        }
    }
}

/// Wall-clock epoch seconds `delta` from now, rounded up (GitHub-style reset).
fn epoch_seconds(delta: Duration) -> u64 {
    let at = SystemTime::now() + delta;
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    since.as_secs() + u64::from(since.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Algorithm, HeaderFamilies};
    use crate::limiter::Quota;

    fn render(families: &str, epoch: bool, scope: Scope) -> HeaderMap {
        let config = Config {
            headers: HeaderFamilies::parse(families).unwrap(),
            x_reset_epoch: epoch,
            ..Config::default()
        };
        let policy =
            Policy::new(Algorithm::FixedWindow, 300, Duration::from_secs(60), None).unwrap();
        let quota = Quota {
            limit: 300,
            remaining: 40,
            reset: Duration::from_millis(37_200),
        };
        let mut headers = HeaderMap::new();
        apply(
            &mut headers,
            Some((Report { scope, quota }, &policy)),
            &config,
        );
        headers
    }

    fn get<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
        h.get(name).map(|v| v.to_str().unwrap())
    }

    #[test]
    fn inin_and_x_ratelimit_by_default() {
        let h = render("inin,x-ratelimit", false, Scope::Token);
        assert_eq!(get(&h, "inin-ratelimit-allowed"), Some("300"));
        assert_eq!(get(&h, "inin-ratelimit-count"), Some("260"));
        assert_eq!(get(&h, "inin-ratelimit-reset"), Some("38"));
        assert_eq!(get(&h, "x-ratelimit-limit"), Some("300"));
        assert_eq!(get(&h, "x-ratelimit-remaining"), Some("40"));
        assert_eq!(get(&h, "x-ratelimit-reset"), Some("38"));
        assert!(get(&h, "ratelimit").is_none());
        assert_eq!(get(&h, "inin-correlation-id").unwrap().len(), 36);
    }

    #[test]
    fn ietf_structured_fields() {
        let h = render("ietf", false, Scope::Token);
        assert_eq!(get(&h, "ratelimit-policy"), Some("\"default\";q=300;w=60"));
        assert_eq!(get(&h, "ratelimit"), Some("\"default\";r=40;t=38"));
        assert!(get(&h, "inin-ratelimit-allowed").is_none());
        let h = render("ietf", false, Scope::Org);
        assert_eq!(get(&h, "ratelimit"), Some("\"org\";r=40;t=38"));
    }

    #[test]
    fn epoch_reset_and_none() {
        let h = render("x-ratelimit", true, Scope::Token);
        let reset: u64 = get(&h, "x-ratelimit-reset").unwrap().parse().unwrap();
        assert!(reset > 1_000_000_000);
        let h = render("none", false, Scope::Token);
        assert_eq!(h.len(), 1, "only the correlation id: {h:?}");
    }
}

//! The IETF draft "RateLimit header fields for HTTP" in its structured-field syntax.
//!
//! ```text
//! RateLimit-Policy: "burst";q=100;w=60, "daily";q=1000;w=86400
//! RateLimit: "burst";r=50;t=30
//! ```
//!
//! With several policies the most restrictive one wins: the lowest remaining `r` (ties
//! go to the longer `t`), its limit is the matching policy's `q`. The intermediate draft
//! dictionary form `RateLimit: limit=100, remaining=50, reset=30` is read too. This is a
//! tolerant reader, not a validating RFC 8941 parser: malformed members are skipped.

use std::time::Duration;

use http::HeaderMap;

use super::{Quota, parse_number, secs_to_duration};

/// One list member: its name (a string or token) and its `;key=value` parameters.
#[derive(Debug)]
struct Member<'a> {
    name: &'a str,
    params: Vec<(&'a str, &'a str)>,
}

impl Member<'_> {
    fn param(&self, key: &str) -> Option<f64> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .and_then(|(_, v)| parse_number(v))
    }
}

pub(super) fn parse(headers: &HeaderMap) -> Quota {
    let limits = field(headers, "ratelimit");
    let policies = field(headers, "ratelimit-policy");
    let limits = members(&limits);
    let policies = members(&policies);

    if let Some(quota) = dictionary_form(&limits) {
        return quota;
    }

    let tightest = limits
        .iter()
        .filter_map(|m| Some((m, m.param("r")?)))
        .min_by(|(a, ra), (b, rb)| {
            ra.total_cmp(rb).then_with(|| {
                let ta = a.param("t").unwrap_or(0.0);
                let tb = b.param("t").unwrap_or(0.0);
                tb.total_cmp(&ta)
            })
        });
    if let Some((member, remaining)) = tightest {
        let limit = policies
            .iter()
            .find(|p| p.name == member.name)
            .or_else(|| (policies.len() == 1).then(|| &policies[0]))
            .and_then(|p| p.param("q"));
        return Quota {
            limit,
            remaining: Some(remaining),
            reset: member.param("t").map(secs_to_duration),
        };
    }
    // Only a policy: its quota is still worth knowing; take the lowest rate q/w.
    let slowest = policies
        .iter()
        .filter_map(|p| {
            let q = p.param("q")?;
            let w = p.param("w").filter(|w| *w > 0.0).unwrap_or(1.0);
            Some((q, q / w))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1));
    Quota {
        limit: slowest.map(|(q, _)| q),
        remaining: None,
        reset: None::<Duration>,
    }
}

/// `RateLimit: limit=100, remaining=50, reset=30` (drafts 03–06).
fn dictionary_form(members: &[Member<'_>]) -> Option<Quota> {
    let mut quota = Quota::default();
    let mut found = false;
    for m in members {
        let Some((key, value)) = m.name.split_once('=') else {
            continue;
        };
        let value = parse_number(value.trim());
        match key.trim().to_ascii_lowercase().as_str() {
            "limit" => quota.limit = value,
            "remaining" => quota.remaining = value,
            "reset" => quota.reset = value.map(secs_to_duration),
            _ => continue,
        }
        found = true;
    }
    found.then_some(quota)
}

/// Every value of a header, joined as one list (a field may be split over several lines).
fn field(headers: &HeaderMap, name: &str) -> String {
    let mut out = String::new();
    for value in headers.get_all(name) {
        if let Ok(text) = std::str::from_utf8(value.as_bytes()) {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(text);
        }
    }
    out
}

fn members(text: &str) -> Vec<Member<'_>> {
    split_unquoted(text, ',')
        .filter_map(|raw| {
            let mut parts = split_unquoted(raw, ';');
            let name = unquote(parts.next()?.trim());
            if name.is_empty() {
                return None;
            }
            let params = parts
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    Some((k.trim(), v.trim()))
                })
                .collect();
            Some(Member { name, params })
        })
        .collect()
}

/// Splits on `sep` outside double-quoted strings (a backslash escapes inside quotes).
fn split_unquoted(text: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    let mut pieces = Vec::new();
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if in_quotes && c == '\\' {
            escaped = true;
        } else if c == '"' {
            in_quotes = !in_quotes;
        } else if c == sep && !in_quotes {
            pieces.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    pieces.push(&text[start..]);
    pieces.into_iter()
}

/// `"burst"` → `burst`; tokens stay as they are. Escapes are kept verbatim: names are
/// only compared with each other.
fn unquote(text: &str) -> &str {
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
}

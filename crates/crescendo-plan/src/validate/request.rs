//! `[target]` and `[[scenario.steps]]`: URLs, methods, paths, headers and statuses.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_spanned::Spanned;

use super::{Ctx, StepCaptures, TemplateSite, response, sets_authorization};
use crate::error::{PlanError, join_index, join_key};
use crate::limits::{MAX_ENTRIES_PER_TABLE, MAX_STEPS};
use crate::model::{Auth, Scenario, Step, Target};
use crate::raw::{RawScenario, RawStep, RawTarget, Scalar, SpannedMap};
use crate::template::Template;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const METHODS: [&str; 7] = ["GET", "PUT", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS"];

pub(super) fn target(
    ctx: Ctx<'_>,
    raw: &Spanned<RawTarget>,
    sites: &mut Vec<TemplateSite>,
    auth: &Auth,
) -> Result<Target, PlanError> {
    let raw = raw.get_ref();
    let base_url = base_url(raw.base_url.get_ref())
        .map_err(|m| ctx.err(raw.base_url.span(), "target.base_url", m))?;
    let timeout = match &raw.timeout {
        Some(t) => ctx.positive_duration(t, "target.timeout")?,
        None => DEFAULT_TIMEOUT,
    };
    let headers = headers(ctx, raw.headers.as_ref(), "target.headers", 0, sites, auth)?;
    Ok(Target {
        base_url,
        timeout,
        headers,
    })
}

/// An absolute `http`/`https` URL with a host; trailing slashes are dropped so that step
/// paths (which start with `/`) can be appended.
pub(super) fn base_url(url: &str) -> Result<String, String> {
    let bad = |why: &str| {
        format!(
            "expected an absolute http:// or https:// URL with a host, such as \
             \"http://127.0.0.1:8080\"{why}, got {:?}",
            crate::mask_url_userinfo(url)
        )
    };
    let lower = url.to_ascii_lowercase();
    let scheme = ["http://", "https://"]
        .into_iter()
        .find(|s| lower.starts_with(s))
        .ok_or_else(|| bad(""))?;
    let rest = &url[scheme.len()..];
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(" without spaces"));
    }
    if rest.contains(['?', '#']) {
        return Err(bad(" without a query or fragment (put those in the steps)"));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad(""))?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or_else(|| bad(""))?)),
        }
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(bad(""));
    }
    let bad_port = |p: &str| !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err();
    if port.is_some_and(bad_port) {
        return Err(bad(" and a port of 0-65535"));
    }
    Ok(format!("{scheme}{}", rest.trim_end_matches('/')))
}

pub(super) fn scenario(
    ctx: Ctx<'_>,
    raw: &Spanned<RawScenario>,
    sites: &mut Vec<TemplateSite>,
    auth: &Auth,
) -> Result<(Scenario, StepCaptures), PlanError> {
    let steps = &raw.get_ref().steps;
    if steps.get_ref().is_empty() {
        return Err(ctx.err(
            steps.span(),
            "scenario.steps",
            "expected at least one step, such as [[scenario.steps]] name = \"get\" path = \"/\"",
        ));
    }
    ctx.at_most(steps.get_ref(), MAX_STEPS, "scenario.steps", "steps")?;
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::with_capacity(steps.get_ref().len());
    for (i, raw_step) in steps.get_ref().iter().enumerate() {
        let key = join_index("scenario.steps", i);
        let name = &raw_step.get_ref().name;
        if let Some(first) = seen.insert(name.get_ref().as_str(), i) {
            return Err(ctx.err(
                name.span(),
                &join_key(&key, "name"),
                format!(
                    "expected a unique step name, got {:?} again (first used by scenario.steps[{first}])",
                    name.get_ref()
                ),
            ));
        }
        out.push(step(ctx, raw_step.get_ref(), &key, i, sites, auth)?);
    }
    let captures = out
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                s.captures.iter().map(|c| c.var.clone()).collect(),
            )
        })
        .collect();
    Ok((Scenario { steps: out }, captures))
}

fn step(
    ctx: Ctx<'_>,
    raw: &RawStep,
    key: &str,
    index: usize,
    sites: &mut Vec<TemplateSite>,
    auth: &Auth,
) -> Result<Step, PlanError> {
    let name = raw.name.get_ref().trim();
    if name.is_empty() {
        return Err(ctx.err(
            raw.name.span(),
            &join_key(key, "name"),
            "expected a non-empty step name",
        ));
    }
    ctx.plain_name(&raw.name, &join_key(key, "name"), "step name")?;
    let method = match &raw.method {
        Some(m) => {
            let upper = m.get_ref().trim().to_ascii_uppercase();
            if !METHODS.contains(&upper.as_str()) {
                return Err(ctx.err(
                    m.span(),
                    &join_key(key, "method"),
                    format!(
                        "expected one of {}, got {:?}",
                        METHODS.join(", "),
                        m.get_ref()
                    ),
                ));
            }
            upper
        }
        None => "GET".to_owned(),
    };
    let path = raw.path.get_ref();
    let path_key = join_key(key, "path");
    let path_form = "expected a path starting with '/' (query parameters go in `query`)";
    if !path.starts_with('/') || path.contains(['?', '#']) {
        return Err(ctx.err(
            raw.path.span(),
            &path_key,
            format!("{path_form}, got {path:?}"),
        ));
    }
    if let Some(i) = path.find(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(ctx.err(
            ctx.inside_string(&raw.path.span(), path, i),
            &path_key,
            format!("{path_form} without spaces, got {path:?}"),
        ));
    }
    sites.push(TemplateSite {
        key: path_key,
        span: raw.path.span(),
        value: path.clone(),
        step: index,
    });
    let query_key = join_key(key, "query");
    let max = MAX_ENTRIES_PER_TABLE;
    ctx.at_most_entries(raw.query.as_ref(), max, &query_key, "query parameters")?;
    let query = template_map(raw.query.as_ref(), &query_key, index, sites);
    let headers_key = join_key(key, "headers");
    let headers = headers(ctx, raw.headers.as_ref(), &headers_key, index, sites, auth)?;
    let body = match (&raw.body, &raw.body_file) {
        (Some(body), None) => {
            sites.push(TemplateSite {
                key: join_key(key, "body"),
                span: body.span(),
                value: body.get_ref().clone(),
                step: index,
            });
            Some(body.get_ref().clone())
        }
        (None, Some(file)) => {
            let file_key = join_key(key, "body_file");
            let text = ctx.file_text(file, &file_key)?;
            sites.push(TemplateSite {
                key: file_key,
                span: file.span(),
                value: text.clone(),
                step: index,
            });
            Some(text)
        }
        (Some(_), Some(file)) => {
            return Err(ctx.err(
                file.span(),
                &join_key(key, "body_file"),
                "expected one of `body` and `body_file`, got both",
            ));
        }
        (None, None) => None,
    };
    let captures = response::captures(ctx, raw.captures.as_ref(), key)?;
    let checks = response::checks(ctx, raw.checks.as_ref(), key, index, sites)?;
    let mut expect = Vec::new();
    for (i, status) in raw.expect.iter().flatten().enumerate() {
        let code = *status.get_ref();
        if !(100..=599).contains(&code) {
            return Err(ctx.err(
                status.span(),
                &join_index(&join_key(key, "expect"), i),
                format!("expected an HTTP status code from 100 to 599, got {code}"),
            ));
        }
        expect.push(code);
    }
    Ok(Step {
        name: name.to_owned(),
        method,
        path: path.clone(),
        query,
        headers,
        body,
        body_file: raw.body_file.as_ref().map(|f| f.get_ref().clone()),
        expect,
        captures,
        checks,
    })
}

/// A map of template values (query parameters); every value is remembered as a site.
fn template_map(
    raw: Option<&SpannedMap<Scalar>>,
    key: &str,
    step: usize,
    sites: &mut Vec<TemplateSite>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, value) in raw.into_iter().flatten() {
        let text = value.get_ref().text().to_owned();
        sites.push(TemplateSite {
            key: join_key(key, name.get_ref()),
            span: value.span(),
            value: text.clone(),
            step,
        });
        out.insert(name.get_ref().clone(), text);
    }
    out
}

/// Headers: names must be HTTP tokens (unique ignoring case), values templates without
/// line breaks. A credential-like header's value must come from a template variable
/// (never a literal credential), and `Authorization` is refused when `[auth]` sets it.
fn headers(
    ctx: Ctx<'_>,
    raw: Option<&SpannedMap<Scalar>>,
    key: &str,
    step: usize,
    sites: &mut Vec<TemplateSite>,
    auth: &Auth,
) -> Result<BTreeMap<String, String>, PlanError> {
    ctx.at_most_entries(raw, MAX_ENTRIES_PER_TABLE, key, "headers")?;
    let mut seen: HashMap<String, &str> = HashMap::new();
    for (name, value) in raw.into_iter().flatten() {
        let header_key = join_key(key, name.get_ref());
        if !is_token(name.get_ref()) {
            return Err(ctx.err(
                name.span(),
                &header_key,
                format!(
                    "expected a header name of letters, digits and !#$%&'*+-.^_`|~, got {:?}",
                    name.get_ref()
                ),
            ));
        }
        if let Some(other) = seen.insert(name.get_ref().to_ascii_lowercase(), name.get_ref()) {
            return Err(ctx.err(
                name.span(),
                &header_key,
                format!(
                    "expected unique header names, got {:?} and {other:?}",
                    name.get_ref()
                ),
            ));
        }
        // Before anything that could echo the value: it may hold a credential.
        if is_credential_like(name.get_ref()) {
            credential(ctx, name.get_ref(), value, &header_key, auth)?;
        }
        let text = value.get_ref().text();
        if let Some(i) = text.find(['\r', '\n', '\0']) {
            return Err(ctx.err(
                ctx.inside_string(&value.span(), text, i),
                &header_key,
                format!("expected a header value on one line, got {text:?}"),
            ));
        }
    }
    Ok(template_map(raw, key, step, sites))
}

/// Words that make a header name credential-like (case-insensitive, anywhere in the
/// name): the same words the controller's report masks.
const CREDENTIAL_WORDS: [&str; 6] = [
    "authorization",
    "cookie",
    "key",
    "token",
    "secret",
    "password",
];

/// Whether a header named `name` may carry a credential (`Authorization`, `Cookie`,
/// `X-Api-Key`, `X-Auth-Token`, `X-Client-Secret` …).
pub(super) fn is_credential_like(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    CREDENTIAL_WORDS.iter().any(|w| lower.contains(w))
}

/// A credential-like header in the plan: only a template whose credential comes from a
/// variable (`"Bearer {token}"`, `"{apiKey}"`), at most one word written literally (a
/// scheme such as `Bearer`, or `session=`); `Authorization` is also refused when
/// `[auth]` sets it.
fn credential(
    ctx: Ctx<'_>,
    name: &str,
    value: &Spanned<Scalar>,
    key: &str,
    auth: &Auth,
) -> Result<(), PlanError> {
    let authorization = name.eq_ignore_ascii_case("authorization");
    if authorization && sets_authorization(auth) {
        return Err(ctx.err(
            value.span(),
            key,
            "the agent sets Authorization from [auth]; remove this header",
        ));
    }
    let template = Template::parse(value.get_ref().text());
    let literal = template.render_to_string(|_| None);
    if template.is_literal() || literal.split_whitespace().count() > 1 {
        let how = if authorization {
            "expected a template such as \"Bearer {token}\" with the token from a data file \
             column or a capture, or an [auth] table (kind = \"bearer\" with token_env or \
             token_file)"
        } else if name.to_ascii_lowercase().contains("authorization") {
            "expected a template such as \"Bearer {token}\" with the token from a data file \
             column or a capture of an earlier step"
        } else {
            "expected a template such as \"{apiKey}\" with the value from a data file column \
             ([data] file = \"keys.csv\") or a capture of an earlier step"
        };
        return Err(ctx.err(
            value.span(),
            key,
            format!(
                "secrets never go in a plan: {name:?} looks like a credential (its name has \
                 {}); {how}",
                CREDENTIAL_WORDS
                    .iter()
                    .find(|w| name.to_ascii_lowercase().contains(*w))
                    .unwrap_or(&"a credential word")
            ),
        ));
    }
    Ok(())
}

/// An HTTP token (RFC 9110 `tchar`s).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(
            base_url("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            base_url("https://api.example.com/v2//").unwrap(),
            "https://api.example.com/v2"
        );
        assert_eq!(base_url("HTTP://h/").unwrap(), "http://h");
        assert_eq!(base_url("http://[::1]:80").unwrap(), "http://[::1]:80");
        assert_eq!(base_url("http://u:p@h").unwrap(), "http://u:p@h");
        for bad in [
            "",
            "ftp://h",
            "127.0.0.1:8080",
            "http://",
            "http:///x",
            "http://:80",
            "http://h:x",
            "http://h:70000",
            "http://h?x=1",
            "http://h#f",
            "http://h x",
            "http://[::1",
            "http://[::1]x",
        ] {
            assert!(base_url(bad).is_err(), "{bad}");
        }
        // An error never echoes a password in the URL.
        let e = base_url("https://id:s3cret@login.example.com/oauth/token?x=1").unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
        assert!(
            e.contains("https://****@login.example.com/oauth/token?x=1"),
            "{e}"
        );
        assert_eq!(crate::mask_url_userinfo("http://h/a@b"), "http://h/a@b");
        assert_eq!(crate::mask_url_userinfo("no scheme"), "no scheme");
    }

    #[test]
    fn credential_like_names() {
        for name in [
            "Authorization",
            "proxy-authorization",
            "Cookie",
            "X-Api-Key",
            "x-auth-token",
            "X-Client-SECRET",
            "Password",
        ] {
            assert!(is_credential_like(name), "{name}");
        }
        for name in [
            "X-Load-Test",
            "Content-Type",
            "Accept",
            "X-Team",
            "User-Agent",
        ] {
            assert!(!is_credential_like(name), "{name}");
        }
    }

    #[test]
    fn tokens() {
        assert!(is_token("Content-Type"));
        assert!(is_token("X-RateLimit-Remaining"));
        assert!(!is_token("Bad Header"));
        assert!(!is_token(""));
        assert!(!is_token("a:b"));
    }
}

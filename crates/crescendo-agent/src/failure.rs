//! Why an attempt failed, in words a report can group by: a normalised message
//! ("connection refused", "timed out after 10s", "404 Not Found: flow not found:
//! flow-<n>") and one masked sample of what came back.
//!
//! Messages: a transport failure is named by its I/O error kind, or its innermost
//! cause without the OS error number; a response by its status line, plus, when the
//! body is JSON with a `message` or `error` text (or `error.message`), that text with
//! numbers written `<n>` and UUIDs `<uuid>` (so one kind is one cause, not one flow id),
//! cut to 120 characters.
//!
//! Samples never carry a credential: in a JSON body, the value of every key that names
//! one (token, secret, password, authorization, api key, credential, cookie, session,
//! private, `key`) becomes `****`; in any text, `Bearer <anything>` becomes
//! `Bearer ****` and every run of 32 or more token characters that is not a UUID
//! (an API key, a JWT) becomes `****`. A sample is at most 256 bytes.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::time::Duration;

use crescendo_metrics::failures::{MAX_SAMPLE_BYTES, cut_bytes, cut_chars};
use crescendo_metrics::{Failures, StepSnapshot};
use serde_json::Value;

use crate::target_client::SendError;

/// Longest text taken from a response body into a message, in characters.
const BODY_MESSAGE_CHARS: usize = 120;
/// Bodies longer than this are not parsed as JSON (only their start is sampled).
const MAX_PARSED_BODY: usize = 64 * 1024;
/// Runs of token characters this long (and not a UUID) are masked.
const SECRET_RUN: usize = 32;
const MASK: &str = "****";

/// Why one attempt failed.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) message: String,
    sample: Sample,
}

/// What a sample is made from; masked only when asked for ([`Failure::sample`]), which
/// the recorder does once per kind and interval.
#[derive(Debug)]
enum Sample {
    Json(Value),
    Text(String),
}

impl Failure {
    /// The masked sample, at most 256 bytes.
    pub(crate) fn sample(self) -> String {
        let masked = match self.sample {
            Sample::Json(mut value) => {
                mask_json(&mut value);
                value.to_string()
            }
            Sample::Text(text) => mask_text(&text),
        };
        cut_bytes(&masked, MAX_SAMPLE_BYTES).to_owned()
    }
}

/// One run's failures so far, per scenario step, for the agent's log line at the end.
#[derive(Debug, Default)]
pub(crate) struct RunFailures(BTreeMap<String, Failures>);

impl RunFailures {
    pub(crate) fn add(&mut self, steps: &[StepSnapshot]) {
        for step in steps.iter().filter(|s| !s.auxiliary) {
            if !step.stats.failures.is_empty() {
                let table = self.0.entry(step.step.clone()).or_default();
                table.add(&step.stats.failures);
            }
        }
    }

    /// `30 × connect_error: connection refused (step update); …`, the `n` most
    /// frequent; `None` without failures.
    pub(crate) fn top(&self, n: usize) -> Option<String> {
        let mut all: Vec<_> = self
            .0
            .iter()
            .flat_map(|(step, table)| table.iter().map(move |(k, d)| (d.count, step, k)))
            .collect();
        all.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| (a.1, a.2).cmp(&(b.1, b.2))));
        let top: Vec<String> = all
            .iter()
            .take(n)
            .map(|(count, step, kind)| {
                format!(
                    "{count} × {}: {} (step {step})",
                    kind.outcome.name(),
                    kind.message
                )
            })
            .collect();
        (!top.is_empty()).then(|| top.join("; "))
    }
}

/// A request that got no (complete) answer.
pub(crate) fn transport(e: &SendError, timeout: Duration) -> Failure {
    // The chain below the top error (which says only at which stage it failed).
    let mut causes = Vec::new();
    let mut io_kind = None;
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            io_kind = io_kind.or(Some(io.kind()));
        }
        causes.push(cause.to_string());
        source = cause.source();
    }
    let message = if matches!(e, SendError::Timeout) {
        format!("timed out after {}", humantime::format_duration(timeout))
    } else {
        use std::io::ErrorKind as K;
        match io_kind {
            // Kinds whose name says it all ("connection refused").
            Some(
                kind @ (K::ConnectionRefused
                | K::ConnectionReset
                | K::ConnectionAborted
                | K::NotConnected
                | K::AddrNotAvailable
                | K::BrokenPipe
                | K::TimedOut
                | K::UnexpectedEof
                | K::PermissionDenied),
            ) => kind.to_string(),
            _ => causes.last().map_or_else(
                || {
                    if matches!(e, SendError::Body(_)) {
                        "the body could not be read".to_owned()
                    } else {
                        "the request failed".to_owned()
                    }
                },
                |cause| without_os_error(cause).to_lowercase(),
            ),
        }
    };
    let sample = if causes.is_empty() {
        e.to_string()
    } else {
        causes.join(": ")
    };
    Failure {
        message,
        sample: Sample::Text(sample),
    }
}

/// An answer with a status the step does not expect.
pub(crate) fn response(status: u16, body: &[u8]) -> Failure {
    let (said, sample) = read_body(body);
    let mut message = status_line(status);
    if let Some(said) = said {
        message.push_str(": ");
        message.push_str(&said);
    }
    Failure { message, sample }
}

/// An expected answer whose body failed one of the step's checks.
pub(crate) fn check_failed(status: u16, failure: &impl Display, body: &[u8]) -> Failure {
    let (_, sample) = read_body(body);
    Failure {
        message: format!("{}: check failed: {failure}", status_line(status)),
        sample,
    }
}

/// No token could be obtained, so nothing was sent.
pub(crate) fn no_token(e: &impl Display) -> Failure {
    Failure {
        message: e.to_string(),
        sample: Sample::Text(String::new()),
    }
}

/// `404 Not Found`.
fn status_line(status: u16) -> String {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason());
    match reason {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

/// The body's own explanation, normalised, and the body to sample.
fn read_body(body: &[u8]) -> (Option<String>, Sample) {
    let parsed = (body.len() <= MAX_PARSED_BODY)
        .then(|| serde_json::from_slice::<Value>(body).ok())
        .flatten();
    if let Some(value) = parsed {
        let said = explanation(&value).map(normalise);
        return (said, Sample::Json(value));
    }
    // Masked before it is cut, so a secret across the cut is still masked.
    let start = &body[..body.len().min(4 * MAX_SAMPLE_BYTES)];
    (
        None,
        Sample::Text(String::from_utf8_lossy(start).into_owned()),
    )
}

/// `message`, `error` or `error.message`, when it is text.
fn explanation(value: &Value) -> Option<&str> {
    fn text(v: Option<&Value>) -> Option<&str> {
        v.and_then(Value::as_str).filter(|s| !s.trim().is_empty())
    }
    text(value.get("message"))
        .or_else(|| text(value.get("error")))
        .or_else(|| text(value.get("error").and_then(|e| e.get("message"))))
}

/// Whitespace collapsed, UUIDs `<uuid>`, numbers `<n>`, cut to 120 characters.
fn normalise(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let collapsed = words.join(" ");
    let mut out = String::with_capacity(collapsed.len());
    let mut rest = collapsed.as_str();
    while let Some(c) = rest.chars().next() {
        if let Some(uuid) = rest.get(..36).filter(|s| is_uuid(s)) {
            out.push_str("<uuid>");
            rest = &rest[uuid.len()..];
        } else if c.is_ascii_digit() {
            out.push_str("<n>");
            rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    cut_chars(&out, BODY_MESSAGE_CHARS).to_owned()
}

/// `Connection refused (os error 111)` → `Connection refused`.
fn without_os_error(text: &str) -> &str {
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => &text[..at],
        _ => text,
    }
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Whether a JSON key names a credential.
fn secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key == "key"
        || [
            "token",
            "secret",
            "password",
            "passwd",
            "authorization",
            "apikey",
            "api_key",
            "api-key",
            "credential",
            "cookie",
            "session",
            "private",
        ]
        .iter()
        .any(|word| key.contains(word))
}

fn mask_json(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if secret_key(key) {
                    *v = Value::String(MASK.to_owned());
                } else {
                    mask_json(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_json),
        Value::String(s) => *s = mask_text(s),
        _ => {}
    }
}

fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '/' | '=' | '~')
}

/// `Bearer <x>` and long token-like runs masked.
fn mask_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let run = rest.find(|c: char| !token_char(c)).unwrap_or(rest.len());
        if run == 0 {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let word = &rest[..run];
        rest = &rest[run..];
        if word.len() >= SECRET_RUN && !is_uuid(word) {
            out.push_str(MASK);
        } else {
            out.push_str(word);
        }
        let tail = word.len().saturating_sub("bearer".len());
        if word
            .get(tail..)
            .is_some_and(|w| w.eq_ignore_ascii_case("bearer"))
        {
            // The credential after it, whatever its length.
            let spaces = rest.len() - rest.trim_start_matches([' ', '\t']).len();
            let after = &rest[spaces..];
            let secret = after.find(|c: char| c.is_whitespace() || c == '"' || c == ',');
            let secret = secret.unwrap_or(after.len());
            if secret > 0 {
                out.push_str(&rest[..spaces]);
                out.push_str(MASK);
                rest = &after[secret..];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_error_body_gives_its_message_normalised() {
        let body = br#"{"message":"flow not found: flow-17","code":"not.found","status":404,
            "contextId":"0f8fad5b-d9cb-469f-a165-70867728950e","details":[],"errors":[]}"#;
        let f = response(404, body);
        assert_eq!(f.message, "404 Not Found: flow not found: flow-<n>");
        let sample = f.sample();
        assert!(sample.contains("flow-17"), "{sample}");
        assert!(
            sample.contains("0f8fad5b-d9cb-469f-a165-70867728950e"),
            "{sample}"
        );
        let f = response(
            409,
            br#"{"error": {"message": "Flow is locked by another client"}}"#,
        );
        assert_eq!(f.message, "409 Conflict: Flow is locked by another client");
        let f = response(502, b"<html>bad gateway</html>");
        assert_eq!(f.message, "502 Bad Gateway");
        assert_eq!(f.sample(), "<html>bad gateway</html>");
        assert_eq!(response(599, b"").message, "599");
        let long = format!(r#"{{"error": "{}"}}"#, "x".repeat(500));
        assert_eq!(
            response(500, long.as_bytes()).message.len(),
            "500 Internal Server Error: ".len() + BODY_MESSAGE_CHARS
        );
    }

    #[test]
    fn samples_never_carry_a_credential() {
        let body = br#"{"error":"invalid_grant","access_token":"abc","nested":{"Api-Key":"k1"},
            "note":"sent Authorization: Bearer eyJhbGciOi.short and key sk_live_0123456789abcdefghijklmnopqrstuv"}"#;
        let sample = response(400, body).sample();
        for secret in ["abc", "k1", "eyJhbGciOi", "sk_live"] {
            assert!(!sample.contains(secret), "{secret} in {sample}");
        }
        assert!(sample.contains("Bearer ****"), "{sample}");
        let text = mask_text("token=bearer   xyz, then aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa end");
        assert_eq!(text, "token=bearer   ****, then **** end");
        // Long bodies are cut after masking, on a character boundary.
        let long = "é".repeat(1000);
        let sample = response(500, long.as_bytes()).sample();
        assert!(sample.len() <= MAX_SAMPLE_BYTES, "{}", sample.len());
    }

    #[test]
    fn check_failures_and_token_failures_say_what_happened() {
        let f = check_failed(200, &"value at /state differs", br#"{"state":"x"}"#);
        assert_eq!(f.message, "200 OK: check failed: value at /state differs");
        assert_eq!(f.sample(), r#"{"state":"x"}"#);
        assert_eq!(
            no_token(&"token endpoint unreachable").message,
            "token endpoint unreachable"
        );
        assert_eq!(
            without_os_error("Connection refused (os error 111)"),
            "Connection refused"
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_connection_refused() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/x?api_key=s3cret", closed.local_addr().unwrap());
        drop(closed);
        let client = crate::target_client::TargetClient::new(Duration::from_secs(10), 1);
        let request = http::Request::get(url)
            .body(http_body_util::Full::default())
            .unwrap();
        let e = client.send(request).await.unwrap_err();
        let f = transport(&e, client.timeout());
        assert_eq!(f.message, "connection refused");
        let sample = f.sample();
        assert!(!sample.contains("s3cret"), "{sample}");
        assert!(sample.to_lowercase().contains("refused"), "{sample}");
    }
}

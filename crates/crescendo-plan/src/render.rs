//! [`Plan::to_toml`]: the validated model written back as canonical plan TOML, so that
//! a plan derived by editing the model (the capacity probe's) travels as text like any
//! other plan.
//!
//! Scalars and keys are encoded by `toml_writer`, the encoder of the `toml` crate that
//! parses them back, so quotes, backslashes, newlines, control characters and unicode
//! survive; the document's layout (which table, which order) is written here, in the
//! order the model keeps (captures and thresholds as written).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use toml_writer::{ToTomlKey, ToTomlValue, TomlStringBuilder};

use crate::model::{
    Auth, Backoff, Ceilings, ClientSharing, Data, DataFormat, DataSource, Fleet, Load, OAuthClient,
    OnAgentLoss, OnExhausted, Partition, Plan, Policy, Secret, Step, Target, Threshold,
};

impl Plan {
    /// The plan as canonical TOML, every key written out (defaults included).
    ///
    /// For a plan `p` that [`load`](crate::load) or [`parse_with`](crate::parse_with)
    /// returned, `parse_with(&p.to_toml(), origin, files)` returns `p` again, except
    /// that a step's `body_file` is rendered as an inline `body` holding the file's
    /// content (so the parsed step has `body_file: None`, as after
    /// [`Plan::inline_body_files`]): the text needs no body file next to it. A `[data]
    /// file` stays a reference to the file (its rows are streamed apart), so `files` must
    /// serve its header ([`BundleFiles`](crate::BundleFiles) from
    /// [`Plan::bundle_files`]); a plan without one parses with [`NoFiles`](crate::NoFiles).
    ///
    /// Secrets never appear: the model holds only where they come from (an environment
    /// variable's name or a file path), and that is what is written.
    ///
    /// Thresholds are written from their `expr` (the key and expression as written), so
    /// `"latency.p999" = "< 1.5s"` comes back with the same `expr`.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        line(&mut out, "name", &string(&self.name));
        if let Some(d) = &self.description {
            line(&mut out, "description", &text(d));
        }
        target(&mut out, &self.target);
        auth(&mut out, &self.auth);
        for step in &self.scenario.steps {
            self::step(&mut out, step);
        }
        load(&mut out, &self.load, &self.ceilings);
        backoff(&mut out, &self.backoff);
        fleet(&mut out, &self.fleet);
        if let Some(d) = &self.data {
            data(&mut out, d);
        }
        if !self.thresholds.is_empty() {
            out.push_str("\n[thresholds]\n");
            for t in &self.thresholds {
                threshold(&mut out, t);
            }
        }
        out
    }

    /// Forgets where step bodies were read from: every `body_file` becomes `None`, the
    /// `body` (the file's content) stays. What [`Plan::to_toml`] parses back to.
    pub fn inline_body_files(&mut self) {
        for step in &mut self.scenario.steps {
            step.body_file = None;
        }
    }
}

/// `key = value` on its own line; `value` is already TOML.
fn line(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "{} = {value}", key.to_toml_key());
}

/// A TOML string on one line (line breaks escaped): fit for inline tables and arrays.
fn string(s: &str) -> String {
    let b = TomlStringBuilder::new(s);
    b.as_basic_pretty()
        .or_else(|| b.as_literal())
        .unwrap_or_else(|| b.as_basic())
        .to_toml_value()
}

/// A TOML string that may span lines (`"""` or `'''`), for long text such as a body.
fn text(s: &str) -> String {
    s.to_toml_value()
}

/// `{ k = v, … }` from already rendered values, in the order given.
fn inline<K: AsRef<str>>(pairs: impl IntoIterator<Item = (K, String)>) -> String {
    let body: Vec<String> = pairs
        .into_iter()
        .map(|(k, v)| format!("{} = {v}", k.as_ref().to_toml_key()))
        .collect();
    if body.is_empty() {
        "{}".to_owned()
    } else {
        format!("{{ {} }}", body.join(", "))
    }
}

/// A map of strings as an inline table.
fn string_map(map: &BTreeMap<String, String>) -> String {
    inline(map.iter().map(|(k, v)| (k, string(v))))
}

/// A duration as the plan writes it, e.g. `"1m30s"`, `"250ms"`, `"1s500us"`; exact to
/// the nanosecond (humantime reads it back to the same value).
fn duration(d: Duration) -> String {
    const UNITS: [(&str, u128); 6] = [
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ];
    let mut rest = d.as_nanos();
    if rest == 0 {
        return string("0s");
    }
    let mut text = String::new();
    for (unit, nanos) in UNITS {
        if rest >= nanos {
            let _ = write!(text, "{}{unit}", rest / nanos);
            rest %= nanos;
        }
    }
    string(&text)
}

fn target(out: &mut String, t: &Target) {
    out.push_str("\n[target]\n");
    line(out, "base_url", &string(&t.base_url));
    line(out, "timeout", &duration(t.timeout));
    if !t.headers.is_empty() {
        line(out, "headers", &string_map(&t.headers));
    }
}

/// `<name>_env = …` or `<name>_file = …`.
fn secret(name: &str, s: &Secret) -> (String, String) {
    match s {
        Secret::Env(v) => (format!("{name}_env"), string(v)),
        Secret::File(v) => (format!("{name}_file"), string(v)),
    }
}

fn auth(out: &mut String, a: &Auth) {
    match a {
        Auth::None => {}
        Auth::Bearer { token } => {
            out.push_str("\n[auth]\n");
            line(out, "kind", &string("bearer"));
            let (k, v) = secret("token", token);
            line(out, &k, &v);
        }
        Auth::OAuth2ClientCredentials(o) => oauth(out, o),
    }
}

fn oauth(out: &mut String, o: &OAuthClient) {
    out.push_str("\n[auth]\n");
    line(out, "kind", &string("oauth2-client-credentials"));
    line(out, "token_url", &string(&o.token_url));
    let sharing = match o.sharing {
        ClientSharing::Shared => "shared",
        ClientSharing::PerAgent => "per-agent",
    };
    line(out, "sharing", &string(sharing));
    line(out, "refresh_before", &duration(o.refresh_before));
    if let Some(scope) = &o.scope {
        line(out, "scope", &string(scope));
    }
    let pairs = |c: &crate::model::ClientCredentials| {
        [
            secret("client_id", &c.client_id),
            secret("client_secret", &c.client_secret),
        ]
    };
    match o.clients.as_slice() {
        [one] => {
            for (k, v) in pairs(one) {
                line(out, &k, &v);
            }
        }
        many => {
            let list: Vec<String> = many.iter().map(|c| inline(pairs(c))).collect();
            line(out, "clients", &format!("[{}]", list.join(", ")));
        }
    }
}

fn step(out: &mut String, s: &Step) {
    out.push_str("\n[[scenario.steps]]\n");
    line(out, "name", &string(&s.name));
    line(out, "method", &string(&s.method));
    line(out, "path", &string(&s.path));
    if !s.query.is_empty() {
        line(out, "query", &string_map(&s.query));
    }
    if !s.headers.is_empty() {
        line(out, "headers", &string_map(&s.headers));
    }
    // A body_file's content is in `body`: written inline, the text needs no file.
    if let Some(body) = &s.body {
        line(out, "body", &text(body));
    }
    if !s.expect.is_empty() {
        let codes: Vec<String> = s.expect.iter().map(u16::to_string).collect();
        line(out, "expect", &format!("[{}]", codes.join(", ")));
    }
    if !s.captures.is_empty() {
        let captures = s.captures.iter().map(|c| (&c.var, string(&c.pointer)));
        line(out, "captures", &inline(captures));
    }
    if !s.checks.is_empty() {
        let checks: Vec<String> = s
            .checks
            .iter()
            .map(|c| {
                inline([
                    ("pointer", string(&c.pointer)),
                    ("equals", json_scalar(&c.equals)),
                ])
            })
            .collect();
        line(out, "checks", &format!("[{}]", checks.join(", ")));
    }
}

/// A check's `equals`: a string, an integer, a float (always with a fraction or an
/// exponent, so that it reads back as a float) or a boolean; the only JSON values a
/// validated plan holds there.
fn json_scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => string(s),
        serde_json::Value::Bool(b) => b.to_toml_value(),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_toml_value(),
            (None, Some(f)) => f.to_toml_value(),
            (None, None) => n.to_string(),
        },
        // Not produced by validation; written as its JSON text in a string.
        other => string(&other.to_string()),
    }
}

fn load(out: &mut String, l: &Load, c: &Ceilings) {
    out.push_str("\n[load]\n");
    if let Some(n) = c.max_total_requests {
        line(out, "max_total_requests", &n.to_toml_value());
    }
    if let Some(r) = c.max_rps {
        line(out, "max_rps", &r.to_toml_value());
    }
    let stages: Vec<String> = match l {
        Load::Open(o) => {
            line(out, "model", &string("open"));
            line(out, "start_rate", &o.start_rate.to_toml_value());
            line(out, "max_in_flight", &o.max_in_flight.to_toml_value());
            o.stages
                .iter()
                .map(|s| {
                    inline([
                        ("duration", duration(s.duration)),
                        ("target", s.target.to_toml_value()),
                    ])
                })
                .collect()
        }
        Load::Closed(c) => {
            line(out, "model", &string("closed"));
            line(out, "start_vus", &c.start_vus.to_toml_value());
            line(out, "think_time", &duration(c.think_time));
            c.stages
                .iter()
                .map(|s| {
                    inline([
                        ("duration", duration(s.duration)),
                        ("target", s.target.to_toml_value()),
                    ])
                })
                .collect()
        }
    };
    out.push_str("stages = [\n");
    for s in stages {
        let _ = writeln!(out, "  {s},");
    }
    out.push_str("]\n");
}

fn backoff(out: &mut String, b: &Backoff) {
    out.push_str("\n[backoff]\n");
    let policy = match b.policy {
        Policy::None => "none",
        Policy::RetryAfter => "retry-after",
        Policy::Exponential => "exponential",
        Policy::Coordinated => "coordinated",
    };
    line(out, "policy", &string(policy));
    line(out, "max_retries", &b.max_retries.to_toml_value());
    line(out, "retry_budget", &b.retry_budget.to_toml_value());
    line(out, "max_retry_after", &duration(b.max_retry_after));
    line(out, "base", &duration(b.base));
    line(out, "cap", &duration(b.cap));
}

fn fleet(out: &mut String, f: &Fleet) {
    out.push_str("\n[fleet]\n");
    let loss = match f.on_agent_loss {
        OnAgentLoss::Redistribute => "redistribute",
        OnAgentLoss::Continue => "continue",
        OnAgentLoss::Abort => "abort",
    };
    line(out, "on_agent_loss", &string(loss));
}

fn data(out: &mut String, d: &Data) {
    out.push_str("\n[data]\n");
    let partition = match d.partition {
        Partition::PerAgent => "per-agent",
        Partition::Shared => "shared",
        Partition::Unique => "unique",
    };
    line(out, "partition", &string(partition));
    let on_exhausted = match d.on_exhausted {
        OnExhausted::StopAgent => "stop-agent",
        OnExhausted::StopRun => "stop-run",
    };
    line(out, "on_exhausted", &string(on_exhausted));
    match &d.source {
        DataSource::Inline(rows) => {
            out.push_str("rows = [\n");
            for row in rows {
                let _ = writeln!(out, "  {},", string_map(row));
            }
            out.push_str("]\n");
        }
        DataSource::Sequence { var, format, count } => {
            let sequence = inline([
                ("var", string(var)),
                ("format", string(format)),
                ("count", count.to_toml_value()),
            ]);
            line(out, "sequence", &sequence);
        }
        DataSource::File(f) => {
            // The columns come from the file's header when the text is parsed again.
            line(out, "file", &string(&f.path));
            let format = match f.format {
                DataFormat::Csv => "csv",
                DataFormat::JsonLines => "jsonl",
            };
            line(out, "format", &string(format));
        }
    }
}

/// `"key" = "< 800ms"` or, with `abort_on_fail`, a table.
fn threshold(out: &mut String, t: &Threshold) {
    let (key, expr) = threshold_parts(t);
    let value = match t.abort {
        None => string(&expr),
        Some(a) => {
            let mut pairs = vec![
                ("expr", string(&expr)),
                ("abort_on_fail", true.to_toml_value()),
            ];
            if !a.grace.is_zero() {
                pairs.push(("grace", duration(a.grace)));
            }
            inline(pairs)
        }
    };
    line(out, &key, &value);
}

/// The key and the expression of a threshold, from its `expr` (`<key> <op> <number><unit>`,
/// where only the key may hold spaces). A threshold built by hand with another `expr`
/// is written from its metric, operator and value instead (latencies in ms).
fn threshold_parts(t: &Threshold) -> (String, String) {
    let mut parts = t.expr.rsplitn(3, ' ');
    if let (Some(value), Some(op), Some(key)) = (parts.next(), parts.next(), parts.next())
        && op == t.op.symbol()
    {
        return (key.to_owned(), format!("{op} {value}"));
    }
    let key = match &t.step {
        Some(step) => format!("steps.{step}.{}", t.metric),
        None => t.metric.to_string(),
    };
    let unit = if t.metric.is_latency() { "ms" } else { "" };
    (key, format!("{} {}{unit}", t.op.symbol(), t.value))
}

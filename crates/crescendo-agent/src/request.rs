//! Steps prepared once per run from the plan's parsed templates (headers already
//! merged with the target's): the URI, the headers and the body that have no
//! variables are built here once, so the hot path renders only what varies and
//! clones the rest (reference-counted bytes, no URL parsing).

use std::collections::BTreeMap;

use bytes::Bytes;
use crescendo_plan::{Plan, Step, StepTemplates, Template};
use http::header::{ACCEPT, AUTHORIZATION, HeaderName};
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::Full;

use crate::auth::Token;
use crate::capture::{CaptureRule, CheckRule, Expected};
use crate::target_client::{BuildError, TargetRequest};
/// Values for one iteration's template variables.
#[derive(Debug)]
pub(crate) struct Vars<'a> {
    pub(crate) seq: u64,
    pub(crate) iteration: u64,
    pub(crate) vu: u64,
    pub(crate) agent: &'a str,
    /// Generated only when some template uses `{uuid}`.
    pub(crate) uuid: Option<String>,
    pub(crate) row: Option<&'a BTreeMap<String, String>>,
    /// Variables captured by earlier steps of this iteration, in capture order.
    pub(crate) captured: Vec<(String, String)>,
}

impl Vars<'_> {
    fn lookup(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        Some(match name {
            "seq" => Cow::Owned(self.seq.to_string()),
            "iteration" => Cow::Owned(self.iteration.to_string()),
            "vu" => Cow::Owned(self.vu.to_string()),
            "agent" => Cow::Borrowed(self.agent),
            "uuid" => Cow::Borrowed(self.uuid.as_deref()?),
            "now_ms" => Cow::Owned(now_ms().to_string()),
            // A capture (the latest one of a name) shadows a data column.
            other => match self.captured.iter().rev().find(|(name, _)| name == other) {
                Some((_, value)) => Cow::Borrowed(value.as_str()),
                None => Cow::Borrowed(self.row?.get(other)?.as_str()),
            },
        })
    }

    pub(crate) fn render(&self, template: &Template) -> String {
        let mut out = String::new();
        self.render_into(&mut out, template);
        out
    }

    fn render_into(&self, out: &mut String, template: &Template) {
        template.render(out, |name| self.lookup(name));
    }
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

/// One step with its templates parsed and its constant parts built.
#[derive(Debug)]
pub(crate) struct PreparedStep {
    pub(crate) method: Method,
    base_url: String,
    templates: StepTemplates,
    headers: Vec<HeaderName>,
    /// The URI, when neither the path nor the query has a variable.
    uri: Option<Uri>,
    /// The headers without variables, with `Accept: */*` unless the plan sets one.
    fixed_headers: HeaderMap,
    /// Indices (in `headers`) of the headers rendered per request.
    varying_headers: Vec<usize>,
    /// The body, when it has no variable.
    body: Option<Bytes>,
    pub(crate) expect: Vec<u16>,
    /// Values copied from the JSON body into variables for later steps.
    pub(crate) captures: Vec<CaptureRule>,
    /// Conditions on the JSON body; a failed one is `Outcome::CheckFailed`.
    pub(crate) checks: Vec<CheckRule>,
}

impl PreparedStep {
    /// Whether a status counts as success for this step.
    pub(crate) fn expected(&self, status: u16) -> bool {
        if self.expect.is_empty() {
            (200..300).contains(&status)
        } else {
            self.expect.contains(&status)
        }
    }

    /// Build the request for one attempt. With a `token`, `Authorization: Bearer …`
    /// replaces any `Authorization` header of the plan.
    pub(crate) fn build(
        &self,
        vars: &Vars<'_>,
        token: Option<&Token>,
    ) -> Result<TargetRequest, BuildError> {
        let t = &self.templates;
        let uri = match &self.uri {
            Some(uri) => uri.clone(),
            None => parse_uri(url_text(&self.base_url, t, |out, template| {
                vars.render_into(out, template);
            }))?,
        };
        let mut headers = self.fixed_headers.clone();
        if token.is_some() {
            headers.remove(AUTHORIZATION);
        }
        for &i in &self.varying_headers {
            let name = &self.headers[i];
            if token.is_some() && name == AUTHORIZATION {
                continue;
            }
            let value = HeaderValue::try_from(vars.render(&t.headers[i].1))
                .map_err(|_| BuildError::HeaderValue(name.clone()))?;
            headers.append(name.clone(), value);
        }
        if let Some(token) = token {
            headers.insert(AUTHORIZATION, token.header_value());
        }
        let body = match (&self.body, &t.body) {
            (Some(body), _) => body.clone(),
            (None, Some(template)) => Bytes::from(vars.render(template)),
            (None, None) => Bytes::new(),
        };
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        Ok(request)
    }

    fn uses(&self, variable: &str) -> bool {
        let t = &self.templates;
        std::iter::once(&t.path)
            .chain(t.query.iter().map(|(_, v)| v))
            .chain(t.headers.iter().map(|(_, v)| v))
            .chain(&t.body)
            .any(|template| template.variables().any(|v| v == variable))
    }
}

/// Whether a template renders the same text every time.
fn constant(template: &Template) -> bool {
    template.variables().next().is_none()
}

/// The base URL, the path and the query (form-encoded, added to any query the path
/// already has), each template rendered by `render`.
fn url_text(base_url: &str, t: &StepTemplates, render: impl Fn(&mut String, &Template)) -> String {
    let mut url = String::with_capacity(base_url.len() + 64);
    url.push_str(base_url);
    render(&mut url, &t.path);
    if !t.query.is_empty() {
        if !url.contains('?') {
            url.push('?');
        } else if !url.ends_with(['?', '&']) {
            url.push('&');
        }
        let start = url.len();
        let mut query = form_urlencoded::Serializer::for_suffix(url, start);
        let mut value = String::new();
        for (name, template) in &t.query {
            value.clear();
            render(&mut value, template);
            query.append_pair(name, &value);
        }
        url = query.finish();
    }
    url
}

/// A URI as it is; one with characters a URI may not hold (spaces, non-ASCII)
/// percent-encoded as a browser would.
fn parse_uri(text: String) -> Result<Uri, BuildError> {
    if let Ok(uri) = Uri::try_from(text.as_str()) {
        return Ok(uri);
    }
    url::Url::parse(&text)
        .ok()
        .and_then(|url| Uri::try_from(url.as_str()).ok())
        .ok_or(BuildError::Url)
}

/// A step the agent cannot send (the controller validated the plan, so only an agent
/// of another version should ever meet one).
#[derive(Debug, thiserror::Error)]
pub(crate) enum StepError {
    #[error("step {step}: bad method {method}")]
    Method { step: String, method: String },
    #[error("step {step}: bad header name {name}")]
    Header { step: String, name: String },
}

/// Prepare every step of the plan's scenario.
pub(crate) fn prepare(plan: &Plan) -> Result<Vec<PreparedStep>, StepError> {
    plan.scenario
        .steps
        .iter()
        .zip(plan.step_templates())
        .map(|(step, templates)| prepare_step(&plan.target.base_url, step, templates))
        .collect()
}

fn prepare_step(
    base_url: &str,
    step: &Step,
    templates: StepTemplates,
) -> Result<PreparedStep, StepError> {
    let method = Method::from_bytes(step.method.as_bytes()).map_err(|_| StepError::Method {
        step: step.name.clone(),
        method: step.method.clone(),
    })?;
    let headers: Vec<HeaderName> = templates
        .headers
        .iter()
        .map(|(name, _)| {
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| StepError::Header {
                step: step.name.clone(),
                name: name.clone(),
            })
        })
        .collect::<Result<_, _>>()?;
    // What renders the same every time is built now; what cannot be built (a value
    // a header may not hold) is left to each request, which then fails as before.
    let fixed = |out: &mut String, template: &Template| template.render(out, |_| None);
    let uri = (constant(&templates.path) && templates.query.iter().all(|(_, v)| constant(v)))
        .then(|| parse_uri(url_text(base_url, &templates, fixed)).ok())
        .flatten();
    let mut fixed_headers = HeaderMap::new();
    let mut varying_headers = Vec::new();
    for (i, (name, (_, template))) in headers.iter().zip(&templates.headers).enumerate() {
        let value = constant(template)
            .then(|| HeaderValue::try_from(template.render_to_string(|_| None)).ok())
            .flatten();
        match value {
            Some(value) => {
                fixed_headers.append(name.clone(), value);
            }
            None => varying_headers.push(i),
        }
    }
    if !headers.contains(&ACCEPT) {
        fixed_headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
    }
    let body = templates
        .body
        .as_ref()
        .filter(|body| constant(body))
        .map(|body| Bytes::from(body.render_to_string(|_| None)));
    let (captures, checks) = rules(step);
    Ok(PreparedStep {
        method,
        base_url: base_url.to_owned(),
        templates,
        headers,
        uri,
        fixed_headers,
        varying_headers,
        body,
        expect: step.expect.clone(),
        captures,
        checks,
    })
}

/// The step's captures and checks.
fn rules(step: &Step) -> (Vec<CaptureRule>, Vec<CheckRule>) {
    let captures = step
        .captures
        .iter()
        .map(|c| CaptureRule {
            var: c.var.clone(),
            pointer: c.pointer.clone(),
        })
        .collect();
    let checks = step
        .checks
        .iter()
        .map(|c| CheckRule {
            pointer: c.pointer.clone(),
            expected: Expected::from_value(c.equals.clone()),
        })
        .collect();
    (captures, checks)
}

/// Whether any step uses `{uuid}` (so iterations that do not, skip generating one).
pub(crate) fn uses_uuid(steps: &[PreparedStep]) -> bool {
    steps.iter().any(|s| s.uses("uuid"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    const PLAN: &str = r#"
name = "t"
[target]
base_url = "http://127.0.0.1:9"
headers = { "X-Team" = "perf", "Authorization" = "Bearer {flowId}" }
[[scenario.steps]]
name = "update"
method = "PUT"
path = "/flows/{flowId}"
headers = { "authorization" = "Bearer {token}", "X-Agent" = "{agent}" }
body = '{"n": {seq}}'
[load]
stages = [ { duration = "1s", target = 1 } ]
[data]
rows = [ { flowId = "f1", token = "t1" } ]
"#;

    #[test]
    fn a_step_header_replaces_the_target_header_and_templates_render() {
        let plan = crescendo_plan::parse(PLAN, "t").unwrap();
        let steps = prepare(&plan).unwrap();
        assert!(!uses_uuid(&steps));
        let row = BTreeMap::from([
            ("flowId".to_owned(), "f1".to_owned()),
            ("token".to_owned(), "t1".to_owned()),
        ]);
        let vars = Vars {
            seq: 7,
            iteration: 0,
            vu: 0,
            agent: "a1",
            uuid: None,
            row: Some(&row),
            captured: vec![
                ("flowId".into(), "old".into()),
                ("flowId".into(), "f2".into()),
            ],
        };
        let req = steps[0].build(&vars, None).unwrap();
        // The latest capture shadows the data column of the same name.
        assert_eq!(req.uri(), "http://127.0.0.1:9/flows/f2");
        assert_eq!(req.method(), "PUT");
        let auth: Vec<_> = req.headers().get_all("authorization").iter().collect();
        assert_eq!(auth, ["Bearer t1"]);
        assert_eq!(req.headers()["x-agent"], "a1");
        assert_eq!(req.headers()["x-team"], "perf");
        assert_eq!(req.headers()["accept"], "*/*");
        let body = futures::executor::block_on(req.into_body().collect()).unwrap();
        assert_eq!(body.to_bytes(), &b"{\"n\": 7}"[..]);
        // The run's token replaces the plan's Authorization header.
        let token = Token(crate::auth::Secret::new("t0k"));
        let req = steps[0].build(&vars, Some(&token)).unwrap();
        let auth: Vec<_> = req.headers().get_all("authorization").iter().collect();
        assert_eq!(auth, ["Bearer t0k"]);
    }
}

#[cfg(test)]
mod uri_tests {
    use super::*;

    const PLAN: &str = r#"
name = "t"
[target]
base_url = "http://127.0.0.1:9/api"
[[scenario.steps]]
name = "fixed"
method = "GET"
path = "/flows"
query = { pageSize = "25", q = "a b&c" }
body = "{}"
[[scenario.steps]]
name = "varying"
method = "GET"
path = "/flows/{name}"
query = { v = "{seq}" }
[load]
stages = [ { duration = "1s", target = 1 } ]
[data]
rows = [ { name = "n" } ]
"#;

    #[test]
    fn constant_parts_are_built_once_and_varying_ones_encoded() {
        let plan = crescendo_plan::parse(PLAN, "t").unwrap();
        let steps = prepare(&plan).unwrap();
        let fixed = steps[0].uri.as_ref().expect("a URI without variables");
        assert_eq!(fixed, "http://127.0.0.1:9/api/flows?pageSize=25&q=a+b%26c");
        assert_eq!(steps[0].body.as_deref(), Some(&b"{}"[..]));
        assert!(steps[1].uri.is_none());
        let row = BTreeMap::from([("name".to_owned(), "a b/é".to_owned())]);
        let vars = Vars {
            seq: 3,
            iteration: 0,
            vu: 0,
            agent: "a1",
            uuid: None,
            row: Some(&row),
            captured: Vec::new(),
        };
        let req = steps[1].build(&vars, None).unwrap();
        assert_eq!(req.uri(), "http://127.0.0.1:9/api/flows/a%20b/%C3%A9?v=3");
    }
}

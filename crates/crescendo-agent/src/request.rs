//! Steps prepared once per run from the plan's parsed templates (headers already
//! merged with the target's), so the hot path only renders strings.

use std::collections::BTreeMap;

use crescendo_plan::{Plan, Step, StepTemplates, Template};
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderName};

use crate::auth::Token;
use crate::capture::{CaptureRule, CheckRule, Expected};

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
        template.render(&mut out, |name| self.lookup(name));
        out
    }
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

/// One step with its templates parsed.
#[derive(Debug)]
pub(crate) struct PreparedStep {
    pub(crate) method: Method,
    templates: StepTemplates,
    headers: Vec<HeaderName>,
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
        client: &reqwest::Client,
        base_url: &str,
        vars: &Vars<'_>,
        token: Option<&Token>,
    ) -> reqwest::RequestBuilder {
        let t = &self.templates;
        let url = format!("{base_url}{}", vars.render(&t.path));
        let mut req = client.request(self.method.clone(), url);
        if !t.query.is_empty() {
            let query: Vec<(&str, String)> = t
                .query
                .iter()
                .map(|(k, v)| (k.as_str(), vars.render(v)))
                .collect();
            req = req.query(&query);
        }
        for (name, (_, value)) in self.headers.iter().zip(&t.headers) {
            if token.is_some() && name == AUTHORIZATION {
                continue;
            }
            req = req.header(name.clone(), vars.render(value));
        }
        if let Some(token) = token {
            req = req.header(AUTHORIZATION, token.header_value());
        }
        if let Some(body) = &t.body {
            req = req.body(vars.render(body));
        }
        req
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
        .map(|(step, templates)| {
            let method =
                Method::from_bytes(step.method.as_bytes()).map_err(|_| StepError::Method {
                    step: step.name.clone(),
                    method: step.method.clone(),
                })?;
            let headers = templates
                .headers
                .iter()
                .map(|(name, _)| {
                    HeaderName::from_bytes(name.as_bytes()).map_err(|_| StepError::Header {
                        step: step.name.clone(),
                        name: name.clone(),
                    })
                })
                .collect::<Result<_, _>>()?;
            let (captures, checks) = rules(step);
            Ok(PreparedStep {
                method,
                templates,
                headers,
                expect: step.expect.clone(),
                captures,
                checks,
            })
        })
        .collect()
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
        let req = steps[0]
            .build(&reqwest::Client::new(), &plan.target.base_url, &vars, None)
            .build()
            .unwrap();
        // The latest capture shadows the data column of the same name.
        assert_eq!(req.url().as_str(), "http://127.0.0.1:9/flows/f2");
        let auth: Vec<_> = req.headers().get_all("authorization").iter().collect();
        assert_eq!(auth, ["Bearer t1"]);
        assert_eq!(req.headers()["x-agent"], "a1");
        assert_eq!(req.headers()["x-team"], "perf");
        assert_eq!(
            req.body().and_then(|b| b.as_bytes()),
            Some(&b"{\"n\": 7}"[..])
        );
        // The run's token replaces the plan's Authorization header.
        let token = Token(crate::auth::Secret::new("t0k"));
        let req = steps[0]
            .build(&reqwest::Client::new(), "http://x", &vars, Some(&token))
            .build()
            .unwrap();
        let auth: Vec<_> = req.headers().get_all("authorization").iter().collect();
        assert_eq!(auth, ["Bearer t0k"]);
    }
}

//! Steps prepared once per run: parsed templates, methods and header names, so the hot
//! path only renders strings.

use std::collections::BTreeMap;

use crescendo_plan::{Plan, Step, Template};
use reqwest::Method;
use reqwest::header::HeaderName;

/// Values for one iteration's template variables.
#[derive(Debug)]
pub(crate) struct Vars<'a> {
    pub(crate) seq: u64,
    pub(crate) iteration: u64,
    pub(crate) vu: u64,
    pub(crate) agent: &'a str,
    pub(crate) uuid: String,
    pub(crate) row: Option<&'a BTreeMap<String, String>>,
}

impl Vars<'_> {
    fn lookup(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        Some(match name {
            "seq" => Cow::Owned(self.seq.to_string()),
            "iteration" => Cow::Owned(self.iteration.to_string()),
            "vu" => Cow::Owned(self.vu.to_string()),
            "agent" => Cow::Borrowed(self.agent),
            "uuid" => Cow::Borrowed(self.uuid.as_str()),
            "now_ms" => Cow::Owned(now_ms().to_string()),
            other => Cow::Borrowed(self.row?.get(other)?.as_str()),
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
    pub(crate) path: Template,
    pub(crate) query: Vec<(String, Template)>,
    pub(crate) headers: Vec<(HeaderName, Template)>,
    pub(crate) body: Option<Template>,
    pub(crate) expect: Vec<u16>,
}

impl PreparedStep {
    fn new(step: &Step, common: &BTreeMap<String, String>) -> Result<Self, String> {
        let method = Method::from_bytes(step.method.as_bytes())
            .map_err(|_| format!("step {}: bad method {}", step.name, step.method))?;
        let mut headers = Vec::new();
        for (name, value) in common.iter().chain(&step.headers) {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("step {}: bad header name {name}", step.name))?;
            headers.push((name, Template::parse(value)));
        }
        Ok(Self {
            method,
            path: Template::parse(&step.path),
            query: step
                .query
                .iter()
                .map(|(k, v)| (k.clone(), Template::parse(v)))
                .collect(),
            headers,
            body: step.body.as_deref().map(Template::parse),
            expect: step.expect.clone(),
        })
    }

    /// Whether a status counts as success for this step.
    pub(crate) fn expected(&self, status: u16) -> bool {
        if self.expect.is_empty() {
            (200..300).contains(&status)
        } else {
            self.expect.contains(&status)
        }
    }

    /// Build the request for one attempt.
    pub(crate) fn build(
        &self,
        client: &reqwest::Client,
        base_url: &str,
        vars: &Vars<'_>,
    ) -> reqwest::RequestBuilder {
        let url = format!("{base_url}{}", vars.render(&self.path));
        let mut req = client.request(self.method.clone(), url);
        if !self.query.is_empty() {
            let query: Vec<(&str, String)> = self
                .query
                .iter()
                .map(|(k, v)| (k.as_str(), vars.render(v)))
                .collect();
            req = req.query(&query);
        }
        for (name, value) in &self.headers {
            req = req.header(name.clone(), vars.render(value));
        }
        if let Some(body) = &self.body {
            req = req.body(vars.render(body));
        }
        req
    }
}

/// Prepare every step of the plan's scenario.
pub(crate) fn prepare(plan: &Plan) -> Result<Vec<PreparedStep>, String> {
    plan.scenario
        .steps
        .iter()
        .map(|s| PreparedStep::new(s, &plan.target.headers))
        .collect()
}

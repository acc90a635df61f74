//! Crescendo test plans: the TOML format, validation with line/column errors, and
//! splitting a plan into agent shares.
//!
//! [`load`] or [`parse`] a plan, [`split`] it over the agents, and hand each agent the
//! plan text with its [`Share`] and the files it names ([`Plan::bundle_files`], parsed
//! there with [`parse_with`] and [`BundleFiles`]); a data file's rows are streamed
//! separately ([`read_rows`], row `i` to agent `i % agents`). Every error is a [`PlanError`] that names the file,
//! line, column, key path and the expected form:
//!
//! ```text
//! plans/x.toml:12:5: load.stages[1].target: expected a rate >= 0 (iterations per second), got -5
//! ```
//!
//! # Layout
//!
//! - `model`: the validated plan ([`Plan`] and its parts), plain types with no serde; the
//!   contract the agent and the controller program against (`model::auth`, `model::data`).
//! - `raw`: the serde layer, the document as written with spans; structural errors
//!   (syntax, unknown keys, wrong types) are located there.
//! - `validate`: raw → model with every semantic check (`request`, `response` for
//!   captures and checks, `load`, `data`, `auth`, `thresholds`).
//! - `files`: [`PlanFiles`], where `body_file` and data files come from: [`DirFiles`],
//!   [`BundleFiles`], [`NoFiles`]; and [`Plan::bundle_files`].
//! - `render`: [`Plan::to_toml`], the model written back as canonical TOML (a
//!   `body_file` inline as `body`), e.g. for a plan derived by editing the model.
//! - `overrides`: [`Override`], `--set key.path=value` applied to the document before
//!   validation ([`parse_with_overrides`], [`load_with_overrides`]).
//! - `reference`: `docs/plan-reference.md`, generated from the validator's keys and
//!   this documentation.
//! - `rows`: data file headers and [`read_rows`].
//! - [`template`]: `{variable}` templates, parsed once per run and rendered per request.
//! - `threshold`: `[thresholds]` keys and expressions, [`CompareOp::holds`].
//! - `schedule`: rates and VUs over time, the rate integral and its inverse.
//! - `split`: [`split`], [`split_evenly`], [`Data::rows_for`], and each agent's part of
//!   the plan's [`Ceilings`] ([`Plan::ceilings_for`]).
//! - `error`: [`PlanError`].
//! - [`labels`]: agent labels and run selectors (`region=eu-west-1,zone=a`).
//! - [`limits`]: the format's size limits; `text`: bytes to UTF-8 text.
//!
//! # Format
//!
//! Durations are strings such as `"20s"`, `"1m30s"` or `"250ms"`. Unknown keys are
//! errors. A complete plan, with every key and its default:
//!
//! ```toml
//! name = "flow-update"                 # required
//! description = "PUT updates to flows" # optional
//!
//! [target]
//! base_url = "http://127.0.0.1:8080"   # required: absolute http(s) URL; a trailing '/' is dropped
//! timeout = "10s"                      # per attempt; default 10s
//! headers = { X-Load-Test = "crescendo agent {agent}" }  # optional; values are templates
//! # A credential-like header (its name contains authorization, cookie, key, token, secret
//! # or password, any case) cannot hold a literal: it must be a template whose credential
//! # is a variable, such as "Bearer {token}" or "{apiKey}" (a data file column or a
//! # capture), with at most one literal word. Authorization is refused with [auth], which
//! # sets it. Same for a step's headers.
//!
//! [auth]                               # optional; default kind = "none"
//! kind = "oauth2-client-credentials"   # none | bearer | oauth2-client-credentials
//! token_url = "https://login.mypurecloud.com/oauth/token"  # required for oauth2: absolute http(s) URL
//! client_id_env = "CRESCENDO_CLIENT_ID"          # or client_id_file = "/run/secrets/client_id"
//! client_secret_env = "CRESCENDO_CLIENT_SECRET"  # or client_secret_file = "…"
//! sharing = "shared"                   # shared (default): every agent uses one client |
//!                                      # per-agent: agent i uses clients[i % len] of
//! # clients = [{ client_id_env = "A_ID", client_secret_env = "A_SECRET" }, …]
//! #   (instead of the client_* keys above; with shared, exactly one)
//! refresh_before = "60s"               # refresh when less is left of expires_in; default 60s
//! # scope = "…"                        # optional
//! # kind = "bearer" takes token_env = "CRESCENDO_API_TOKEN" or token_file = "…" instead.
//! # Secrets never go in a plan: client_secret, client_id, token, password or access_token
//! # written as values are errors.
//!
//! [[scenario.steps]]                   # at least one; an iteration runs the steps in order
//! name = "update"                      # required, unique
//! method = "PUT"                       # GET (default) PUT POST PATCH DELETE HEAD OPTIONS, any case
//! path = "/api/v2/flows/{flowId}"      # required: starts with '/'; a template
//! query = { trace = "{uuid}" }         # optional; values are templates
//! headers = { Content-Type = "application/json" }  # optional; replace target headers of the same name
//! body = '{"name": "flow {flowId} rev {seq}"}'     # optional template; JSON needs no escaping
//! # or body_file = "bodies/update.json" (not both): relative to the plan's directory,
//! # read when the plan is loaded, a template like body
//! expect = [200]                       # statuses that count as success; empty/absent = any 2xx
//! captures = { version = "/version" }  # optional: var = RFC 6901 JSON Pointer into the JSON
//!                                      # response body; later steps may use {version}
//! checks = [{ pointer = "/id", equals = "{flowId}" }]  # optional: the response body value
//!                                      # must equal this string (a template), number or boolean
//!
//! [load]
//! model = "open"                       # "open" (default): arrival rate; "closed": virtual users
//! start_rate = 5                       # open: rate at t = 0; default: the first stage's target
//! max_in_flight = 100                  # open: fleet-wide cap, past it iterations are dropped; default 1000
//! stages = [                           # at least one; each ramps linearly to its target
//!   { duration = "10s", target = 15 }, # open: target in iterations per second (>= 0)
//!   { duration = "10s", target = 15 },
//! ]
//! # closed: start_vus = 0 (default: the first stage's target), think_time = "100ms"
//! # (default 0), stages = [{ duration = "10s", target = 10 }] with targets in VUs.
//! max_total_requests = 100000          # optional, either model: the whole fleet never sends
//!                                      # more requests (attempts, retries included) in the run
//! max_rps = 50                         # optional, either model: the whole fleet never sends
//!                                      # more requests per second, whatever the backoff says
//! # Hard ceilings: each agent enforces its part (max_total_requests split evenly, max_rps
//! # divided by the agents) from the plan it validated; when its requests are spent, it
//! # starts no more and its iterations in flight end without sending.
//!
//! [backoff]
//! policy = "retry-after"               # none | retry-after (default) | exponential | coordinated
//! max_retries = 3                      # default 3; policy "none" forces 0
//! retry_budget = 0.2                   # retries <= this fraction of first attempts, in [0, 1]; default 0.2
//! max_retry_after = "180s"             # a longer Retry-After stops the run; default 180s
//! base = "100ms"                       # exponential full-jitter window: base (default 100ms) …
//! cap = "30s"                          # … and cap (default 30s), base <= cap
//!
//! [fleet]                              # optional
//! on_agent_loss = "redistribute"       # redistribute (default): when the controller hears
//!                                      # nothing from an agent for its heartbeat timeout
//!                                      # (3 s), the survivors take its share of the rate,
//!                                      # VUs and in-flight cap (not its data rows) |
//!                                      # continue: the run goes on short | abort: the
//!                                      # fleet stops; either way the run is `degraded`
//!
//! [data]                               # optional: columns become template variables
//! partition = "per-agent"              # per-agent (default): disjoint slices, row i to agent
//!                                      # i % agents | shared: every agent all rows | unique:
//!                                      # per-agent slices, each row used at most once per run
//! on_exhausted = "stop-agent"          # unique only (ignored otherwise): stop-agent (default)
//!                                      # stops that agent, stop-run stops the fleet
//! sequence = { var = "flowId", format = "flow-{n}", count = 100 }  # flowId = flow-1 … flow-100
//! # or rows = [{ flowId = "a", owner = "x" }, { flowId = "b", owner = "y" }]
//! # or file = "data/flows.csv": a CSV with a header row, or .jsonl/.ndjson (one JSON object
//! #   per line; strings, numbers and booleans become strings), relative to the plan's
//! #   directory; format = "csv" | "jsonl" when the extension does not say
//! # (exactly one of rows, sequence and file; every row has the same columns)
//!
//! [thresholds]                         # optional; the run fails when one does not hold
//! "latency.p99" = "< 800ms"            # latency.pNN/max/mean, service_time.*: units us, ms (default), s
//! "throttled_ratio" = "< 0.02"         # throttled_ratio, error_ratio: fractions of requests
//! "errors" = "== 0"                    # requests ok throttled errors retries dropped: counts
//! "goodput_rps" = ">= 4.5"             # throughput_rps, goodput_rps: per second
//! "steps.update.latency.p95" = "< 500ms"  # steps.<step>.<metric>: any metric, one step only
//! "error_ratio" = { expr = "< 0.5", abort_on_fail = true, grace = "10s" }
//! # a table: abort_on_fail stops the run as soon as it fails, checked from `grace` (default
//! # 0) after the start; grace needs abort_on_fail = true
//! ```
//!
//! # Limits
//!
//! Parsing is linear in the size of the text and bounded in memory; past a limit of
//! [`limits`] the plan is refused with an error naming the limit:
//!
//! - the text: at most 16 MiB, UTF-8 (otherwise the error names the byte offset of the
//!   first byte that is not, or UTF-16 by its byte order mark), and at most 200,000 keys,
//!   values and tables (`=`, `,`, `[` and `{` outside strings and comments, counted
//!   before the TOML is parsed);
//! - at most 1,000 steps, 1,000 stages, 100 thresholds and 1,000 `auth.clients`;
//! - at most 100 entries in each `headers` table (the target's or a step's), and in each
//!   step's `query`, `captures` and `checks`;
//! - at most 100 data columns and 10,000 inline `rows` (a data `file` is streamed: no row
//!   limit); a `body_file` at most 16 MiB, UTF-8;
//! - names (the plan's and the steps') without control or bidirectional formatting
//!   characters; capture names, data columns and header names are identifiers or HTTP
//!   tokens, so they have none either.
//!
//! Templates: `{name}` is a variable when `name` is an identifier; anything else is
//! literal. `{{` is a literal `{` and `{{name}}` the literal text `{name}`. Variables are
//! the built-ins `seq uuid agent vu iteration now_ms` ([`template::BUILTIN_VARIABLES`]),
//! the data columns, and the captures of earlier steps; any other is an error naming the
//! key. Capture names may not shadow built-ins or data columns.
//!
//! Percentile keys follow HdrHistogram naming: `p99` is 99, `p999` is 99.9, `p9999`
//! is 99.99; `p99.5` is written out.

#![forbid(unsafe_code)]

mod error;
mod files;
pub mod labels;
pub mod limits;
mod model;
mod overrides;
mod raw;
#[doc(hidden)]
pub mod reference;
mod render;
mod rows;
mod schedule;
mod split;
pub mod template;
mod text;
mod threshold;
mod validate;

use std::path::Path;

pub use error::PlanError;
pub use files::{BundleFiles, DirFiles, NoFiles, PlanFiles};
pub use model::*;
pub use overrides::{Override, load_with_overrides, parse_with_overrides};
pub use rows::{RowError, read_rows};
pub use split::{split, split_evenly};
pub use template::{StepTemplates, Template};

/// `text` with the `user:password@` of a URL in it replaced by `****@`, for error
/// messages and reports (`scheme://user:pw@host/x` → `scheme://****@host/x`). Text
/// without `://`, or without `@` before the URL's path, query or fragment, is returned
/// as is.
pub fn mask_url_userinfo(text: &str) -> String {
    let Some(scheme_end) = text.find("://").map(|i| i + 3) else {
        return text.to_owned();
    };
    let rest = &text[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}****{}", &text[..scheme_end], &rest[at..]),
        None => text.to_owned(),
    }
}

/// Parses and validates a plan. `origin` names the text in errors (usually the path).
///
/// Pure: a plan with a `body_file` or a data `file` fails here with an error saying to
/// load it from a file ([`load`]) or to use [`parse_with`].
pub fn parse(text: &str, origin: &str) -> Result<Plan, PlanError> {
    parse_with(text, origin, &NoFiles)
}

/// Parses and validates a plan whose `body_file`s and data `file` come from `files`:
/// [`DirFiles`] next to the plan, or [`BundleFiles`] on an agent. Text over
/// [`limits::MAX_PLAN_BYTES`] is refused before it is parsed.
pub fn parse_with(text: &str, origin: &str, files: &dyn PlanFiles) -> Result<Plan, PlanError> {
    if text.len() > limits::MAX_PLAN_BYTES {
        return Err(PlanError::too_large(origin, Some(text.len())));
    }
    let raw = raw::parse_raw(text, origin)?;
    validate::validate(raw, text, origin, files)
}

/// Reads, parses and validates the plan at `path`, with files it names resolved against
/// its directory; errors name the path as given.
pub fn load(path: &Path) -> Result<Plan, PlanError> {
    load_with_text(path).map(|(plan, _)| plan)
}

/// [`load`], also returning the plan's text as read (to send as is, comments included,
/// with [`Plan::bundle_files`]). At most [`limits::MAX_PLAN_BYTES`] are read; bytes that
/// are not UTF-8 are an error naming the offset of the first bad byte (or UTF-16, by its
/// byte order mark).
pub fn load_with_text(path: &Path) -> Result<(Plan, String), PlanError> {
    let (origin, text) = read_text(path)?;
    let plan = parse_with(&text, &origin, &DirFiles::for_plan(path))?;
    Ok((plan, text))
}

/// The plan file's text (at most [`limits::MAX_PLAN_BYTES`], UTF-8) and its origin.
fn read_text(path: &Path) -> Result<(String, String), PlanError> {
    let origin = path.display().to_string();
    let bytes = text::read_at_most(path, limits::MAX_PLAN_BYTES)
        .map_err(|e| PlanError::read(&origin, e))?;
    if bytes.len() > limits::MAX_PLAN_BYTES {
        return Err(PlanError::too_large(&origin, None));
    }
    let text =
        text::utf8(bytes).map_err(|(why, bytes)| PlanError::not_utf8(&origin, &bytes, &why))?;
    Ok((origin, text))
}

impl std::str::FromStr for Plan {
    type Err = PlanError;

    /// Parses a plan with origin `plan`.
    fn from_str(text: &str) -> Result<Plan, PlanError> {
        parse(text, "plan")
    }
}

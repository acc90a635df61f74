//! The plan a command runs and the flags that change it on the command line:
//! `--base-url` and `--set key.path=value` (`run`, `probe`, `validate`; `demo` takes
//! `--set` for its built-in plan).

use std::path::{Path, PathBuf};

use crescendo_plan::{DirFiles, Override, Plan};

use crate::RunRequest;

/// `--set`'s description, shared by every command that takes it.
const SET_HELP: &str = "Override a plan value before validation, checked like the file \
    (repeatable): KEY is a dotted path such as load.max_in_flight, target.base_url, \
    load.stages[0].target or thresholds.\"latency.p99\"; VALUE is a TOML value (20, 0.5, \
    true, \"text\", [200, 201]) or, when it is not one, plain text (30s, http://host:8080)";

/// The plan file and its command-line overrides.
#[derive(Debug, Clone, clap::Args)]
pub(super) struct PlanArgs {
    /// The plan file (TOML).
    pub(super) plan: PathBuf,
    /// Send the load to this URL instead of the plan's target.base_url (e.g. a
    /// staging API); checked like the plan's own.
    #[arg(long, value_name = "URL")]
    pub(super) base_url: Option<String>,
    #[arg(long = "set", value_name = "KEY=VALUE", help = SET_HELP, value_parser = parse_set)]
    pub(super) set: Vec<Override>,
}

/// `--set` for a command whose plan is built in (`demo`).
#[derive(Debug, Clone, Default, clap::Args)]
pub(super) struct SetArgs {
    #[arg(long = "set", value_name = "KEY=VALUE", help = SET_HELP, value_parser = parse_set)]
    pub(super) set: Vec<Override>,
}

fn parse_set(flag: &str) -> Result<Override, String> {
    flag.parse()
}

impl PlanArgs {
    /// Read and validate the plan with the overrides (`--set` first, then
    /// `--base-url`); prints the error (file, line, key, or the flag) and returns `None`
    /// when that fails. The text is the plan as written, or the document written again
    /// when a flag changed it.
    pub(super) fn load(&self) -> Option<(Plan, String)> {
        let path = self.plan.as_path();
        let loaded =
            crescendo_plan::load_with_overrides(path, &self.set).and_then(|(mut plan, text)| {
                let Some(url) = &self.base_url else {
                    return Ok((plan, text));
                };
                plan.target.base_url = url.trim_end_matches('/').to_owned();
                let text = plan.to_toml();
                let files = DirFiles::for_plan(path);
                crescendo_plan::parse_with(&text, "--base-url", &files).map(|plan| (plan, text))
            });
        loaded
            .map_err(|e| eprintln!("error: {:#}", anyhow::Error::new(e)))
            .ok()
    }

    /// The plan split into a run request for `agents`; prints the error and returns
    /// `None` when any of that fails. The request carries the plan's files.
    pub(super) fn request(&self, agents: u32) -> Option<RunRequest> {
        let (plan, text) = self.load()?;
        let mut request = RunRequest::new(plan, text, agents)
            .map_err(|e| eprintln!("error: {e}"))
            .ok()?;
        request.files = Some(DirFiles::for_plan(&self.plan));
        Some(request)
    }

    pub(super) fn path(&self) -> &Path {
        &self.plan
    }
}

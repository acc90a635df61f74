//! The example at the end of each subcommand's long help (`--help`, not `-h`); a test
//! checks that each names its own subcommand and only flags that subcommand takes.

pub(super) const DEMO: &str = "Examples:
  crescendo-controller demo
  crescendo-controller demo --agents 2 --duration 10s --out demo-report
  crescendo-controller demo --set load.max_in_flight=20";
pub(super) const RUN: &str = "Examples:
  crescendo-controller run my-plan.toml --local-agents 2
  crescendo-controller run my-plan.toml --local-agents 2 --set 'load.stages[0].duration=30s'
  crescendo-controller run plans/flow-update.toml --agents 4 --listen 0.0.0.0:7700 --out reports";
pub(super) const PROBE: &str = "Examples:
  crescendo-controller probe plans/flow-update.toml --agents 2 --duration 60s";
pub(super) const INIT: &str = "Examples:
  crescendo-controller init my-plan.toml
  crescendo-controller init architect.toml --template architect";
pub(super) const VALIDATE: &str = "Examples:
  crescendo-controller validate plans/flow-update.toml
  crescendo-controller validate my-plan.toml --set 'load.stages[0].target=40'";
pub(super) const COMPARE: &str = "Examples:
  crescendo-controller compare crescendo-out/RUN_A crescendo-out/RUN_B --tolerance 0.1";
pub(super) const REPORT: &str = "Examples:
  crescendo-controller report crescendo-out/RUN_ID";
pub(super) const HEALTH: &str = "Examples:
  crescendo-controller health --tcp 127.0.0.1:7700 --timeout 1s";
pub(super) const STATUS: &str = "Examples:
  crescendo-controller status --controller http://127.0.0.1:7700";
pub(super) const CANCEL: &str = "Examples:
  crescendo-controller cancel --controller http://127.0.0.1:7700 --reason \"API on fire\"";
pub(super) const CERTS: &str = "Examples:
  crescendo-controller certs --out pki --controller-name ctl.example --agent agent-1 --agent agent-2";
pub(super) const SERVE: &str = "Examples:
  crescendo-controller serve --data /var/lib/crescendo --listen 0.0.0.0:7700 --admin-listen 127.0.0.1:7701";
pub(super) const SUBMIT: &str = "Examples:
  crescendo-controller submit plans/flow-update.toml --agents 2 --wait --controller http://127.0.0.1:7701";
pub(super) const RUNS: &str = "Examples:
  crescendo-controller runs list --controller http://127.0.0.1:7701
  crescendo-controller runs show RUN_ID";
pub(super) const SCHEDULES: &str = "Examples:
  crescendo-controller schedules list --controller http://127.0.0.1:7701";
pub(super) const AGENTS: &str = "Examples:
  crescendo-controller agents list --controller http://127.0.0.1:7700";
pub(super) const WATCH: &str = "Examples:
  crescendo-controller watch RUN_ID --controller http://127.0.0.1:7701";

//! Checks that the deployment files under `deploy/` describe a fleet that can run: every
//! Kubernetes document parses into the Kubernetes API types with no unknown field, every
//! flag a container passes to a Crescendo binary exists in that binary's `--help`, and
//! the ports, selectors, replica counts and plan agree with each other.
//!
//! The tests in `tests/` run these checks on the repository's own `deploy/k8s` and
//! `deploy/compose`; each check returns every problem it finds, so one run lists them all.
//!
//! # Layout
//!
//! - [`manifest`]: YAML documents → [`manifest::Resource`] (Kubernetes API types from
//!   `k8s-openapi`) and the `kustomization.yaml` model; unknown kinds and unknown fields
//!   are errors.
//! - [`cli`]: the real binaries' `--help` text ([`cli::HelpCache`]) and argv checks
//!   ([`cli::check_argv`]), shared by the Kubernetes and Compose checks.
//! - [`fleet`]: cross-document checks on a Kubernetes base (workloads, containers,
//!   ports, probes, Services, NetworkPolicies); `run_check` adds the controller's run
//!   against the agents, their replicas and the plan.
//! - [`workload`]: Deployments and Jobs as [`workload::Workload`]s, and how Services
//!   and selectors reach them.
//! - [`compose`]: `docker-compose.yml` commands with `${VAR:-default}` expanded.

#![forbid(unsafe_code)]

pub mod cli;
pub mod compose;
pub mod fleet;
pub mod manifest;
mod run_check;
pub mod workload;

use std::path::PathBuf;

/// The workspace root (two levels above this crate's manifest).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().nth(2).map(PathBuf::from).unwrap_or(here)
}

/// The image every Crescendo container must run: `crescendo:<workspace version>`.
pub fn expected_image() -> String {
    format!("crescendo:{}", env!("CARGO_PKG_VERSION"))
}

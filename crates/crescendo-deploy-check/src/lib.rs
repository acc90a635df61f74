//! Checks that the deployment files under `deploy/` describe a fleet that can run: every
//! Kubernetes document parses into the Kubernetes API types with no unknown field, every
//! flag a container passes to a Crescendo binary exists in that binary's `--help`, and
//! the ports, selectors, replica counts and plan agree with each other.
//!
//! The tests in `tests/` run these checks on the repository's own `deploy/k8s`,
//! `deploy/k8s/service`, `deploy/compose` and `deploy/systemd`, and on copies with one
//! mistake each; each check returns every problem it finds, so one run lists them all.
//!
//! # Layout
//!
//! - [`manifest`]: YAML documents → [`manifest::Resource`] (Kubernetes API types from
//!   `k8s-openapi`) and the `kustomization.yaml` model; unknown kinds and unknown fields
//!   are errors.
//! - [`cli`]: the real binaries' `--help` text ([`cli::HelpCache`]) and argv checks
//!   ([`cli::check_argv`]), shared by the Kubernetes and Compose checks.
//! - [`base`]: one kustomize base on disk (`deploy/k8s`, `deploy/k8s/service`): the
//!   kustomization lists every manifest, every document parses, then [`fleet`].
//! - [`fleet`]: cross-document checks on a Kubernetes base (workloads, containers,
//!   ports, probes, Services, NetworkPolicies, Jobs that must not retry); then the one
//!   controller: `run_check` (a one-shot `run` against the agents, their replicas and
//!   the plan) or `serve_check` (a standing `serve`: one writer on a
//!   PersistentVolumeClaim, agents' `--labels`, `submit` Jobs' `--agents`,
//!   `--selector`, plan and admin token). `reach` is how agents and `submit` reach the
//!   controller (Service, NetworkPolicy); `plan_check` the plan a command names;
//!   `credentials` that tokens come from Secrets as files, never as literals.
//! - [`workload`]: Deployments, Jobs and CronJobs as [`workload::Workload`]s, and how
//!   Services and selectors reach them.
//! - [`compose`]: compose files: commands and health checks with `${VAR:-default}`
//!   expanded, checked like a container's argv, token files from Compose secrets,
//!   `serve --data` on a named volume.

#![forbid(unsafe_code)]

pub mod base;
pub mod cli;
pub mod compose;
mod credentials;
pub mod fleet;
pub mod manifest;
mod plan_check;
mod reach;
mod run_check;
mod serve_check;
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

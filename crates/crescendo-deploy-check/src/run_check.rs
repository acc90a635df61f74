//! The controller's `run` container against the rest of a Kubernetes base: the agents'
//! `--controller` URL and its Service, the replica counts against `--agents`, the
//! NetworkPolicies between them, and the plan the run names.

use std::path::Path;

use k8s_openapi::api::core::v1::Container;

use crate::cli;
use crate::manifest::{Document, Kustomization};
use crate::plan_check::check_plan;
use crate::reach::check_reaches;
use crate::workload::{Workload, argv};

/// The controller's one `run` container: its workload, the container and its argv.
pub(crate) type Controller<'w, 'd> = (&'w Workload<'d>, &'w Container, Vec<String>);

/// The containers of `workloads` that run `crescendo-controller <subcommand>`.
pub(crate) fn controllers<'w, 'd>(
    workloads: &'w [Workload<'d>],
    subcommand: &str,
) -> Vec<Controller<'w, 'd>> {
    workloads
        .iter()
        .flat_map(|w| w.spec.containers.iter().map(move |c| (w, c, argv(c))))
        .filter(|(_, _, a)| {
            cli::crescendo_binary(a) == Some("crescendo-controller")
                && cli::subcommand("crescendo-controller", a).as_deref() == Some(subcommand)
        })
        .collect()
}

/// The agent containers of `workloads`, with their workload and argv.
pub(crate) fn agents<'w, 'd>(
    workloads: &'w [Workload<'d>],
) -> Vec<(&'w Workload<'d>, &'w Container, Vec<String>)> {
    workloads
        .iter()
        .flat_map(|w| w.spec.containers.iter().map(move |c| (w, c, argv(c))))
        .filter(|(_, _, a)| cli::crescendo_binary(a) == Some("crescendo-agent"))
        .collect()
}

/// The controller's `run` against the agents, the Services, the policies and the plan.
pub(crate) fn check_run(
    dir: &Path,
    kustomization: &Kustomization,
    docs: &[Document],
    workloads: &[Workload<'_>],
    (controller, controller_container, run): &Controller<'_, '_>,
    out: &mut Vec<String>,
) {
    let agents = agents(workloads);
    let expected: Option<u32> = cli::flag_value(run, "--agents").and_then(|n| n.parse().ok());
    let replicas: i32 = agents.iter().map(|(w, _, _)| w.replicas).sum();
    if expected.map(i64::from) != Some(i64::from(replicas)) {
        out.push(format!(
            "{}: --agents {expected:?} but the agent workloads run {replicas} replica(s)",
            controller.doc
        ));
    }
    for (w, c, a) in &agents {
        let url = crate::workload::flag_or_env(c, a, "--controller", "CRESCENDO_CONTROLLER");
        check_reaches(docs, workloads, controller, w, "agent", url, out);
    }
    if let Some(path) = run.get(2) {
        check_plan(
            dir,
            kustomization,
            docs,
            workloads,
            controller,
            controller_container,
            path,
            expected,
            out,
        );
    }
}

//! The controller's `run` container against the rest of a Kubernetes base: the agents'
//! `--controller` URL and its Service, the replica counts against `--agents`, the
//! NetworkPolicies between them, and the plan the run names.

use std::path::Path;

use k8s_openapi::api::core::v1::Container;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::cli;
use crate::manifest::{Document, Kustomization, Resource};
use crate::workload::{Workload, argv, listeners, match_labels, selects, service_target};

/// The controller's `run` against the agents, the Services, the policies and the plan.
pub(crate) fn check_run(
    dir: &Path,
    kustomization: &Kustomization,
    docs: &[Document],
    workloads: &[Workload<'_>],
    out: &mut Vec<String>,
) {
    let runs: Vec<_> = workloads
        .iter()
        .flat_map(|w| w.spec.containers.iter().map(move |c| (w, c, argv(c))))
        .filter(|(_, _, a)| {
            cli::crescendo_binary(a) == Some("crescendo-controller")
                && cli::subcommand("crescendo-controller", a).as_deref() == Some("run")
        })
        .collect();
    let [(controller, controller_container, run)] = runs.as_slice() else {
        out.push(format!(
            "expected exactly one `crescendo-controller run` container, found {}",
            runs.len()
        ));
        return;
    };
    let agents: Vec<_> = workloads
        .iter()
        .flat_map(|w| w.spec.containers.iter().map(move |c| (w, argv(c))))
        .filter(|(_, a)| cli::crescendo_binary(a) == Some("crescendo-agent"))
        .collect();
    let expected: Option<u32> = cli::flag_value(run, "--agents").and_then(|n| n.parse().ok());
    let replicas: i32 = agents.iter().map(|(w, _)| w.replicas).sum();
    if expected.map(i64::from) != Some(i64::from(replicas)) {
        out.push(format!(
            "{}: --agents {expected:?} but the agent workloads run {replicas} replica(s)",
            controller.doc
        ));
    }
    for (w, a) in &agents {
        let Some(url) = cli::flag_value(a, "--controller") else {
            out.push(format!("{}: agent without --controller", w.doc));
            continue;
        };
        let Some((host, port)) = cli::url_host_port(url) else {
            out.push(format!("{}: --controller {url} is not an http URL", w.doc));
            continue;
        };
        match service_target(docs, workloads, &host, port) {
            Ok(targets) if targets.iter().any(|(l, _)| *l == controller.labels) => {}
            Ok(_) => out.push(format!(
                "{}: --controller {url} does not reach the controller's --listen port",
                w.doc
            )),
            Err(e) => out.push(format!("{}: --controller {url}: {e}", w.doc)),
        }
        check_agent_allowed(docs, controller, w, out);
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

/// Every policy that selects the controller must let this agent reach its port.
fn check_agent_allowed(
    docs: &[Document],
    controller: &Workload<'_>,
    agent: &Workload<'_>,
    out: &mut Vec<String>,
) {
    let listen: Vec<i32> = listeners(controller).map(|(_, l)| l).collect();
    for doc in docs {
        let Resource::NetworkPolicy(np) = &doc.resource else {
            continue;
        };
        let spec = np.spec.clone().unwrap_or_default();
        if !selects(
            &match_labels(spec.pod_selector.as_ref()),
            &controller.labels,
        ) {
            continue;
        }
        let allowed = spec.ingress.iter().flatten().any(|rule| {
            let from_agent = rule
                .from
                .iter()
                .flatten()
                .any(|peer| selects(&match_labels(peer.pod_selector.as_ref()), &agent.labels));
            let ports = rule.ports.as_deref().unwrap_or_default();
            let port_ok = ports.is_empty()
                || ports
                    .iter()
                    .any(|p| matches!(&p.port, Some(IntOrString::Int(n)) if listen.contains(n)));
            from_agent && port_ok
        });
        if !allowed {
            out.push(format!(
                "{doc}: does not let {} reach the controller's port {listen:?}",
                agent.doc
            ));
        }
    }
}

/// The plan file behind the controller's plan path: a mounted ConfigMap made by the
/// kustomization's configMapGenerator. It must load, split over `--agents`, and, when
/// its base_url names a Service of the base, match that Service's port.
#[allow(clippy::too_many_arguments)]
fn check_plan(
    dir: &Path,
    kustomization: &Kustomization,
    docs: &[Document],
    workloads: &[Workload<'_>],
    controller: &Workload<'_>,
    container: &Container,
    plan_path: &str,
    agents: Option<u32>,
    out: &mut Vec<String>,
) {
    let at = format!("{} plan {plan_path}", controller.doc);
    let Some((mount_dir, key)) = plan_path.rsplit_once('/') else {
        out.push(format!("{at}: not an absolute path"));
        return;
    };
    let mount = container
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path.trim_end_matches('/') == mount_dir);
    let config_map = mount.and_then(|m| {
        controller
            .spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == m.name)
            .and_then(|v| v.config_map.as_ref())
            .map(|c| c.name.clone())
    });
    let Some(config_map) = config_map else {
        out.push(format!("{at}: {mount_dir} is not a mounted ConfigMap"));
        return;
    };
    let file = kustomization
        .config_map_generator
        .iter()
        .filter(|g| g.name == config_map)
        .flat_map(|g| g.file_entries())
        .find(|(k, _)| *k == key)
        .map(|(_, path)| dir.join(path));
    let Some(file) = file else {
        out.push(format!(
            "{at}: no configMapGenerator {config_map} with a file {key}"
        ));
        return;
    };
    let plan = match crescendo_plan::load(&file) {
        Ok(plan) => plan,
        Err(e) => {
            out.push(format!("{at}: {e}"));
            return;
        }
    };
    if let Some(n) = agents
        && let Err(e) = crescendo_plan::split(&plan, n)
    {
        out.push(format!("{at}: cannot split over {n} agents: {e}"));
    }
    let base_url = plan.target.base_url.to_string();
    if let Some((host, port)) = cli::url_host_port(&base_url) {
        let is_service = docs
            .iter()
            .any(|d| matches!(d.resource, Resource::Service(_)) && d.resource.name() == host);
        if is_service {
            match service_target(docs, workloads, &host, port) {
                Ok(t) if !t.is_empty() => {}
                Ok(_) => out.push(format!(
                    "{at}: base_url {base_url} reaches no listening pod"
                )),
                Err(e) => out.push(format!("{at}: base_url {base_url}: {e}")),
            }
        }
    }
}

//! The plan a controller container names (`run PLAN`, `submit PLAN`): a file of a
//! mounted ConfigMap that the kustomization's configMapGenerator makes. It must load,
//! split over the agents the command asks for, and, when its `base_url` names a Service
//! of the base, reach a listening pod through it.

use std::path::Path;

use k8s_openapi::api::core::v1::Container;

use crate::cli;
use crate::manifest::{Document, Kustomization, Resource};
use crate::workload::{Workload, service_target};

/// The plan file behind the controller's plan path: a mounted ConfigMap made by the
/// kustomization's configMapGenerator. It must load, split over `--agents`, and, when
/// its base_url names a Service of the base, match that Service's port.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_plan(
    dir: &Path,
    kustomization: &Kustomization,
    docs: &[Document],
    workloads: &[Workload<'_>],
    workload: &Workload<'_>,
    container: &Container,
    plan_path: &str,
    agents: Option<u32>,
    out: &mut Vec<String>,
) {
    let at = format!("{} plan {plan_path}", workload.doc);
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
        workload
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

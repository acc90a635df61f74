//! The workloads of a Kubernetes base (Deployments, Jobs and CronJobs) and how Services
//! reach them: the vocabulary the cross-document checks (`fleet`, `run_check`,
//! `serve_check`, `credentials`) share.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec, Volume, VolumeMount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::cli;
use crate::manifest::{Document, Resource};

pub type Labels = BTreeMap<String, String>;

/// A Deployment, Job or CronJob: its pod template and how many pods run it.
#[derive(Debug)]
pub struct Workload<'a> {
    /// Where it is defined.
    pub doc: &'a Document,
    /// Pods at once (Deployment replicas, Job and CronJob parallelism; default 1).
    pub replicas: i32,
    /// The pod template's labels.
    pub labels: Labels,
    /// The pod template's spec.
    pub spec: &'a PodSpec,
}

/// The Deployments, Jobs and CronJobs among `docs` (ones without a pod spec are skipped).
pub fn workloads(docs: &[Document]) -> Vec<Workload<'_>> {
    docs.iter()
        .filter_map(|doc| {
            let (replicas, template) = match &doc.resource {
                Resource::Deployment(d) => {
                    let spec = &d.spec;
                    (spec.replicas.unwrap_or(1), &spec.template)
                }
                Resource::Job(j) => {
                    let spec = j.spec.as_ref()?;
                    (spec.parallelism.unwrap_or(1), &spec.template)
                }
                Resource::CronJob(c) => {
                    let spec = c.spec.job_template.spec.as_ref()?;
                    (spec.parallelism.unwrap_or(1), &spec.template)
                }
                _ => return None,
            };
            Some(Workload {
                doc,
                replicas,
                labels: template
                    .metadata
                    .as_ref()
                    .and_then(|m| m.labels.clone())
                    .unwrap_or_default(),
                spec: template.spec.as_ref()?,
            })
        })
        .collect()
}

/// `command` followed by `args`.
pub fn argv(c: &Container) -> Vec<String> {
    c.command
        .iter()
        .flatten()
        .chain(c.args.iter().flatten())
        .cloned()
        .collect()
}

/// The literal `value` of an environment variable (not one taken `valueFrom`).
pub fn env_literal<'a>(c: &'a Container, name: &str) -> Option<&'a str> {
    c.env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .and_then(|e| e.value.as_deref())
}

/// A flag's value in argv, or else the literal value of the variable clap reads it
/// from (`--data` or `CRESCENDO_DATA`).
pub fn flag_or_env<'a>(
    c: &'a Container,
    argv: &'a [String],
    flag: &str,
    env: &str,
) -> Option<&'a str> {
    cli::flag_value(argv, flag).or_else(|| env_literal(c, env))
}

/// The volume mount `path` lies on (the deepest one) and the pod volume behind it.
pub fn mount_of<'a>(
    w: &'a Workload<'_>,
    c: &'a Container,
    path: &str,
) -> Option<(&'a VolumeMount, Option<&'a Volume>)> {
    let mount = c
        .volume_mounts
        .iter()
        .flatten()
        .filter(|m| {
            let dir = m.mount_path.trim_end_matches('/');
            path == dir || path.starts_with(&format!("{dir}/"))
        })
        .max_by_key(|m| m.mount_path.trim_end_matches('/').len())?;
    let volume = w
        .spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name);
    Some((mount, volume))
}

/// A non-empty selector whose every pair is among `labels`.
pub fn selects(selector: &Labels, labels: &Labels) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

pub fn match_labels(s: Option<&LabelSelector>) -> Labels {
    s.and_then(|s| s.match_labels.clone()).unwrap_or_default()
}

/// A port number, or a named container port resolved in `c`.
pub fn resolve_port(c: &Container, port: &IntOrString) -> Option<i32> {
    match port {
        IntOrString::Int(n) => Some(*n),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| p.container_port),
    }
}

/// The containers of a workload that listen on a port, with that port.
pub fn listeners<'a>(w: &'a Workload<'_>) -> impl Iterator<Item = (&'a Container, i32)> {
    w.spec.containers.iter().filter_map(|c| {
        let port = cli::listen_port(&argv(c)).ok().flatten()?;
        Some((c, i32::from(port)))
    })
}

/// The Service named `host` and the workload port its `port` reaches.
pub fn service_target(
    docs: &[Document],
    workloads: &[Workload<'_>],
    host: &str,
    port: u16,
) -> Result<Vec<(Labels, i32)>, String> {
    let service = docs
        .iter()
        .find_map(|d| match &d.resource {
            Resource::Service(s) if d.resource.name() == host => Some(s),
            _ => None,
        })
        .ok_or_else(|| format!("no Service named {host}"))?;
    let spec = service.spec.clone().unwrap_or_default();
    let sp = spec
        .ports
        .iter()
        .flatten()
        .find(|p| p.port == i32::from(port))
        .ok_or_else(|| format!("Service {host} has no port {port}"))?;
    let target = sp.target_port.clone().unwrap_or(IntOrString::Int(sp.port));
    let selector = spec.selector.unwrap_or_default();
    Ok(workloads
        .iter()
        .filter(|w| selects(&selector, &w.labels))
        .flat_map(|w| {
            listeners(w)
                .filter(|(c, l)| resolve_port(c, &target) == Some(*l))
                .map(|(_, l)| (w.labels.clone(), l))
                .collect::<Vec<_>>()
        })
        .collect())
}

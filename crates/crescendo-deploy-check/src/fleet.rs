//! Cross-document checks on a Kubernetes base: what no single document can show.
//!
//! [`check`] looks at the workloads (Deployments, Jobs and CronJobs) and their
//! containers, and at how Services, NetworkPolicies, the agents' `--controller` URL and
//! the controller refer to each other. A base has one controller: a one-shot `run`
//! (`run_check`: `--agents` against the replicas, the plan) or a standing `serve`
//! (`serve_check`: single writer, PersistentVolumeClaim, `submit` Jobs). Every problem
//! is one line naming the file and object; an empty list means the base is consistent.

use std::path::Path;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::cli::{self, HelpCache};
use crate::manifest::{Document, Kustomization, Resource};
use crate::run_check::{check_run, controllers};
use crate::serve_check::check_serve;
pub use crate::workload::{Workload, argv, workloads};
use crate::workload::{listeners, match_labels, resolve_port, selects};

/// Checks a base: `dir` holds `kustomization.yaml` and the files of `docs`.
pub fn check(
    dir: &Path,
    kustomization: &Kustomization,
    docs: &[Document],
    help: &mut HelpCache,
) -> Vec<String> {
    let mut problems = Vec::new();
    let workloads = workloads(docs);
    for w in &workloads {
        for c in &w.spec.containers {
            check_container(w, c, help, &mut problems);
        }
    }
    check_one_shot_jobs(&workloads, &mut problems);
    check_services(docs, &workloads, &mut problems);
    check_network_policies(docs, &workloads, &mut problems);
    let runs = controllers(&workloads, "run");
    let serves = controllers(&workloads, "serve");
    match (runs.as_slice(), serves.as_slice()) {
        ([run], []) => check_run(dir, kustomization, docs, &workloads, run, &mut problems),
        ([], [serve]) => check_serve(dir, kustomization, docs, &workloads, serve, &mut problems),
        _ => problems.push(format!(
            "expected exactly one `crescendo-controller run` or `crescendo-controller serve` \
             container, found {} run and {} serve",
            runs.len(),
            serves.len()
        )),
    }
    problems
}

/// A Job or CronJob running the controller (`run`, `submit`) is a load test: a failed
/// one is never started again behind the operator's back, and a CronJob never starts a
/// second while one still goes.
fn check_one_shot_jobs(workloads: &[Workload<'_>], out: &mut Vec<String>) {
    for w in workloads {
        let runs_controller = w
            .spec
            .containers
            .iter()
            .any(|c| cli::crescendo_binary(&argv(c)) == Some("crescendo-controller"));
        let (backoff_limit, concurrency) = match &w.doc.resource {
            Resource::Job(j) => (j.spec.as_ref().and_then(|s| s.backoff_limit), None),
            Resource::CronJob(c) => {
                let job = c.spec.job_template.spec.as_ref();
                (
                    job.and_then(|s| s.backoff_limit),
                    Some(c.spec.concurrency_policy.as_deref()),
                )
            }
            _ => continue,
        };
        if !runs_controller {
            continue;
        }
        if backoff_limit != Some(0) || w.spec.restart_policy.as_deref() != Some("Never") {
            out.push(format!(
                "{}: a load test is never retried behind your back: backoffLimit: 0 and \
                 restartPolicy: Never (found {backoff_limit:?}, {:?})",
                w.doc, w.spec.restart_policy
            ));
        }
        if let Some(policy) = concurrency
            && policy != Some("Forbid")
        {
            out.push(format!(
                "{}: concurrencyPolicy must be Forbid: a rehearsal still going when the \
                 next is due would queue a second one for the same agents (found {policy:?})",
                w.doc
            ));
        }
    }
}

fn check_container(w: &Workload<'_>, c: &Container, help: &mut HelpCache, out: &mut Vec<String>) {
    let at = format!("{} container {}", w.doc, c.name);
    let argv = argv(c);
    out.extend(cli::check_argv(help, &at, &argv));
    crate::credentials::check_container(&at, w, c, &argv, out);
    let image = c.image.as_deref().unwrap_or("");
    let expected = crate::expected_image();
    let binary = cli::crescendo_binary(&argv);
    match binary {
        Some(_) if image != expected => {
            out.push(format!("{at}: image {image:?}, expected {expected:?}"));
        }
        None if image.starts_with("crescendo:") => out.push(format!(
            "{at}: runs the crescendo image but not one of {:?} (command {argv:?})",
            cli::BINARIES
        )),
        _ => {}
    }
    if c.image_pull_policy.as_deref() != Some("IfNotPresent") {
        out.push(format!("{at}: imagePullPolicy must be IfNotPresent"));
    }
    let sc = c.security_context.clone().unwrap_or_default();
    if sc.run_as_non_root != Some(true)
        || sc.run_as_user != Some(10001)
        || sc.read_only_root_filesystem != Some(true)
        || sc.allow_privilege_escalation != Some(false)
    {
        out.push(format!(
            "{at}: securityContext needs runAsNonRoot: true, runAsUser: 10001, \
             readOnlyRootFilesystem: true, allowPrivilegeEscalation: false"
        ));
    }
    let r = c.resources.clone().unwrap_or_default();
    for (what, map) in [("requests", r.requests), ("limits", r.limits)] {
        let map = map.unwrap_or_default();
        if !map.contains_key("cpu") || !map.contains_key("memory") {
            out.push(format!("{at}: resources.{what} needs cpu and memory"));
        }
    }
    let listen = match cli::listen_port(&argv) {
        Ok(p) => p.map(i32::from),
        Err(e) => {
            out.push(format!("{at}: {e}"));
            None
        }
    };
    if binary.is_some() {
        check_ports(&at, c, listen, out);
    }
    if binary.is_some() {
        check_mounts(&at, w, c, &argv, out);
    }
}

fn check_ports(at: &str, c: &Container, listen: Option<i32>, out: &mut Vec<String>) {
    for p in c.ports.iter().flatten() {
        if Some(p.container_port) != listen {
            out.push(format!(
                "{at}: containerPort {} but the binary listens on {listen:?} (--listen)",
                p.container_port
            ));
        }
    }
    let probes: [(&str, Option<&Probe>); 3] = [
        ("readinessProbe", c.readiness_probe.as_ref()),
        ("livenessProbe", c.liveness_probe.as_ref()),
        ("startupProbe", c.startup_probe.as_ref()),
    ];
    for (what, probe) in probes {
        let Some(probe) = probe else { continue };
        if probe.exec.is_some() || probe.grpc.is_some() {
            out.push(format!(
                "{at}: {what} uses exec/grpc, which the FROM scratch image and the \
                 binaries cannot answer; use tcpSocket or flowsim's httpGet /healthz"
            ));
        }
        let port = probe
            .tcp_socket
            .as_ref()
            .map(|t| &t.port)
            .or(probe.http_get.as_ref().map(|h| &h.port));
        if let Some(port) = port {
            let resolved = resolve_port(c, port);
            if resolved.is_none() || resolved != listen {
                out.push(format!(
                    "{at}: {what} probes port {port:?} ({resolved:?}) but the binary \
                     listens on {listen:?}"
                ));
            }
        }
    }
}

fn check_mounts(at: &str, w: &Workload<'_>, c: &Container, argv: &[String], out: &mut Vec<String>) {
    let mounts = c.volume_mounts.clone().unwrap_or_default();
    let mounted = |path: &str, writable: bool| {
        mounts.iter().any(|m| {
            let under = path == m.mount_path
                || path.starts_with(&format!("{}/", m.mount_path.trim_end_matches('/')));
            under && (!writable || m.read_only != Some(true))
        })
    };
    if let Some(dir) = cli::flag_value(argv, "--out")
        && !mounted(dir, true)
    {
        out.push(format!(
            "{at}: --out {dir} is not on a writable volume (the root filesystem is read-only)"
        ));
    }
    for m in &mounts {
        let defined = w.spec.volumes.iter().flatten().any(|v| v.name == m.name);
        if !defined {
            out.push(format!("{at}: volumeMount {} has no volume", m.name));
        }
    }
}

fn check_services(docs: &[Document], workloads: &[Workload<'_>], out: &mut Vec<String>) {
    for doc in docs {
        let Resource::Service(s) = &doc.resource else {
            continue;
        };
        let spec = s.spec.clone().unwrap_or_default();
        let selector = spec.selector.unwrap_or_default();
        let selected: Vec<_> = workloads
            .iter()
            .filter(|w| selects(&selector, &w.labels))
            .collect();
        if selected.is_empty() {
            out.push(format!("{doc}: selector {selector:?} selects no workload"));
        }
        for p in spec.ports.iter().flatten() {
            let target = p.target_port.clone().unwrap_or(IntOrString::Int(p.port));
            for w in &selected {
                let ok = listeners(w).any(|(c, listen)| resolve_port(c, &target) == Some(listen));
                if !ok {
                    out.push(format!(
                        "{doc}: port {} → targetPort {target:?} is no --listen port of {}",
                        p.port, w.doc
                    ));
                }
            }
        }
    }
}

fn check_network_policies(docs: &[Document], workloads: &[Workload<'_>], out: &mut Vec<String>) {
    for doc in docs {
        let Resource::NetworkPolicy(np) = &doc.resource else {
            continue;
        };
        let spec = np.spec.clone().unwrap_or_default();
        let selector = match_labels(spec.pod_selector.as_ref());
        let selected: Vec<_> = workloads
            .iter()
            .filter(|w| selects(&selector, &w.labels))
            .collect();
        if selected.is_empty() {
            out.push(format!(
                "{doc}: podSelector {selector:?} selects no workload"
            ));
        }
        for rule in spec.ingress.iter().flatten() {
            for peer in rule.from.iter().flatten() {
                let from = match_labels(peer.pod_selector.as_ref());
                if !workloads.iter().any(|w| selects(&from, &w.labels)) {
                    out.push(format!(
                        "{doc}: from podSelector {from:?} selects no workload"
                    ));
                }
            }
            for port in rule.ports.iter().flatten().filter_map(|p| p.port.as_ref()) {
                for w in &selected {
                    if !listeners(w).any(|(c, l)| resolve_port(c, port) == Some(l)) {
                        out.push(format!(
                            "{doc}: ingress port {port:?} is no --listen port of {}",
                            w.doc
                        ));
                    }
                }
            }
        }
    }
}

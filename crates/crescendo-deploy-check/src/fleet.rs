//! Cross-document checks on a Kubernetes base: what no single document can show.
//!
//! [`check`] looks at the workloads (Deployments and Jobs) and their containers, and
//! at how Services, NetworkPolicies, the agents' `--controller` URL, the controller's
//! `--agents`, the replica counts and the plan refer to each other. Every problem is
//! one line naming the file and object; an empty list means the base is consistent.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::core::v1::{Container, PodSpec, Probe};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::cli::{self, HelpCache};
use crate::manifest::{Document, Kustomization, Resource};

type Labels = BTreeMap<String, String>;

/// A Deployment or Job: its pod template and how many pods run it.
#[derive(Debug)]
pub struct Workload<'a> {
    /// Where it is defined.
    pub doc: &'a Document,
    /// Pods at once (Deployment replicas, Job parallelism; default 1).
    pub replicas: i32,
    /// The pod template's labels.
    pub labels: Labels,
    /// The pod template's spec.
    pub spec: &'a PodSpec,
}

/// The Deployments and Jobs among `docs` (ones without a pod spec are skipped).
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

/// A non-empty selector whose every pair is among `labels`.
fn selects(selector: &Labels, labels: &Labels) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn match_labels(s: Option<&LabelSelector>) -> Labels {
    s.and_then(|s| s.match_labels.clone()).unwrap_or_default()
}

/// A port number, or a named container port resolved in `c`.
fn resolve_port(c: &Container, port: &IntOrString) -> Option<i32> {
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
    check_services(docs, &workloads, &mut problems);
    check_network_policies(docs, &workloads, &mut problems);
    check_run(dir, kustomization, docs, &workloads, &mut problems);
    problems
}

fn check_container(w: &Workload<'_>, c: &Container, help: &mut HelpCache, out: &mut Vec<String>) {
    let at = format!("{} container {}", w.doc, c.name);
    let argv = argv(c);
    out.extend(cli::check_argv(help, &at, &argv));
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

/// The containers of a workload that listen on a port, with that port.
fn listeners<'a>(w: &'a Workload<'_>) -> impl Iterator<Item = (&'a Container, i32)> {
    w.spec.containers.iter().filter_map(|c| {
        let port = cli::listen_port(&argv(c)).ok().flatten()?;
        Some((c, i32::from(port)))
    })
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

/// The Service named `host` and the workload port its `port` reaches.
fn service_target(
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

/// The controller's `run` against the agents, the Services, the policies and the plan.
fn check_run(
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

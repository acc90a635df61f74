//! The controller's `serve` container against the rest of a Kubernetes base.
//!
//! `serve` keeps its run history in SQLite (WAL mode) under `--data`, a store with one
//! writer: so a Deployment of one replica with the `Recreate` strategy (a rolling
//! update would run two over the same files), `--data` on a writable mount of a
//! ReadWriteOnce PersistentVolumeClaim of the base (not the pod's own storage, not a
//! shared file system), and probes on its port. Every agent and every `submit` reaches
//! it through its Service and the NetworkPolicies; a `submit`'s `--agents` and
//! `--selector` find that many agent replicas whose `--labels` carry the selector, its
//! plan loads and splits over them, and it brings the admin token from a Secret.

use std::path::Path;

use crescendo_plan::labels::{Labels, parse_labels};
use k8s_openapi::api::core::v1::Container;

use crate::cli;
use crate::manifest::{Document, Kustomization, Resource};
use crate::plan_check::check_plan;
use crate::reach::check_reaches;
use crate::run_check::{Controller, agents, controllers};
use crate::workload::{Workload, flag_or_env, mount_of};

/// The variable the admin commands read the admin token from.
const ADMIN_TOKEN_ENV: &str = "CRESCENDO_ADMIN_TOKEN";

/// The agents a run can be placed on: each agent workload's labels and replicas.
type Pool = Vec<(Labels, i32)>;

/// The controller's `serve` against its storage, the agents, the submitting Jobs and
/// the policies.
pub(crate) fn check_serve(
    dir: &Path,
    kustomization: &Kustomization,
    docs: &[Document],
    workloads: &[Workload<'_>],
    serve: &Controller<'_, '_>,
    out: &mut Vec<String>,
) {
    let (controller, container, argv) = serve;
    let at = format!("{} container {}", controller.doc, container.name);
    check_single_writer(controller, out);
    if container.readiness_probe.is_none() || container.liveness_probe.is_none() {
        out.push(format!(
            "{at}: `serve` is a standing service: it needs a readinessProbe and a \
             livenessProbe on its --listen port"
        ));
    }
    check_data(docs, controller, container, argv, &at, out);
    let agents = agents(workloads);
    if agents.is_empty() {
        out.push(format!("{at}: no agent workload attaches to `serve`"));
    }
    let mut pool = Pool::new();
    for (w, c, a) in &agents {
        let url = flag_or_env(c, a, "--controller", "CRESCENDO_CONTROLLER");
        check_reaches(docs, workloads, controller, w, "agent", url, out);
        let text = flag_or_env(c, a, "--labels", "CRESCENDO_AGENT_LABELS").unwrap_or("");
        match parse_labels(text) {
            Ok(labels) => pool.push((labels, w.replicas)),
            Err(e) => out.push(format!(
                "{} container {}: --labels {text:?}: {e}",
                w.doc, c.name
            )),
        }
    }
    let admin_token = cli::flag_value(argv, "--admin-token-file").is_some();
    for (w, c, a) in controllers(workloads, "submit") {
        let url = flag_or_env(c, &a, "--controller", "CRESCENDO_CONTROLLER");
        check_reaches(docs, workloads, controller, w, "submit", url, out);
        check_submit(
            dir,
            kustomization,
            docs,
            workloads,
            &pool,
            admin_token,
            (w, c, &a),
            out,
        );
    }
}

/// One replica, replaced with `Recreate`: never two writers on the SQLite files.
fn check_single_writer(controller: &Workload<'_>, out: &mut Vec<String>) {
    let Resource::Deployment(d) = &controller.doc.resource else {
        out.push(format!(
            "{}: `serve` is a standing service: run it as a Deployment",
            controller.doc
        ));
        return;
    };
    let strategy = d.spec.strategy.as_ref().and_then(|s| s.type_.as_deref());
    if controller.replicas != 1 || strategy != Some("Recreate") {
        out.push(format!(
            "{}: `serve` keeps SQLite under --data, which has one writer: it needs \
             replicas: 1 and strategy Recreate (found {} replica(s), strategy {strategy:?})",
            controller.doc, controller.replicas
        ));
    }
}

/// `--data` on a writable mount of a single-node PersistentVolumeClaim of the base.
fn check_data(
    docs: &[Document],
    controller: &Workload<'_>,
    container: &Container,
    argv: &[String],
    at: &str,
    out: &mut Vec<String>,
) {
    let Some(data) = flag_or_env(container, argv, "--data", "CRESCENDO_DATA") else {
        out.push(format!("{at}: `serve` without --data"));
        return;
    };
    let Some((mount, volume)) = mount_of(controller, container, data) else {
        out.push(format!(
            "{at}: --data {data} is on no volume (the root filesystem is read-only)"
        ));
        return;
    };
    if mount.read_only == Some(true) {
        out.push(format!("{at}: --data {data} is on a read-only mount"));
    }
    // A mount without a volume is reported by the mount check.
    let Some(volume) = volume else { return };
    let Some(claim) = &volume.persistent_volume_claim else {
        out.push(format!(
            "{at}: --data {data} is on volume {}, which is not a PersistentVolumeClaim: \
             the run history would go with the pod",
            volume.name
        ));
        return;
    };
    let found = docs.iter().find_map(|d| match &d.resource {
        Resource::PersistentVolumeClaim(p) if d.resource.name() == claim.claim_name => Some((d, p)),
        _ => None,
    });
    let Some((doc, pvc)) = found else {
        out.push(format!(
            "{at}: --data {data}: claim {} is no PersistentVolumeClaim of the base",
            claim.claim_name
        ));
        return;
    };
    let spec = pvc.spec.clone().unwrap_or_default();
    let modes = spec.access_modes.unwrap_or_default();
    let single_node = |m: &String| m == "ReadWriteOnce" || m == "ReadWriteOncePod";
    if modes.is_empty() || !modes.iter().all(single_node) {
        out.push(format!(
            "{doc}: accessModes {modes:?}: SQLite in WAL mode needs a volume one node \
             mounts (ReadWriteOnce or ReadWriteOncePod), not a shared file system"
        ));
    }
    if spec.volume_mode.as_deref() == Some("Block") {
        out.push(format!(
            "{doc}: volumeMode Block: --data needs a file system"
        ));
    }
    let requests = spec.resources.and_then(|r| r.requests).unwrap_or_default();
    if !requests.contains_key("storage") {
        out.push(format!("{doc}: resources.requests.storage is missing"));
    }
}

/// A `submit`: its admin token, its agents against the pool, its plan.
#[allow(clippy::too_many_arguments)]
fn check_submit(
    dir: &Path,
    kustomization: &Kustomization,
    docs: &[Document],
    workloads: &[Workload<'_>],
    pool: &Pool,
    admin_token: bool,
    (w, c, argv): (&Workload<'_>, &Container, &[String]),
    out: &mut Vec<String>,
) {
    let at = format!("{} container {}", w.doc, c.name);
    let from_secret = c.env.iter().flatten().any(|e| {
        e.name == ADMIN_TOKEN_ENV
            && e.value_from
                .as_ref()
                .is_some_and(|v| v.secret_key_ref.is_some())
    });
    if admin_token && !from_secret {
        out.push(format!(
            "{at}: the service asks for an admin token (--admin-token-file): set \
             {ADMIN_TOKEN_ENV} from the Secret (valueFrom.secretKeyRef)"
        ));
    }
    let agents = match cli::flag_value(argv, "--agents").map(str::parse::<u32>) {
        None => 1,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            out.push(format!("{at}: --agents must be a positive number"));
            return;
        }
    };
    let selector = cli::flag_value(argv, "--selector").unwrap_or("");
    match parse_labels(selector) {
        Err(e) => out.push(format!("{at}: --selector {selector:?}: {e}")),
        Ok(wanted) => {
            let carrying: i32 = pool
                .iter()
                .filter(|(labels, _)| wanted.iter().all(|(k, v)| labels.get(k) == Some(v)))
                .map(|(_, replicas)| replicas)
                .sum();
            if i64::from(carrying) < i64::from(agents) {
                out.push(format!(
                    "{at}: --agents {agents} --selector {selector:?} but only {carrying} \
                     agent replica(s) carry those labels: the run would end not-started"
                ));
            }
        }
    }
    match argv.get(2) {
        Some(plan) if !plan.starts_with('-') => check_plan(
            dir,
            kustomization,
            docs,
            workloads,
            w,
            c,
            plan,
            Some(agents),
            out,
        ),
        _ => out.push(format!(
            "{at}: the plan must follow `submit` (submit PLAN --agents N …)"
        )),
    }
}

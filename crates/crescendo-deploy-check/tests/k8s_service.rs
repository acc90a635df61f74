//! deploy/k8s/service, the controller as a service: `serve` in a one-replica Recreate
//! Deployment with --data on a PersistentVolumeClaim, labelled agents, a CronJob that
//! submits a plan. Every document parses with no unknown field, every flag is in the
//! real binaries' --help, and the pieces agree (crescendo_deploy_check::base); mutated
//! copies show each kind of mistake is caught.

mod common;

use std::path::PathBuf;

use common::{assert_caught, fail_on, help, rendered};
use crescendo_deploy_check::manifest::Resource;
use crescendo_deploy_check::{base, workspace_root};

fn service_dir() -> PathBuf {
    workspace_root().join("deploy/k8s/service")
}

#[test]
fn every_document_parses_and_the_service_is_consistent() {
    let dir = service_dir();
    fail_on(&base::check(&dir, &mut help()));
}

#[test]
fn mistakes_are_caught() {
    let mut help = help();
    let cases = [
        // (name, file, from, to, a fragment of the expected problem)
        (
            "svc-serve-flag",
            "controller-deployment.yaml",
            "--keep-days=90",
            "--keep-day=90",
            "`crescendo-controller serve` has no flag --keep-day",
        ),
        (
            "svc-data-flag",
            "controller-deployment.yaml",
            "--data=/var/lib/crescendo",
            "--dta=/var/lib/crescendo",
            "has no flag --dta",
        ),
        (
            "svc-agent-labels-flag",
            "agent-deployment.yaml",
            "--labels=pool=k8s",
            "--label=pool=k8s",
            "`crescendo-agent` has no flag --label",
        ),
        (
            "svc-submit-flag",
            "submit-cronjob.yaml",
            "--selector=pool=k8s",
            "--selecter=pool=k8s",
            "`crescendo-controller submit` has no flag --selecter",
        ),
        (
            "svc-wait-flag",
            "submit-cronjob.yaml",
            "- --wait",
            "- --wiat",
            "has no flag --wiat",
        ),
        (
            "svc-subcommand",
            "controller-deployment.yaml",
            "- serve",
            "- serv",
            "crescendo-controller serv --help failed",
        ),
        (
            "svc-rolling",
            "controller-deployment.yaml",
            "type: Recreate",
            "type: RollingUpdate",
            "strategy Some(\"RollingUpdate\")",
        ),
        (
            "svc-replicas",
            "controller-deployment.yaml",
            "replicas: 1",
            "replicas: 2",
            "found 2 replica(s)",
        ),
        (
            "svc-data-off-volume",
            "controller-deployment.yaml",
            "--data=/var/lib/crescendo",
            "--data=/var/lib/crescendo-data",
            "--data /var/lib/crescendo-data is on no volume",
        ),
        (
            "svc-data-emptydir",
            "controller-deployment.yaml",
            "persistentVolumeClaim:\n            claimName: crescendo-controller-data",
            "emptyDir: {}",
            "which is not a PersistentVolumeClaim",
        ),
        (
            "svc-claim-name",
            "controller-deployment.yaml",
            "claimName: crescendo-controller-data",
            "claimName: crescendo-data",
            "claim crescendo-data is no PersistentVolumeClaim of the base",
        ),
        (
            "svc-claim-shared",
            "controller-data-pvc.yaml",
            "accessModes: [ReadWriteOnce]",
            "accessModes: [ReadWriteMany]",
            "SQLite in WAL mode needs a volume one node mounts",
        ),
        (
            "svc-claim-field",
            "controller-data-pvc.yaml",
            "accessModes:",
            "accesModes:",
            "unknown field(s) /spec/accesModes",
        ),
        (
            "svc-cron-field",
            "submit-cronjob.yaml",
            "concurrencyPolicy: Forbid",
            "concurrencyPolicy: Forbid\n  startingDeadline: 60",
            "unknown field(s) /spec/startingDeadline",
        ),
        (
            "svc-cron-overlap",
            "submit-cronjob.yaml",
            "concurrencyPolicy: Forbid",
            "concurrencyPolicy: Allow",
            "concurrencyPolicy must be Forbid",
        ),
        (
            "svc-cron-retry",
            "submit-cronjob.yaml",
            "restartPolicy: Never",
            "restartPolicy: OnFailure",
            "never retried behind your back",
        ),
        (
            "svc-no-probe",
            "controller-deployment.yaml",
            "readinessProbe:",
            "startupProbe:",
            "it needs a readinessProbe and a livenessProbe",
        ),
        (
            "svc-selector",
            "submit-cronjob.yaml",
            "--selector=pool=k8s",
            "--selector=pool=gpu",
            "--agents 3 --selector \"pool=gpu\" but only 0 agent replica(s) carry",
        ),
        (
            "svc-too-many",
            "submit-cronjob.yaml",
            "--agents=3",
            "--agents=4",
            "--agents 4 --selector \"pool=k8s\" but only 3 agent replica(s)",
        ),
        (
            "svc-bad-labels",
            "agent-deployment.yaml",
            "--labels=pool=k8s",
            "--labels=pool:k8s",
            "expected key=value, got `pool:k8s`",
        ),
        (
            "svc-submit-url",
            "submit-cronjob.yaml",
            "--controller=http://crescendo-controller:7700",
            "--controller=http://crescendo-controller:7070",
            "Service crescendo-controller has no port 7070",
        ),
        (
            "svc-submit-blocked",
            "networkpolicy.yaml",
            "app.kubernetes.io/component: submit",
            "app.kubernetes.io/component: cli",
            "from podSelector",
        ),
        (
            "svc-admin-token",
            "submit-cronjob.yaml",
            "name: CRESCENDO_ADMIN_TOKEN",
            "name: CRESCENDO_ADMIN_TOKN",
            "set CRESCENDO_ADMIN_TOKEN from the Secret",
        ),
        (
            "svc-admin-literal",
            "submit-cronjob.yaml",
            "valueFrom:\n                    secretKeyRef:\n                      name: crescendo-fleet\n                      key: admin-token",
            "value: hunter2",
            "env CRESCENDO_ADMIN_TOKEN is a literal value",
        ),
        (
            "svc-enrol-file",
            "agent-deployment.yaml",
            "--enrol-token-file=/etc/crescendo/fleet/enrol-token",
            "--enrol-token-file=/etc/crescendo/enrol-token",
            "--enrol-token-file /etc/crescendo/enrol-token is on no volume",
        ),
        (
            "svc-enrol-item",
            "agent-deployment.yaml",
            "- key: enrol-token\n                path: enrol-token",
            "- key: admin-token\n                path: admin-token",
            "has no item with path enrol-token",
        ),
        (
            "svc-plan-mount",
            "submit-cronjob.yaml",
            "- /plans/nightly.toml",
            "- /etc/plans/nightly.toml",
            "/etc/plans is not a mounted ConfigMap",
        ),
        (
            "svc-plan",
            "plans/nightly.toml",
            "policy = \"coordinated\"",
            "policy = \"sometimes\"",
            "backoff.policy",
        ),
        (
            "svc-unlisted",
            "kustomization.yaml",
            "  - submit-cronjob.yaml\n",
            "",
            "submit-cronjob.yaml is neither in kustomization.yaml",
        ),
    ];
    assert_caught(&service_dir(), &cases, |dir, _| base::check(dir, &mut help));
}

/// What `kubectl apply -k deploy/k8s/service` sends parses too, and kustomize rewrote
/// the CronJob's plan ConfigMap to its hashed name.
#[test]
fn rendered_kustomization_parses() {
    let (text, docs) = rendered(&service_dir());
    let plan_map = docs
        .iter()
        .filter(|d| matches!(d.resource, Resource::ConfigMap(_)))
        .map(|d| d.resource.name().to_owned())
        .find(|n| n.starts_with("crescendo-nightly-plan-"))
        .expect("no generated crescendo-nightly-plan-<hash> ConfigMap");
    let cron_job = docs
        .iter()
        .find_map(|d| match &d.resource {
            Resource::CronJob(c) => Some(c),
            _ => None,
        })
        .expect("no CronJob");
    let volumes = cron_job
        .spec
        .job_template
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .volumes
        .as_ref()
        .unwrap();
    let mounted = volumes
        .iter()
        .filter_map(|v| v.config_map.as_ref())
        .map(|c| c.name.as_str());
    assert_eq!(mounted.collect::<Vec<_>>(), [plan_map.as_str()]);
    assert!(
        docs.iter()
            .any(|d| matches!(d.resource, Resource::PersistentVolumeClaim(_)))
    );
    assert!(!text.contains("namespace: default"));
}

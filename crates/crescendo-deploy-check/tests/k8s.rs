//! deploy/k8s, the one-shot base: every YAML document parses into the Kubernetes API
//! types with no unknown field, the kustomization lists every manifest, and the base is
//! consistent with the real binaries' command lines (crescendo_deploy_check::base).
//! Mutated copies of the base show that each kind of mistake is caught.

mod common;

use std::path::PathBuf;

use common::{assert_caught, fail_on, help, rendered};
use crescendo_deploy_check::{base, manifest, workspace_root};

fn k8s_dir() -> PathBuf {
    workspace_root().join("deploy/k8s")
}

#[test]
fn every_document_parses_and_the_base_is_consistent() {
    let dir = k8s_dir();
    let docs = manifest::yaml_files(&dir).unwrap();
    assert!(docs.len() >= 7, "expected the whole base, found {docs:?}");
    // The service variant inside it is a base of its own (tests/k8s_service.rs).
    assert!(!docs.iter().any(|d| d.starts_with(dir.join("service"))));
    fail_on(&base::check(&dir, &mut help()));
}

#[test]
fn mistakes_are_caught() {
    let mut help = help();
    let cases = [
        // (name, file, from, to, a fragment of the expected problem)
        (
            "k8s-flag",
            "agent-deployment.yaml",
            "--controller=",
            "--controler=",
            "has no flag --controler",
        ),
        (
            "k8s-field",
            "controller-job.yaml",
            "readinessProbe:",
            "readinesProbe:",
            "unknown field(s) /spec/template/spec/containers/0/readinesProbe",
        ),
        (
            "k8s-kind",
            "namespace.yaml",
            "kind: Namespace",
            "kind: Namespaces",
            "unknown kind v1/Namespaces",
        ),
        (
            "k8s-replicas",
            "agent-deployment.yaml",
            "replicas: 3",
            "replicas: 2",
            "--agents Some(3) but the agent workloads run 2",
        ),
        (
            "k8s-probe",
            "controller-job.yaml",
            "--listen=0.0.0.0:7700",
            "--listen=0.0.0.0:7701",
            "but the binary listens on Some(7701)",
        ),
        (
            "k8s-policy",
            "networkpolicy.yaml",
            "port: 7700",
            "port: 7701",
            "ingress port Int(7701) is no --listen port",
        ),
        (
            "k8s-url",
            "agent-deployment.yaml",
            "crescendo-controller:7700",
            "crescendo-controller:7701",
            "Service crescendo-controller has no port 7701",
        ),
        (
            "k8s-image",
            "flowsim.yaml",
            "image: crescendo:0.1.0",
            "image: crescendo:latest",
            "image \"crescendo:latest\"",
        ),
        (
            "k8s-out",
            "controller-job.yaml",
            "--out=/out",
            "--out=/reports",
            "--out /reports is not on a writable volume",
        ),
        (
            "k8s-plan",
            "plans/plan.toml",
            "policy = \"coordinated\"",
            "policy = \"sometimes\"",
            "backoff.policy",
        ),
        (
            "k8s-unlisted",
            "kustomization.yaml",
            "  - flowsim.yaml\n",
            "",
            "flowsim.yaml is neither in kustomization.yaml",
        ),
        (
            "k8s-token-file",
            "controller-job.yaml",
            "--admin-token-file=/etc/crescendo/fleet/admin-token",
            "--admin-token-file=/etc/crescendo/fleet/admin.token",
            "the Secret volume fleet-tokens has no item with path admin.token",
        ),
        (
            "k8s-token-literal",
            "agent-deployment.yaml",
            "valueFrom:\n                secretKeyRef:\n                  name: crescendo-fleet\n                  key: enrol-token",
            "value: not-so-secret",
            "env CRESCENDO_ENROL_TOKEN is a literal value",
        ),
        (
            "k8s-retry",
            "controller-job.yaml",
            "backoffLimit: 0",
            "backoffLimit: 2",
            "backoffLimit: 0 and restartPolicy: Never (found Some(2)",
        ),
    ];
    assert_caught(&k8s_dir(), &cases, |dir, _| base::check(dir, &mut help));
}

/// What `kubectl apply -k` would send (namespace set, hashed ConfigMap name) parses too.
#[test]
fn rendered_kustomization_parses() {
    let (text, docs) = rendered(&k8s_dir());
    let plan_map = docs
        .iter()
        .filter(|d| matches!(d.resource, manifest::Resource::ConfigMap(_)))
        .map(|d| d.resource.name().to_owned())
        .find(|n| n.starts_with("crescendo-plan-"))
        .expect("no generated crescendo-plan-<hash> ConfigMap");
    // The controller mounts the generated name, and everything is in one namespace.
    assert!(text.contains(&format!("name: {plan_map}")));
    assert!(!text.contains("namespace: default"));
}

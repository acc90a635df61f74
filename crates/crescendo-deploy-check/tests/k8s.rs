//! deploy/k8s: every YAML document parses into the Kubernetes API types with no unknown
//! field, the kustomization lists every manifest, and the base is consistent with the
//! real binaries' command lines (crescendo_deploy_check::fleet). Mutated copies of the
//! base show that each kind of mistake is caught.

use std::path::{Path, PathBuf};
use std::process::Command;

use crescendo_deploy_check::cli::{self, HelpCache};
use crescendo_deploy_check::manifest::{self, Document};
use crescendo_deploy_check::{expected_image, fleet, workspace_root};

fn k8s_dir() -> PathBuf {
    workspace_root().join("deploy/k8s")
}

fn help() -> HelpCache {
    HelpCache::new(cli::built_binaries().unwrap_or_else(|e| panic!("{e}")))
}

fn fail_on(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

fn relative(dir: &Path, file: &Path) -> String {
    file.strip_prefix(dir)
        .unwrap_or(file)
        .to_string_lossy()
        .into_owned()
}

/// Every check on the base in `dir`; an empty list means it is good.
fn check_base(dir: &Path, help: &mut HelpCache) -> Vec<String> {
    let mut problems = Vec::new();
    let kustomization = match manifest::load_kustomization(&dir.join("kustomization.yaml")) {
        Ok(k) => k,
        Err(e) => return vec![e.to_string()],
    };
    // Every document of every file (kustomization.yaml is not a Kubernetes object).
    let mut docs: Vec<Document> = Vec::new();
    for file in manifest::yaml_files(dir).expect("listing the base") {
        let rel = relative(dir, &file);
        if rel == "kustomization.yaml" {
            continue;
        }
        match manifest::load_file(&file) {
            Ok(d) => docs.extend(d),
            Err(e) => problems.push(e.to_string()),
        }
        // The kustomization applies every manifest except the examples.
        if !rel.ends_with(".example.yaml") && !kustomization.resources.contains(&rel) {
            problems.push(format!(
                "{rel} is neither in kustomization.yaml nor *.example.yaml"
            ));
        }
    }
    for r in &kustomization.resources {
        if !dir.join(r).is_file() {
            problems.push(format!("kustomization.yaml: resource {r} does not exist"));
        }
    }
    for g in &kustomization.config_map_generator {
        for (_, path) in g.file_entries() {
            if !dir.join(path).is_file() {
                problems.push(format!("configMapGenerator {}: no file {path}", g.name));
            }
        }
    }
    let image = expected_image();
    let tag = image.split_once(':').map_or("", |(_, t)| t);
    for i in &kustomization.images {
        if i.name == "crescendo" && i.new_tag.as_deref() != Some(tag) {
            problems.push(format!(
                "kustomization.yaml: images crescendo newTag must be {tag}"
            ));
        }
    }
    // Only what the kustomization applies takes part in the cross-document checks.
    docs.retain(|d| kustomization.resources.contains(&relative(dir, &d.file)));
    problems.extend(fleet::check(dir, &kustomization, &docs, help));
    problems
}

#[test]
fn every_document_parses_and_the_base_is_consistent() {
    let dir = k8s_dir();
    let docs = manifest::yaml_files(&dir).unwrap();
    assert!(docs.len() >= 7, "expected the whole base, found {docs:?}");
    fail_on(&check_base(&dir, &mut help()));
}

/// A copy of the base with one text replacement in one file.
fn mutated(name: &str, file: &str, from: &str, to: &str) -> PathBuf {
    let src = k8s_dir();
    let dst = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("k8s-{name}"));
    let _ = std::fs::remove_dir_all(&dst);
    for f in manifest::yaml_files(&src)
        .unwrap()
        .into_iter()
        .chain([src.join("plans/plan.toml")])
    {
        let to_path = dst.join(relative(&src, &f));
        std::fs::create_dir_all(to_path.parent().unwrap()).unwrap();
        std::fs::copy(&f, &to_path).unwrap();
    }
    let path = dst.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    dst
}

#[test]
fn mistakes_are_caught() {
    let mut help = help();
    let cases = [
        // (name, file, from, to, a fragment of the expected problem)
        (
            "flag",
            "agent-deployment.yaml",
            "--controller=",
            "--controler=",
            "has no flag --controler",
        ),
        (
            "field",
            "controller-job.yaml",
            "readinessProbe:",
            "readinesProbe:",
            "unknown field(s) /spec/template/spec/containers/0/readinesProbe",
        ),
        (
            "kind",
            "namespace.yaml",
            "kind: Namespace",
            "kind: Namespaces",
            "unknown kind v1/Namespaces",
        ),
        (
            "replicas",
            "agent-deployment.yaml",
            "replicas: 3",
            "replicas: 2",
            "--agents Some(3) but the agent workloads run 2",
        ),
        (
            "probe",
            "controller-job.yaml",
            "--listen=0.0.0.0:7700",
            "--listen=0.0.0.0:7701",
            "but the binary listens on Some(7701)",
        ),
        (
            "policy",
            "networkpolicy.yaml",
            "port: 7700",
            "port: 7701",
            "ingress port Int(7701) is no --listen port",
        ),
        (
            "url",
            "agent-deployment.yaml",
            "crescendo-controller:7700",
            "crescendo-controller:7701",
            "Service crescendo-controller has no port 7701",
        ),
        (
            "image",
            "flowsim.yaml",
            "image: crescendo:0.1.0",
            "image: crescendo:latest",
            "image \"crescendo:latest\"",
        ),
        (
            "out",
            "controller-job.yaml",
            "--out=/out",
            "--out=/reports",
            "--out /reports is not on a writable volume",
        ),
        (
            "plan",
            "plans/plan.toml",
            "policy = \"coordinated\"",
            "policy = \"sometimes\"",
            "backoff.policy",
        ),
        (
            "unlisted",
            "kustomization.yaml",
            "  - flowsim.yaml\n",
            "",
            "flowsim.yaml is neither in kustomization.yaml",
        ),
    ];
    for (name, file, from, to, expected) in cases {
        let problems = check_base(&mutated(name, file, from, to), &mut help);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{name}: expected a problem containing {expected:?}, got {problems:#?}"
        );
    }
}

/// What `kubectl apply -k` would send (namespace set, hashed ConfigMap name) parses too.
/// Needs kubectl on PATH (scripts/test.sh installs Debian's `kubernetes-client` where
/// there is none): without it the test fails, it never skips.
#[test]
fn rendered_kustomization_parses() {
    let out = Command::new("kubectl")
        .args(["kustomize"])
        .arg(k8s_dir())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "kubectl not runnable ({e}): it renders deploy/k8s; scripts/test.sh \
                 installs it (apt-get install kubernetes-client)"
            )
        });
    assert!(
        out.status.success(),
        "kubectl kustomize deploy/k8s failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let docs = manifest::parse_documents(&text, Path::new("kubectl kustomize deploy/k8s"))
        .unwrap_or_else(|e| panic!("{e}"));
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

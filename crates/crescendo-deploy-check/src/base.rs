//! One kustomize base on disk (`deploy/k8s`, `deploy/k8s/service`): the kustomization
//! lists every manifest but the `*.example.yaml` ones and names files that exist, every
//! document of every file parses ([`crate::manifest`]), the image tag is the workspace
//! version, and what the kustomization applies passes the cross-document checks
//! ([`crate::fleet`]).

use std::path::Path;

use crate::cli::HelpCache;
use crate::manifest::{self, Document};
use crate::{expected_image, fleet};

/// `file` relative to `dir`, as a kustomization names it.
pub fn relative(dir: &Path, file: &Path) -> String {
    file.strip_prefix(dir)
        .unwrap_or(file)
        .to_string_lossy()
        .into_owned()
}

/// Every check on the base in `dir`; an empty list means it is good.
pub fn check(dir: &Path, help: &mut HelpCache) -> Vec<String> {
    let mut problems = Vec::new();
    let kustomization = match manifest::load_kustomization(&dir.join("kustomization.yaml")) {
        Ok(k) => k,
        Err(e) => return vec![e.to_string()],
    };
    // Every document of every file (kustomization.yaml is not a Kubernetes object).
    let mut docs: Vec<Document> = Vec::new();
    let files = match manifest::yaml_files(dir) {
        Ok(files) => files,
        Err(e) => return vec![format!("{}: {e}", dir.display())],
    };
    for file in files {
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

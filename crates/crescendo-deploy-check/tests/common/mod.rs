//! What the deploy tests share: the built binaries' help, a failure that lists every
//! problem, copies of a deploy directory with one mistake, and `kubectl kustomize`.

#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::process::Command;

use crescendo_deploy_check::cli::{self, HelpCache};
use crescendo_deploy_check::manifest;

pub(crate) fn help() -> HelpCache {
    HelpCache::new(cli::built_binaries().unwrap_or_else(|e| panic!("{e}")))
}

pub(crate) fn fail_on(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// The manifests and plans under `dir` (`*.yaml`, `*.yml`, `*.toml`), recursively,
/// except other kustomize bases inside it; never a local `out/` or `secrets/` content.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if !path.join("kustomization.yaml").is_file() {
                out.extend(files(&path));
            }
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "toml")
        ) {
            out.push(path);
        }
    }
    out
}

/// A copy of `src` (under the test's temp dir, as `name`) with the first `from` in
/// `file` replaced by `to`; panics when `file` has no `from`, so a case never passes
/// because the text it mutates moved.
pub(crate) fn mutated(src: &Path, name: &str, file: &str, from: &str, to: &str) -> PathBuf {
    let dst = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dst);
    for f in files(src) {
        let to_path = dst.join(f.strip_prefix(src).unwrap());
        std::fs::create_dir_all(to_path.parent().unwrap()).unwrap();
        std::fs::copy(&f, &to_path).unwrap();
    }
    let path = dst.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{name}: {file} has no {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    dst
}

/// Runs every `(name, file, from, to, expected)` case through `check` on a mutated copy
/// of `src` and fails, listing them, unless each reports a problem containing
/// `expected`.
pub(crate) fn assert_caught(
    src: &Path,
    cases: &[(&str, &str, &str, &str, &str)],
    mut check: impl FnMut(&Path, &str) -> Vec<String>,
) {
    let mut missed = Vec::new();
    for (name, file, from, to, expected) in cases {
        let dir = mutated(src, name, file, from, to);
        let problems = check(&dir, file);
        if !problems.iter().any(|p| p.contains(expected)) {
            missed.push(format!(
                "{name}: expected a problem containing {expected:?}, got {problems:#?}"
            ));
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n"));
}

/// `kubectl kustomize DIR`, parsed: what `kubectl apply -k` would send. Needs kubectl on
/// PATH (scripts/test.sh installs Debian's `kubernetes-client` where there is none):
/// without it the test fails, it never skips.
pub(crate) fn rendered(dir: &Path) -> (String, Vec<manifest::Document>) {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "kubectl not runnable ({e}): it renders {}; scripts/test.sh installs it \
                 (apt-get install kubernetes-client)",
                dir.display()
            )
        });
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let name = format!("kubectl kustomize {}", dir.display());
    let docs = manifest::parse_documents(&text, Path::new(&name)).unwrap_or_else(|e| panic!("{e}"));
    (text, docs)
}

//! Kubernetes YAML documents as API types, and the kustomization that lists them.
//!
//! A document is first read as a generic JSON value, then converted to the type its
//! `apiVersion` and `kind` name. `k8s-openapi` ignores fields it does not know, so
//! [`parse_document`] serializes the typed value again and reports every field of the
//! original that did not survive the round trip: a misspelt `readinesProbe` is an error
//! here, not a silently missing probe in the cluster.

use std::fmt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde::Deserialize;
use serde_json::Value;

/// One Kubernetes object of a kind the deployment files may use.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Resource {
    /// `v1/Namespace`.
    Namespace(Namespace),
    /// `apps/v1/Deployment`.
    Deployment(Deployment),
    /// `batch/v1/Job`.
    Job(Job),
    /// `batch/v1/CronJob`.
    CronJob(CronJob),
    /// `v1/Service`.
    Service(Service),
    /// `v1/ConfigMap`.
    ConfigMap(ConfigMap),
    /// `v1/Secret`.
    Secret(Secret),
    /// `v1/PersistentVolumeClaim`.
    PersistentVolumeClaim(PersistentVolumeClaim),
    /// `networking.k8s.io/v1/NetworkPolicy`.
    NetworkPolicy(NetworkPolicy),
}

impl Resource {
    /// `metadata.name`, or `""` when absent.
    pub fn name(&self) -> &str {
        let meta = match self {
            Self::Namespace(r) => &r.metadata,
            Self::Deployment(r) => &r.metadata,
            Self::Job(r) => &r.metadata,
            Self::CronJob(r) => &r.metadata,
            Self::Service(r) => &r.metadata,
            Self::ConfigMap(r) => &r.metadata,
            Self::Secret(r) => &r.metadata,
            Self::PersistentVolumeClaim(r) => &r.metadata,
            Self::NetworkPolicy(r) => &r.metadata,
        };
        meta.name.as_deref().unwrap_or("")
    }
}

/// A parsed document and where it came from.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file, as given to [`load_file`].
    pub file: PathBuf,
    /// 0-based position among the file's `---`-separated documents.
    pub index: usize,
    /// The object.
    pub resource: Resource,
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (document {}, {})",
            self.file.display(),
            self.index + 1,
            self.resource.name()
        )
    }
}

/// Why a document could not be turned into a [`Resource`].
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not YAML, or not the shape of its kind.
    #[error("{}: document {}: {message}", path.display(), index + 1)]
    Parse {
        /// The file.
        path: PathBuf,
        /// 0-based document index.
        index: usize,
        /// What the parser said.
        message: String,
    },
    /// An `apiVersion`/`kind` this checker does not know.
    #[error("{}: document {}: unknown kind {api_version}/{kind}", path.display(), index + 1)]
    UnknownKind {
        /// The file.
        path: PathBuf,
        /// 0-based document index.
        index: usize,
        /// `apiVersion`.
        api_version: String,
        /// `kind`.
        kind: String,
    },
    /// Fields that the API type does not have (typos, wrong nesting).
    #[error("{}: document {}: unknown field(s) {}", path.display(), index + 1, fields.join(", "))]
    UnknownFields {
        /// The file.
        path: PathBuf,
        /// 0-based document index.
        index: usize,
        /// JSON-pointer-like paths of the unknown fields.
        fields: Vec<String>,
    },
}

/// Parses every YAML document of a file; empty documents (comments only) are skipped.
pub fn load_file(path: &Path) -> Result<Vec<Document>, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_documents(&text, path)
}

/// Parses every YAML document of `text`; `path` names it in errors.
pub fn parse_documents(text: &str, path: &Path) -> Result<Vec<Document>, ManifestError> {
    let mut out = Vec::new();
    for (index, de) in serde_norway::Deserializer::from_str(text).enumerate() {
        let parse_error = |message: String| ManifestError::Parse {
            path: path.to_owned(),
            index,
            message,
        };
        let value = Value::deserialize(de).map_err(|e| parse_error(e.to_string()))?;
        if value.is_null() {
            continue;
        }
        let resource = parse_document(value, path, index)?;
        out.push(Document {
            file: path.to_owned(),
            index,
            resource,
        });
    }
    Ok(out)
}

/// Converts one document to its API type, rejecting unknown kinds and unknown fields.
pub fn parse_document(value: Value, path: &Path, index: usize) -> Result<Resource, ManifestError> {
    let field = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    let parse_error = |message: String| ManifestError::Parse {
        path: path.to_owned(),
        index,
        message,
    };
    let (resource, again) = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => typed(&value, Resource::Namespace),
        ("apps/v1", "Deployment") => typed(&value, Resource::Deployment),
        ("batch/v1", "Job") => typed(&value, Resource::Job),
        ("batch/v1", "CronJob") => typed(&value, Resource::CronJob),
        ("v1", "Service") => typed(&value, Resource::Service),
        ("v1", "ConfigMap") => typed(&value, Resource::ConfigMap),
        ("v1", "Secret") => typed(&value, Resource::Secret),
        ("v1", "PersistentVolumeClaim") => typed(&value, Resource::PersistentVolumeClaim),
        ("networking.k8s.io/v1", "NetworkPolicy") => typed(&value, Resource::NetworkPolicy),
        _ => {
            return Err(ManifestError::UnknownKind {
                path: path.to_owned(),
                index,
                api_version,
                kind,
            });
        }
    }
    .map_err(|e| parse_error(format!("{api_version}/{kind}: {e}")))?;
    let mut fields = Vec::new();
    unknown_fields(&value, &again, "", &mut fields);
    if fields.is_empty() {
        Ok(resource)
    } else {
        Err(ManifestError::UnknownFields {
            path: path.to_owned(),
            index,
            fields,
        })
    }
}

/// The typed value and its serialization (for the unknown-field comparison).
fn typed<T>(value: &Value, wrap: fn(T) -> Resource) -> Result<(Resource, Value), serde_json::Error>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let t: T = serde_json::from_value(value.clone())?;
    let again = serde_json::to_value(&t)?;
    Ok((wrap(t), again))
}

/// Every key of `original` (recursively) that `typed` lacks. Null values are ignored:
/// they mean "absent" to the API server too.
pub fn unknown_fields(original: &Value, typed: &Value, at: &str, out: &mut Vec<String>) {
    match (original, typed) {
        (Value::Object(o), Value::Object(t)) => {
            for (key, value) in o {
                let here = format!("{at}/{key}");
                match t.get(key) {
                    Some(tv) => unknown_fields(value, tv, &here, out),
                    None if value.is_null() => {}
                    None => out.push(here),
                }
            }
        }
        (Value::Array(o), Value::Array(t)) => {
            for (i, (ov, tv)) in o.iter().zip(t).enumerate() {
                unknown_fields(ov, tv, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// The parts of `kustomization.yaml` the deployment uses. Unknown keys are errors, so
/// a new kustomize feature gets a check here before it gets used.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Kustomization {
    /// `kustomize.config.k8s.io/v1beta1`.
    pub api_version: String,
    /// `Kustomization`.
    pub kind: String,
    /// Namespace set on every object.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Files (relative to the kustomization) holding the objects.
    #[serde(default)]
    pub resources: Vec<String>,
    /// ConfigMaps made from files.
    #[serde(default)]
    pub config_map_generator: Vec<ConfigMapGenerator>,
    /// Image name/tag rewrites.
    #[serde(default)]
    pub images: Vec<ImageOverride>,
}

/// One `configMapGenerator` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigMapGenerator {
    /// The ConfigMap's name (kustomize adds a content hash and rewrites references).
    pub name: String,
    /// `KEY=path` or `path` (the key is then the file name).
    #[serde(default)]
    pub files: Vec<String>,
}

impl ConfigMapGenerator {
    /// `(key, path)` for every file entry.
    pub fn file_entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.files.iter().map(|f| match f.split_once('=') {
            Some((key, path)) => (key, path),
            None => (f.rsplit('/').next().unwrap_or(f), f.as_str()),
        })
    }
}

/// One `images` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageOverride {
    /// The image name to match.
    pub name: String,
    /// Replacement name.
    #[serde(default)]
    pub new_name: Option<String>,
    /// Replacement tag.
    #[serde(default)]
    pub new_tag: Option<String>,
}

/// Reads a `kustomization.yaml`.
pub fn load_kustomization(path: &Path) -> Result<Kustomization, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        path: path.to_owned(),
        source,
    })?;
    let k: Kustomization = serde_norway::from_str(&text).map_err(|e| ManifestError::Parse {
        path: path.to_owned(),
        index: 0,
        message: e.to_string(),
    })?;
    if (k.api_version.as_str(), k.kind.as_str())
        != ("kustomize.config.k8s.io/v1beta1", "Kustomization")
    {
        return Err(ManifestError::UnknownKind {
            path: path.to_owned(),
            index: 0,
            api_version: k.api_version,
            kind: k.kind,
        });
    }
    Ok(k)
}

/// Every `*.yaml`/`*.yml` file under `dir`, recursively, sorted. A subdirectory with a
/// `kustomization.yaml` of its own is another base (`deploy/k8s/service` inside
/// `deploy/k8s`) and is left out.
pub fn yaml_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                if !path.join("kustomization.yaml").is_file() {
                    stack.push(path);
                }
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Document>, ManifestError> {
        parse_documents(text, Path::new("test.yaml"))
    }

    #[test]
    fn multi_document_files_parse() {
        let docs = parse(
            "# comment only\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {k: v}\n",
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].resource.name(), "b");
    }

    #[test]
    fn unknown_kinds_are_errors() {
        let e = parse("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n").unwrap_err();
        assert!(matches!(e, ManifestError::UnknownKind { .. }), "{e}");
        let e = parse("apiVersion: apps/v2\nkind: Deployment\n").unwrap_err();
        assert!(matches!(e, ManifestError::UnknownKind { .. }), "{e}");
    }

    #[test]
    fn misspelt_fields_are_errors() {
        let e = parse(
            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n\
             spec: {ports: [{port: 1, targetPrt: 2}]}\n",
        )
        .unwrap_err();
        let ManifestError::UnknownFields { fields, .. } = e else {
            panic!("{e}")
        };
        assert_eq!(fields, ["/spec/ports/0/targetPrt"]);
    }

    #[test]
    fn wrong_types_are_errors() {
        let e = parse("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: 7}\n")
            .unwrap_err();
        assert!(matches!(e, ManifestError::Parse { .. }), "{e}");
        let e = parse("apiVersion: v1\nkind: Service\n  bad: indent\n").unwrap_err();
        assert!(matches!(e, ManifestError::Parse { .. }), "{e}");
    }

    #[test]
    fn cron_jobs_and_claims_parse_and_their_typos_are_errors() {
        let docs = parse(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: nightly}\n\
             spec:\n  schedule: '0 2 * * *'\n  timeZone: Etc/UTC\n  concurrencyPolicy: Forbid\n  \
             jobTemplate:\n    spec:\n      backoffLimit: 0\n      template:\n        \
             spec: {restartPolicy: Never, containers: [{name: c, image: i}]}\n---\n\
             apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\n\
             spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 5Gi}}}\n",
        )
        .unwrap();
        assert!(matches!(docs[0].resource, Resource::CronJob(_)));
        assert!(matches!(
            docs[1].resource,
            Resource::PersistentVolumeClaim(_)
        ));
        assert_eq!(docs[1].resource.name(), "data");
        let e = parse(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: n}\n\
             spec: {schedule: '@daily', concurencyPolicy: Forbid, jobTemplate: {}}\n",
        )
        .unwrap_err();
        let ManifestError::UnknownFields { fields, .. } = e else {
            panic!("{e}")
        };
        assert_eq!(fields, ["/spec/concurencyPolicy"]);
    }

    #[test]
    fn nested_kustomizations_are_other_bases() {
        let dir = std::env::temp_dir().join(format!("deploy-check-nested-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("plans")).unwrap();
        std::fs::create_dir_all(dir.join("variant")).unwrap();
        for f in [
            "a.yaml",
            "plans/b.yml",
            "variant/kustomization.yaml",
            "variant/c.yaml",
        ] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        let found: Vec<_> = yaml_files(&dir)
            .unwrap()
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned())
            .collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found, ["a.yaml", "plans/b.yml"]);
    }

    #[test]
    fn generator_file_entries() {
        let g = ConfigMapGenerator {
            name: "p".into(),
            files: vec!["plan.toml=plans/x.toml".into(), "plans/y.toml".into()],
        };
        let entries: Vec<_> = g.file_entries().collect();
        assert_eq!(
            entries,
            [("plan.toml", "plans/x.toml"), ("y.toml", "plans/y.toml")]
        );
    }
}

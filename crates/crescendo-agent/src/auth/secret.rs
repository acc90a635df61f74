//! Secrets (client ids, client secrets, bearer tokens) resolved on the agent from its
//! own environment or files, at prepare time, and kept out of every log line.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// Where a secret comes from, as the plan names it (never the value itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretSpec {
    /// An environment variable of the agent's process.
    Env(String),
    /// A file on the agent's host; its content is trimmed.
    File(String),
}

/// A resolved secret. `Debug` prints a redaction, never the value.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(Arc<str>);

impl Secret {
    pub(crate) fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that sends it (a header or a form).
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// A short stable fingerprint (first 12 hex digits of SHA-256) that names the
    /// secret in reports (limit keys) without revealing it.
    pub(crate) fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Why a secret could not be read. Names the variable or file, never a value.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SecretError {
    #[error("environment variable {name} is not set on this agent")]
    EnvNotSet { name: String },
    #[error("environment variable {name} is not valid UTF-8")]
    EnvNotUnicode { name: String },
    #[error("cannot read secret file {path}")]
    Unreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("environment variable {name} is empty")]
    EnvEmpty { name: String },
    #[error("secret file {path} is empty")]
    FileEmpty { path: String },
}

/// Read a secret from the agent's environment or file system.
pub(crate) fn resolve(spec: &SecretSpec) -> Result<Secret, SecretError> {
    let value = match spec {
        SecretSpec::Env(name) => std::env::var(name).map_err(|e| match e {
            std::env::VarError::NotPresent => SecretError::EnvNotSet { name: name.clone() },
            std::env::VarError::NotUnicode(_) => SecretError::EnvNotUnicode { name: name.clone() },
        })?,
        SecretSpec::File(path) => {
            std::fs::read_to_string(path).map_err(|source| SecretError::Unreadable {
                path: path.clone(),
                source,
            })?
        }
    };
    let value = value.trim();
    if value.is_empty() {
        return Err(match spec {
            SecretSpec::Env(name) => SecretError::EnvEmpty { name: name.clone() },
            SecretSpec::File(path) => SecretError::FileEmpty { path: path.clone() },
        });
    }
    Ok(Secret::new(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_and_fingerprints_are_stable() {
        let secret = Secret::new("hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert_eq!(secret.fingerprint(), Secret::new("hunter2").fingerprint());
        assert_eq!(secret.fingerprint().len(), 12);
        assert_ne!(secret.fingerprint(), Secret::new("hunter3").fingerprint());
    }

    #[test]
    fn files_are_trimmed_and_errors_name_the_source_not_the_value() {
        let path = std::env::temp_dir().join(format!("crescendo-secret-{}", std::process::id()));
        std::fs::write(&path, "  s3cret\n").unwrap();
        let spec = SecretSpec::File(path.display().to_string());
        assert_eq!(resolve(&spec).unwrap().expose(), "s3cret");
        std::fs::write(&path, "\n").unwrap();
        assert!(resolve(&spec).unwrap_err().to_string().contains("is empty"));
        std::fs::remove_file(&path).unwrap();
        let err = resolve(&spec).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");

        let missing = SecretSpec::Env("CRESCENDO_TEST_SURELY_UNSET_VARIABLE".into());
        let err = resolve(&missing).unwrap_err().to_string();
        assert!(
            err.contains("CRESCENDO_TEST_SURELY_UNSET_VARIABLE"),
            "{err}"
        );
        // PATH is set in every test environment; its value must not leak into errors.
        assert!(resolve(&SecretSpec::Env("PATH".into())).is_ok());
    }
}

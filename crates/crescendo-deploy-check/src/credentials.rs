//! Tokens and credentials reach a container from a Secret, never as text in the
//! manifests: every token, key or certificate flag names a file of a mounted Secret
//! volume (one of its `items` when the volume lists them), and no variable that holds a
//! credential (a name with `TOKEN`, `SECRET` or `PASSWORD`) has a literal `value`.

use k8s_openapi::api::core::v1::Container;

use crate::cli;
use crate::workload::{Workload, mount_of};

/// Flags whose value is a file holding a token, a private key or a certificate.
pub(crate) const SECRET_FILE_FLAGS: [&str; 6] = [
    "--enrol-token-file",
    "--admin-token-file",
    "--tls-cert",
    "--tls-key",
    "--tls-client-ca",
    "--tls-ca",
];

/// Problems with how one container gets its tokens and credentials; `at` names it.
pub(crate) fn check_container(
    at: &str,
    w: &Workload<'_>,
    c: &Container,
    argv: &[String],
    out: &mut Vec<String>,
) {
    for flag in SECRET_FILE_FLAGS {
        let Some(path) = cli::flag_value(argv, flag) else {
            continue;
        };
        match mount_of(w, c, path) {
            None => out.push(format!(
                "{at}: {flag} {path} is on no volume (expected a file of a mounted Secret)"
            )),
            // A mount without a volume is reported by the mount check.
            Some((_, None)) => {}
            Some((mount, Some(volume))) => match &volume.secret {
                None => out.push(format!(
                    "{at}: {flag} {path} is on volume {}, which is not a Secret",
                    volume.name
                )),
                Some(secret) => {
                    let dir = mount.mount_path.trim_end_matches('/');
                    let file = path
                        .strip_prefix(dir)
                        .unwrap_or(path)
                        .trim_start_matches('/');
                    let items = secret.items.as_deref();
                    if items.is_some_and(|items| !items.iter().any(|i| i.path == file)) {
                        out.push(format!(
                            "{at}: {flag} {path}: the Secret volume {} has no item with \
                             path {file}",
                            volume.name
                        ));
                    }
                }
            },
        }
    }
    for e in c.env.iter().flatten() {
        let name = e.name.to_ascii_uppercase();
        let credential = ["TOKEN", "SECRET", "PASSWORD"]
            .iter()
            .any(|w| name.contains(w))
            && !name.ends_with("_FILE");
        if credential && e.value.as_deref().is_some_and(|v| !v.is_empty()) {
            out.push(format!(
                "{at}: env {} is a literal value; take it from a Secret \
                 (valueFrom.secretKeyRef) or a file",
                e.name
            ));
        }
    }
}

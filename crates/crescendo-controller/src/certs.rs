//! Certificates for teams without a PKI (`crescendo-controller certs`): a CA, a
//! certificate for the controller (its DNS names and IP addresses) and one per agent
//! (CN = the agent id, which the controller checks under mutual TLS), as PEM files.
//!
//! Keys are ECDSA P-256 and written with mode 0600. A CA already in the directory
//! (`ca.pem`, `ca-key.pem`) issues the new certificates, so agents can be added
//! later; an existing certificate is not overwritten unless asked to.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The CA's file names in the directory.
pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca-key.pem";

/// A certificate authority: issues the controller's and the agents' certificates.
#[derive(Debug)]
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    key_pem: String,
}

/// An issued certificate and its key, PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Ca {
    /// A new self-signed CA named `name`, valid for `valid_for`.
    pub fn new(name: &str, valid_for: Duration) -> Result<Self, CertsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, valid_for);
        let cert = params.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// A CA from its certificate and key (PEM).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CertsError> {
        let key = KeyPair::from_pem(key_pem)?;
        Ok(Self {
            issuer: Issuer::from_ca_cert_pem(cert_pem, key)?,
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
        })
    }

    /// The CA's certificate: what agents get as `--tls-ca` and the controller as
    /// `--tls-client-ca`.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A server certificate for the controller: every name (DNS name or IP address)
    /// agents may use to reach it; the first is also the CN.
    pub fn issue_server(
        &self,
        names: &[String],
        valid_for: Duration,
    ) -> Result<Issued, CertsError> {
        let Some(first) = names.first() else {
            return Err(CertsError::NoControllerName);
        };
        let mut params = CertificateParams::new(names.to_vec())?;
        params
            .distinguished_name
            .push(DnType::CommonName, first.as_str());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params, valid_for)
    }

    /// A client certificate whose CN is `id` (an agent id, or an operator's name for
    /// the admin CLI under mutual TLS) and whose OU says its [`Role`]: the controller
    /// lets an agent's certificate only attach and an operator's only operate.
    pub fn issue_client(
        &self,
        id: &str,
        role: Role,
        valid_for: Duration,
    ) -> Result<Issued, CertsError> {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, id);
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, role.unit());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, valid_for)
    }

    fn issue(
        &self,
        mut params: CertificateParams,
        valid_for: Duration,
    ) -> Result<Issued, CertsError> {
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, valid_for);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// What a client certificate may do, carried as its subject's OU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `crescendo-agent`: attach and take load, never operate.
    Agent,
    /// `crescendo-operator`: the admin calls, never attach.
    Operator,
}

impl Role {
    /// The subject OU that names the role.
    pub fn unit(self) -> &'static str {
        match self {
            Role::Agent => "crescendo-agent",
            Role::Operator => "crescendo-operator",
        }
    }

    /// The role an OU names, if it names one.
    pub fn from_unit(unit: &str) -> Option<Role> {
        [Role::Agent, Role::Operator]
            .into_iter()
            .find(|r| r.unit() == unit)
    }
}

/// Valid from an hour ago (clocks differ) for `valid_for`.
fn validity(params: &mut CertificateParams, valid_for: Duration) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - Duration::from_secs(3600);
    params.not_after = now + valid_for;
}

/// What `crescendo-controller certs` makes.
#[derive(Debug, Clone)]
pub struct CertsRequest {
    /// Where the PEM files go (created if missing).
    pub dir: PathBuf,
    /// The controller's DNS names and IP addresses (none: no controller certificate).
    pub controller_names: Vec<String>,
    /// One agent certificate per id.
    pub agents: Vec<String>,
    /// One operator certificate per name.
    pub operators: Vec<String>,
    pub valid_for: Duration,
    /// Replace certificates already in `dir` (never the CA).
    pub force: bool,
}

/// Make what `request` asks for; returns the files written.
pub fn generate(request: &CertsRequest) -> Result<Vec<PathBuf>, CertsError> {
    let dir = &request.dir;
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let mut written = Vec::new();
    let (ca_cert, ca_key) = (dir.join(CA_CERT), dir.join(CA_KEY));
    let ca = if ca_cert.exists() && ca_key.exists() {
        let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| io_error(p, e));
        Ca::from_pem(&read(&ca_cert)?, &read(&ca_key)?)?
    } else {
        let ca = Ca::new("Crescendo CA", request.valid_for)?;
        write(&ca_cert, ca.cert_pem(), false, false)?;
        write(&ca_key, &ca.key_pem, true, false)?;
        written.extend([ca_cert, ca_key]);
        ca
    };
    let mut leaves = Vec::new();
    if !request.controller_names.is_empty() {
        let issued = ca.issue_server(&request.controller_names, request.valid_for)?;
        leaves.push(("controller".to_owned(), issued));
    }
    let clients = (request.agents.iter().map(|id| (id, Role::Agent)))
        .chain(request.operators.iter().map(|id| (id, Role::Operator)));
    for (id, role) in clients {
        if !valid_file_stem(id) {
            return Err(CertsError::BadId(id.clone()));
        }
        let stem = match role {
            Role::Agent => format!("agent-{id}"),
            Role::Operator => format!("operator-{id}"),
        };
        leaves.push((stem, ca.issue_client(id, role, request.valid_for)?));
    }
    for (stem, issued) in leaves {
        let (cert, key) = (
            dir.join(format!("{stem}.pem")),
            dir.join(format!("{stem}-key.pem")),
        );
        write(&cert, &issued.cert_pem, false, request.force)?;
        write(&key, &issued.key_pem, true, request.force)?;
        written.extend([cert, key]);
    }
    Ok(written)
}

/// Ids become file names: the agent id alphabet, no path tricks.
fn valid_file_stem(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Write a PEM file; a key only for its owner (0600). Refuses to replace a file
/// unless `force`.
fn write(path: &Path, pem: &str, secret: bool, force: bool) -> Result<(), CertsError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => CertsError::Exists(path.to_owned()),
        _ => io_error(path, e),
    })?;
    file.write_all(pem.as_bytes())
        .map_err(|e| io_error(path, e))
}

fn io_error(path: &Path, source: std::io::Error) -> CertsError {
    CertsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Why certificates could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} exists (--force replaces it)", .0.display())]
    Exists(PathBuf),
    #[error("a controller certificate needs at least one DNS name or IP address")]
    NoControllerName,
    #[error("agent id {0:?}: 1-128 letters, digits, '-', '_', '.', not starting with '.'")]
    BadId(String),
    #[error("certificate generation failed")]
    Rcgen(#[from] rcgen::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn makes_a_ca_a_controller_and_agents_then_reuses_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let mut request = CertsRequest {
            dir: dir.path().to_owned(),
            controller_names: vec!["controller.example".into(), "127.0.0.1".into()],
            agents: vec!["agent-1".into()],
            operators: vec![],
            valid_for: DAY,
            force: false,
        };
        let written = generate(&request).unwrap();
        assert_eq!(written.len(), 6, "{written:?}");
        let ca = std::fs::read_to_string(dir.path().join(CA_CERT)).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("agent-agent-1-key.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Again: the certificates exist; with a new agent only, the CA is reused.
        assert!(matches!(generate(&request), Err(CertsError::Exists(_))));
        request.controller_names.clear();
        request.agents = vec!["agent-2".into()];
        assert_eq!(generate(&request).unwrap().len(), 2);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(CA_CERT)).unwrap(),
            ca
        );
        request.agents = vec!["../x".into()];
        assert!(matches!(generate(&request), Err(CertsError::BadId(_))));
    }
}

//! How an agent (and the controller's admin CLI, which reuses this) reaches a
//! controller: the channel's TLS (the CA that signed the controller's certificate, and
//! this client's own certificate for mutual TLS) and the bearer token sent as gRPC
//! metadata (the enrolment token on `Attach`, the admin token on `status`/`cancel`).
//!
//! Secrets come from files or environment variables, never from argv, and never reach
//! a log line: [`Token`]'s `Debug` is a redaction.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// The environment variable an agent reads its enrolment token from.
pub const ENROL_TOKEN_ENV: &str = "CRESCENDO_ENROL_TOKEN";
/// The environment variable the admin CLI reads its admin token from.
pub const ADMIN_TOKEN_ENV: &str = "CRESCENDO_ADMIN_TOKEN";
/// The metadata key tokens travel in, as `Bearer <token>`.
pub const TOKEN_KEY: &str = "authorization";

/// A shared secret (an enrolment or admin token). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Arc<str>);

impl Token {
    /// A token from its value; `None` when it is empty (after trimming whitespace).
    pub fn new(value: &str) -> Option<Self> {
        let value = value.trim();
        (!value.is_empty()).then(|| Self(value.into()))
    }

    /// A token from a file (trimmed, so a trailing newline does not count).
    pub fn from_file(path: &Path) -> Result<Self, TransportError> {
        let text = std::fs::read_to_string(path).map_err(|source| TransportError::Read {
            what: "token file",
            path: path.to_owned(),
            source,
        })?;
        Self::new(&text).ok_or_else(|| TransportError::EmptyToken(path.to_owned()))
    }

    /// A token from an environment variable; `None` when it is unset or empty.
    pub fn from_env(name: &str) -> Option<Self> {
        std::env::var(name).ok().and_then(|v| Self::new(&v))
    }

    /// The value, for the one place that compares or sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Put this token on a request as `authorization: Bearer <token>`.
    pub fn authorize<T>(&self, request: &mut tonic::Request<T>) -> Result<(), TransportError> {
        let value: MetadataValue<_> = format!("Bearer {}", self.0)
            .parse()
            .map_err(|_| TransportError::TokenNotAscii)?;
        request.metadata_mut().insert(TOKEN_KEY, value);
        Ok(())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// TLS towards the controller: its CA, and (for mutual TLS) this client's certificate
/// and key, all PEM.
#[derive(Clone)]
pub struct ClientTls {
    ca: Certificate,
    identity: Option<Identity>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("client_certificate", &self.identity.is_some())
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// From PEM files: the CA that signed the controller's certificate, and optionally
    /// this client's certificate and key (both or neither).
    pub fn from_files(
        ca: &Path,
        cert: Option<&Path>,
        key: Option<&Path>,
    ) -> Result<Self, TransportError> {
        let ca = read(ca, "CA certificate")?;
        let identity = match (cert, key) {
            (Some(cert), Some(key)) => Some((read(cert, "certificate")?, read(key, "key")?)),
            (None, None) => None,
            _ => return Err(TransportError::HalfIdentity),
        };
        Ok(Self::from_pem(ca, identity))
    }

    /// From PEM text: the CA, and optionally this client's (certificate, key).
    pub fn from_pem(ca: impl AsRef<[u8]>, identity: Option<(Vec<u8>, Vec<u8>)>) -> Self {
        Self {
            ca: Certificate::from_pem(ca),
            identity: identity.map(|(cert, key)| Identity::from_pem(cert, key)),
        }
    }

    fn config(&self) -> ClientTlsConfig {
        let config = ClientTlsConfig::new().ca_certificate(self.ca.clone());
        match &self.identity {
            Some(identity) => config.identity(identity.clone()),
            None => config,
        }
    }
}

/// The options a command line gives for TLS towards a controller, checked against
/// its URL: `https://` needs the CA, `http://` takes no TLS options.
pub fn client_tls(
    url: &str,
    ca: Option<&Path>,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<Option<ClientTls>, TransportError> {
    let https = url.starts_with("https://");
    match ca {
        Some(ca) if https => ClientTls::from_files(ca, cert, key).map(Some),
        None if https => Err(TransportError::HttpsWithoutCa(url.to_owned())),
        _ if ca.is_some() || cert.is_some() || key.is_some() => {
            Err(TransportError::TlsOverHttp(url.to_owned()))
        }
        _ => Ok(None),
    }
}

/// An endpoint for `url`, with TLS when given (the URL must then be `https://`).
pub fn endpoint(url: &str, tls: Option<&ClientTls>) -> Result<Endpoint, TransportError> {
    let bad_url = |source| TransportError::BadUrl {
        url: url.to_owned(),
        source,
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(TransportError::NoScheme(url.to_owned()));
    }
    let endpoint = Endpoint::from_shared(url.to_owned()).map_err(bad_url)?;
    match tls {
        Some(tls) => endpoint.tls_config(tls.config()).map_err(bad_url),
        None if url.starts_with("https://") => Err(TransportError::HttpsWithoutCa(url.to_owned())),
        None => Ok(endpoint),
    }
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TransportError> {
    std::fs::read(path).map_err(|source| TransportError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Why the transport to a controller could not be set up. Names files, never secrets.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot read {what} {}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("token file {} is empty", .0.display())]
    EmptyToken(PathBuf),
    #[error("the token is not printable ASCII, so it cannot travel as gRPC metadata")]
    TokenNotAscii,
    #[error("--tls-cert and --tls-key go together")]
    HalfIdentity,
    #[error("{0} is https://: give the CA that signed the controller's certificate (--tls-ca)")]
    HttpsWithoutCa(String),
    #[error("TLS options given, but {0} is not https://")]
    TlsOverHttp(String),
    #[error("controller url {0} has no scheme: write http://{0} (or https://{0} with --tls-ca)")]
    NoScheme(String),
    #[error("bad controller url {url}")]
    BadUrl {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_without_a_scheme_is_explained() {
        let e = endpoint("127.0.0.1:7700", None).unwrap_err().to_string();
        assert!(e.contains("write http://127.0.0.1:7700"), "{e}");
        assert!(endpoint("http://127.0.0.1:7700", None).is_ok());
    }

    #[test]
    fn tokens_are_trimmed_never_empty_and_never_printed() {
        let token = Token::new("  s3cret\n").unwrap();
        assert_eq!(token.expose(), "s3cret");
        assert!(Token::new(" \n").is_none());
        assert!(!format!("{token:?}").contains("s3cret"));
        let mut request = tonic::Request::new(());
        token.authorize(&mut request).unwrap();
        assert_eq!(request.metadata().get(TOKEN_KEY).unwrap(), "Bearer s3cret");
    }

    #[test]
    fn tls_options_must_match_the_url() {
        let ca = Path::new("/nonexistent/ca.pem");
        assert!(matches!(
            client_tls("https://c:7700", None, None, None),
            Err(TransportError::HttpsWithoutCa(_))
        ));
        assert!(matches!(
            client_tls("http://c:7700", Some(ca), None, None),
            Err(TransportError::TlsOverHttp(_))
        ));
        assert!(matches!(
            client_tls("http://c:7700", None, None, None),
            Ok(None)
        ));
        assert!(matches!(
            client_tls("https://c:7700", Some(ca), Some(ca), None),
            Err(TransportError::Read { .. }) | Err(TransportError::HalfIdentity)
        ));
        assert!(matches!(
            endpoint("https://c:7700", None),
            Err(TransportError::HttpsWithoutCa(_))
        ));
    }
}

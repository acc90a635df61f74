//! TLS on the controller's gRPC port (rustls, the same that tonic's `tls-ring` feature
//! uses): the server's certificate, and for mutual TLS the CA whose certificates
//! clients (agents, operators' CLIs) must present.
//!
//! The controller accepts TLS itself rather than through tonic's `tls_config`, so a
//! refused handshake (no client certificate, one from another CA) is logged with the
//! peer's address; tonic then serves the accepted streams, and the peer's certificates
//! reach the handlers (`Request::peer_certs`), where an agent's id is checked against
//! the names its certificate carries ([`peer_names`]).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use crate::connections::{Admitted, Limited};

/// A handshake that takes longer than this is dropped (a client that connects and
/// says nothing).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The controller's TLS: its certificate and key, and optionally the CA that client
/// certificates must chain to (mutual TLS: a client without one is refused in the
/// handshake).
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    client_auth: bool,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("client_auth", &self.client_auth)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// From PEM files: the certificate (chain), its key, and optionally the client CA.
    pub fn from_pem_files(
        cert: &Path,
        key: &Path,
        client_ca: Option<&Path>,
    ) -> Result<Self, TlsError> {
        let client_ca = client_ca.map(|p| read(p, "client CA")).transpose()?;
        Self::from_pem(
            &read(cert, "certificate")?,
            &read(key, "key")?,
            client_ca.as_deref(),
        )
    }

    /// From PEM text: the certificate (chain), its key, and optionally the client CA.
    pub fn from_pem(cert: &[u8], key: &[u8], client_ca: Option<&[u8]>) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Rustls)?;
        let builder = match client_ca {
            Some(pem) => {
                let mut roots = RootCertStore::empty();
                for ca in certificates(pem, "client CA")? {
                    roots.add(ca).map_err(TlsError::Rustls)?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(TlsError::Verifier)?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let chain = certificates(cert, "certificate")?;
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|source| TlsError::Pem {
            what: "key",
            source,
        })?;
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(TlsError::Rustls)?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Self {
            config: Arc::new(config),
            client_auth: client_ca.is_some(),
        })
    }

    /// Whether clients must present a certificate from the client CA.
    pub fn client_auth(&self) -> bool {
        self.client_auth
    }
}

/// Complete the TLS handshakes of the connections `admitted` lets in, each in a task
/// of its own (a slow client holds up no one); refused handshakes are logged with the
/// peer's address. Each connection keeps its permit until it closes.
pub(crate) fn incoming(
    mut admitted: mpsc::Receiver<Admitted>,
    tls: &ServerTls,
) -> ReceiverStream<io::Result<Limited<TlsStream<TcpStream>>>> {
    let acceptor = TlsAcceptor::from(tls.config.clone());
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        while let Some((tcp, peer, permit)) = admitted.recv().await {
            if tx.is_closed() {
                break;
            }
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(Limited::new(stream, permit))).await;
                    }
                    Ok(Err(e)) => tracing::warn!(%peer, error = %e, "TLS handshake refused"),
                    Err(_) => {
                        tracing::warn!(%peer, "TLS handshake not done within {HANDSHAKE_TIMEOUT:?}")
                    }
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// The role a client certificate's OU names (`crescendo-agent`,
/// `crescendo-operator`), if any: certificates from another PKI may carry none.
pub(crate) fn peer_role(cert: &CertificateDer<'_>) -> Option<crate::certs::Role> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert).ok()?;
    cert.subject()
        .iter_organizational_unit()
        .filter_map(|ou| ou.as_str().ok())
        .find_map(crate::certs::Role::from_unit)
}

/// The names a client certificate vouches for: its subject's common name(s) and its
/// subject alternative names (DNS names, IP addresses, URIs). Empty when it cannot be
/// parsed.
pub(crate) fn peer_names(cert: &CertificateDer<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(cert) else {
        return Vec::new();
    };
    let mut names: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) | GeneralName::URI(n) => names.push((*n).to_owned()),
                GeneralName::IPAddress(ip) => names.extend(ip_text(ip)),
                _ => {}
            }
        }
    }
    names
}

fn ip_text(octets: &[u8]) -> Option<String> {
    let ip: std::net::IpAddr = match octets.len() {
        4 => <[u8; 4]>::try_from(octets).ok()?.into(),
        16 => <[u8; 16]>::try_from(octets).ok()?.into(),
        _ => return None,
    };
    Some(ip.to_string())
}

fn certificates(pem: &[u8], what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem { what, source })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(what));
    }
    Ok(certs)
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Why the controller's TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS {what} {}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the TLS {what} is not valid PEM")]
    Pem {
        what: &'static str,
        #[source]
        source: pem::Error,
    },
    #[error("the TLS {0} file holds no certificate")]
    NoCertificate(&'static str),
    #[error("TLS setup failed")]
    Rustls(#[source] rustls::Error),
    #[error("the client CA cannot verify clients")]
    Verifier(#[source] VerifierBuilderError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_names_its_cn_and_sans() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["agent-7.example".into(), "10.0.0.7".into()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "agent-7");
        let cert = params.self_signed(&key).unwrap();
        let names = peer_names(cert.der());
        assert_eq!(names, ["agent-7", "agent-7.example", "10.0.0.7"]);
        assert!(peer_names(&CertificateDer::from(vec![1, 2, 3])).is_empty());
    }

    #[test]
    fn bad_pem_is_refused_with_what_it_was() {
        let err = ServerTls::from_pem(b"not pem", b"", None).unwrap_err();
        assert!(
            matches!(err, TlsError::NoCertificate("certificate")),
            "{err}"
        );
    }
}

//! Who may talk to the controller: only your agents and your operators.
//!
//! - Agents prove themselves with a certificate from the client CA (mutual TLS, see
//!   [`crate::tls`]; the agent id must be the certificate's CN or a SAN) and/or the
//!   enrolment token, sent as `authorization: Bearer …` on `Attach`.
//! - Operators (`status`, `cancel`) with a certificate from the same CA and/or the
//!   admin token.
//!
//! A refused call is answered `Unauthenticated` before anything else is said (no
//! `Welcome`, no plan), and logged with the peer's address, never the token. Tokens
//! are compared in constant time (as SHA-256 digests, so their length does not show
//! either). Without any of this the controller serves only loopback addresses, unless
//! told `insecure` ([`Security::exposure`]).

use std::net::SocketAddr;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::{Request, Status};

use crate::certs::Role;

pub use crate::tls::{ServerTls, TlsError};
use crescendo_agent::transport::TOKEN_KEY;
pub use crescendo_agent::transport::Token;

/// How the controller authenticates its clients. The default (nothing) suits loopback.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// TLS on the gRPC port; with a client CA, mutual TLS.
    pub tls: Option<ServerTls>,
    /// The token agents must send on `Attach`.
    pub enrol_token: Option<Token>,
    /// The token `status` and `cancel` must send.
    pub admin_token: Option<Token>,
    /// Serve a non-loopback address even though agents or operators go
    /// unauthenticated (said loudly on start).
    pub insecure: bool,
}

impl Security {
    /// Whether clients must present a certificate from the client CA.
    pub fn client_auth(&self) -> bool {
        self.tls.as_ref().is_some_and(ServerTls::client_auth)
    }

    /// Who would be accepted on a port serving `serves` without proving anything:
    /// "agents", "operators".
    fn unguarded(&self, serves: Serves) -> Vec<&'static str> {
        let mut who = Vec::new();
        if serves != Serves::Admin && !self.client_auth() && self.enrol_token.is_none() {
            who.push("agents");
        }
        if serves != Serves::Agents && !self.client_auth() && self.admin_token.is_none() {
            who.push("operators");
        }
        who
    }

    /// Whether serving `addr` this way is allowed, and the warnings to print loudly
    /// on start when it is. A non-loopback address with unauthenticated agents or
    /// operators is refused unless `insecure`.
    pub fn exposure(&self, addr: SocketAddr) -> Result<Vec<String>, SecurityError> {
        self.exposure_of(addr, Serves::Both)
    }

    /// [`Security::exposure`] of a port that serves only agents or only operators
    /// (`serve --admin-listen`).
    pub fn exposure_of(
        &self,
        addr: SocketAddr,
        serves: Serves,
    ) -> Result<Vec<String>, SecurityError> {
        let unguarded = self.unguarded(serves);
        let mut warnings = Vec::new();
        if addr.ip().is_loopback() || unguarded.is_empty() {
            if !addr.ip().is_loopback() && self.tls.is_none() {
                warnings.push(format!(
                    "WARNING: {addr} serves without TLS: tokens and plans travel in clear text (give --tls-cert and --tls-key)"
                ));
            }
            return Ok(warnings);
        }
        let unguarded = unguarded.join(" and ");
        if !self.insecure {
            return Err(SecurityError::Exposed { addr, unguarded });
        }
        warnings.push(format!(
            "WARNING: INSECURE (--insecure): {addr} accepts {unguarded} without authentication: anyone who can reach it can {}",
            if unguarded.contains("agents") {
                "attach as an agent, receive the plan and its load, and report made-up numbers"
            } else {
                "read the fleet's status and cancel its run"
            }
        ));
        Ok(warnings)
    }
}

/// What a port serves: agents (`Attach`), operators (the admin service), or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serves {
    Agents,
    Admin,
    Both,
}

/// Why the controller will not serve as asked.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error(
        "refusing to listen on {addr}: {unguarded} would be accepted without authentication. \
         Give --tls-client-ca (mutual TLS, with --tls-cert and --tls-key), or \
         --enrol-token-file and --admin-token-file; or --insecure to accept anyone who can reach {addr}"
    )]
    Exposed { addr: SocketAddr, unguarded: String },
}

/// One service's token check: nothing to check without a token.
#[derive(Clone)]
pub(crate) struct Gate {
    /// SHA-256 of the expected token.
    digest: Option<[u8; 32]>,
    /// The token's name, for messages: "enrolment token", "admin token".
    what: &'static str,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("what", &self.what)
            .field("required", &self.digest.is_some())
            .finish()
    }
}

impl Gate {
    pub(crate) fn new(token: Option<&Token>, what: &'static str) -> Self {
        Self {
            digest: token.map(|t| digest(t.expose())),
            what,
        }
    }

    /// `Unauthenticated` when the request lacks the token or carries another one;
    /// logged with the peer's address (never the token).
    /// Whether a token is asked for.
    pub(crate) fn is_set(&self) -> bool {
        self.digest.is_some()
    }

    pub(crate) fn check<T>(&self, request: &Request<T>, call: &str) -> Result<(), Status> {
        let Some(expected) = &self.digest else {
            return Ok(());
        };
        let presented = request
            .metadata()
            .get(TOKEN_KEY)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let problem = match presented {
            Some(token) if bool::from(digest(token).ct_eq(expected)) => return Ok(()),
            Some(_) => "wrong",
            None => "missing",
        };
        tracing::warn!(peer = %peer(request), call, "refused: {problem} {}", self.what);
        Err(Status::unauthenticated(format!("{problem} {}", self.what)))
    }
}

/// Under mutual TLS, refuse a caller whose certificate names the `forbidden` role: an
/// agent's certificate may not operate, an operator's may not attach. Logged with the
/// peer's address.
pub(crate) fn refuse_role<T>(
    request: &Request<T>,
    forbidden: Role,
    call: &str,
) -> Result<(), Status> {
    if caller_role(request) != Some(forbidden) {
        return Ok(());
    }
    let what = match forbidden {
        Role::Agent => "an agent's certificate (OU crescendo-agent) cannot operate the controller",
        Role::Operator => {
            "an operator's certificate (OU crescendo-operator) cannot attach as an agent"
        }
    };
    tracing::warn!(peer = %peer(request), call, "refused: {what}");
    Err(Status::permission_denied(what))
}

/// Under mutual TLS with no admin token, the certificate is the only proof an operator
/// has: it must name the operator role (OU crescendo-operator).
pub(crate) fn require_operator<T>(request: &Request<T>, call: &str) -> Result<(), Status> {
    if caller_role(request) == Some(Role::Operator) {
        return Ok(());
    }
    let what = "an operator's certificate (OU crescendo-operator, `certs --operator`) or the admin token is needed";
    tracing::warn!(peer = %peer(request), call, "refused: {what}");
    Err(Status::permission_denied(what))
}

/// The role the caller's certificate names (mutual TLS), if any.
fn caller_role<T>(request: &Request<T>) -> Option<Role> {
    request
        .peer_certs()
        .and_then(|certs| certs.first().and_then(crate::tls::peer_role))
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The peer's address, for log lines.
pub(crate) fn peer<T>(request: &Request<T>) -> String {
    request
        .remote_addr()
        .map_or_else(|| "unknown".to_owned(), |a| a.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(token: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(t) = token {
            Token::new(t).unwrap().authorize(&mut request).unwrap();
        }
        request
    }

    #[test]
    fn a_gate_lets_only_its_token_through() {
        let token = Token::new("right").unwrap();
        let gate = Gate::new(Some(&token), "admin token");
        assert!(gate.check(&request(Some("right")), "status").is_ok());
        let wrong = gate.check(&request(Some("wrong")), "status").unwrap_err();
        assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
        assert_eq!(wrong.message(), "wrong admin token");
        let missing = gate.check(&request(None), "status").unwrap_err();
        assert_eq!(missing.message(), "missing admin token");
        assert!(Gate::new(None, "x").check(&request(None), "status").is_ok());
    }

    #[test]
    fn unauthenticated_non_loopback_needs_insecure() {
        let any: SocketAddr = "0.0.0.0:7700".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:7700".parse().unwrap();
        let mut security = Security::default();
        assert!(security.exposure(local).unwrap().is_empty());
        let err = security.exposure(any).unwrap_err().to_string();
        assert!(err.contains("agents and operators"), "{err}");
        security.enrol_token = Token::new("e");
        let err = security.exposure(any).unwrap_err().to_string();
        assert!(
            err.contains("operators") && !err.contains("agents"),
            "{err}"
        );
        security.admin_token = Token::new("a");
        let warnings = security.exposure(any).unwrap();
        assert!(warnings[0].contains("clear text"), "{warnings:?}");
        let insecure = Security {
            insecure: true,
            ..Security::default()
        };
        assert!(insecure.exposure(any).unwrap()[0].contains("INSECURE"));
    }
}

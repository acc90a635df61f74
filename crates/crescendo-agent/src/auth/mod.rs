//! Authentication of the scenario's requests: none, a fixed bearer token, or OAuth2
//! client credentials.
//!
//! Secrets are resolved on the agent at prepare time ([`resolve`]), from its own
//! environment or files, so they never travel in the plan; a missing variable or an
//! unreadable file fails the preparation with a message that names it. At run time
//! [`Credentials`] hands out the token for each request.
//!
//! When a token cannot be obtained (the token endpoint refused, failed, throttled
//! past its bounds, or was unreachable), the step that needed it counts one attempt
//! with the matching outcome ([`TokenError::outcome`]) and no status, and the
//! iteration ends: the fleet's totals then show an auth outage as errors instead of
//! hiding it. Every fetch itself is measured on the auxiliary step
//! [`TOKEN_STEP`], which never adds to the scenario's totals.
//!
//! # Layout
//! - `secret`: [`SecretSpec`], the redacting [`Secret`], resolution and fingerprints.
//! - `oauth`: the client-credentials [`TokenProvider`].

pub(crate) mod oauth;
mod secret;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::{Arc, Mutex};

use crescendo_metrics::{Outcome, Recorder};
use tokio_util::sync::CancellationToken;

pub(crate) use oauth::{FetchMeter, OAuthSettings, TokenProvider};
pub(crate) use secret::{Secret, SecretError, SecretSpec, resolve};

/// The auxiliary step under which token fetches are measured.
pub(crate) const TOKEN_STEP: &str = "auth.token";

/// An access token. `Debug` prints a redaction.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Token(pub(crate) Secret);

impl Token {
    /// The `Authorization` header value.
    pub(crate) fn header_value(&self) -> http::HeaderValue {
        let mut value = http::HeaderValue::try_from(format!("Bearer {}", self.0.expose()))
            .unwrap_or_else(|_| http::HeaderValue::from_static("Bearer invalid-token"));
        value.set_sensitive(true);
        value
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Why no token could be obtained.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum TokenError {
    #[error("token endpoint refused the client: status {status}")]
    Rejected { status: u16 },
    #[error("token endpoint failed: status {status}")]
    Server { status: u16 },
    #[error("token endpoint throttled (status {status}, retry-after {retry_after:?})")]
    Throttled {
        status: u16,
        retry_after: Option<std::time::Duration>,
    },
    #[error("token endpoint timed out")]
    Timeout,
    #[error("token endpoint unreachable")]
    Connect,
    #[error("token endpoint answer rejected: {0}")]
    BadResponse(String),
    #[error("run stopped while waiting for a token")]
    Stopped,
}

impl TokenError {
    /// The outcome counted on the scenario step that needed the token; `None` when
    /// the run is stopping and nothing should be counted.
    pub(crate) fn outcome(&self) -> Option<Outcome> {
        Some(match self {
            TokenError::Rejected { .. } => Outcome::ClientError,
            TokenError::Server { .. } | TokenError::BadResponse(_) => Outcome::ServerError,
            TokenError::Throttled { .. } => Outcome::Throttled,
            TokenError::Timeout => Outcome::Timeout,
            TokenError::Connect => Outcome::ConnectError,
            TokenError::Stopped => return None,
        })
    }
}

/// Authentication with its secrets resolved, ready for a run (prepare time).
#[derive(Debug, Clone, Default)]
pub(crate) enum AuthConfig {
    #[default]
    None,
    Bearer(Secret),
    OAuth(OAuthSettings),
}

impl AuthConfig {
    /// The key the API's limits apply to, for throttle and quota reports: a hash of
    /// the client id (`client:…`) or of the bearer token (`token:…`), never the secret.
    pub(crate) fn limit_key(&self) -> String {
        match self {
            AuthConfig::None => "default".to_owned(),
            AuthConfig::Bearer(token) => format!("token:{}", token.fingerprint()),
            AuthConfig::OAuth(s) => format!("client:{}", s.client_id.fingerprint()),
        }
    }
}

/// The tokens of one run.
#[derive(Debug)]
pub(crate) enum Credentials {
    None,
    Bearer(Token),
    /// Boxed: a provider is much larger than the other variants.
    OAuth(Box<TokenProvider>),
}

impl Credentials {
    /// Start the run's credentials; an OAuth client registers its [`TOKEN_STEP`]
    /// in `recorder`.
    pub(crate) fn start(
        config: AuthConfig,
        client: reqwest::Client,
        recorder: &Arc<Mutex<Recorder>>,
    ) -> Self {
        match config {
            AuthConfig::None => Credentials::None,
            AuthConfig::Bearer(token) => Credentials::Bearer(Token(token)),
            AuthConfig::OAuth(settings) => {
                let step = recorder
                    .lock()
                    .expect("recorder lock")
                    .add_auxiliary(TOKEN_STEP);
                let meter = FetchMeter {
                    recorder: recorder.clone(),
                    step,
                };
                Credentials::OAuth(Box::new(TokenProvider::new(settings, client, meter)))
            }
        }
    }

    /// The token for the next request (`None` without auth).
    pub(crate) async fn token(
        &self,
        stop: &CancellationToken,
    ) -> Result<Option<Token>, TokenError> {
        match self {
            Credentials::None => Ok(None),
            Credentials::Bearer(token) => Ok(Some(token.clone())),
            Credentials::OAuth(provider) => provider.token(stop).await.map(Some),
        }
    }

    /// Whether a 401 is worth one refresh and resend (only refreshable tokens are).
    pub(crate) fn refreshable(&self) -> bool {
        matches!(self, Credentials::OAuth(_))
    }

    /// The API answered 401 to `token`: drop it so the next call fetches a new one.
    pub(crate) fn invalidate(&self, token: &Token) {
        if let Credentials::OAuth(provider) = self {
            provider.invalidate(token);
        }
    }
}

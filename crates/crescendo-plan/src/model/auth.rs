//! `[auth]`: how agents authenticate. The plan names where secrets come from (an
//! environment variable or a file on the agent's machine), never the secrets themselves.

use std::time::Duration;

/// How requests are authorised.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Auth {
    /// No `Authorization` header from the agent (headers in the plan may still set one
    /// from a data column, e.g. `Authorization = "Bearer {token}"`).
    #[default]
    None,
    /// `Authorization: Bearer <token>` with a fixed token.
    Bearer { token: Secret },
    /// OAuth 2 client credentials: the agent fetches and refreshes tokens itself.
    OAuth2ClientCredentials(OAuthClient),
}

/// Where a secret comes from; the plan never holds the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    /// The name of an environment variable on the agent (`client_secret_env`).
    Env(String),
    /// A file path as written in the plan (`client_secret_file`); the reader resolves
    /// it (relative paths against its working directory) and trims surrounding whitespace.
    File(String),
}

/// `kind = "oauth2-client-credentials"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    /// Absolute `http://` or `https://` URL of the token endpoint.
    pub token_url: String,
    /// At least one client; with [`ClientSharing::Shared`] exactly one.
    pub clients: Vec<ClientCredentials>,
    pub sharing: ClientSharing,
    /// Refresh a token when less than this is left of its `expires_in` (default 60 s;
    /// the agent caps it at half the token's lifetime).
    pub refresh_before: Duration,
    /// The `scope` form parameter, when the API wants one.
    pub scope: Option<String>,
}

/// One OAuth client's id and secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    pub client_id: Secret,
    pub client_secret: Secret,
}

/// Which client each agent uses. APIs that limit per client (or per token) see one
/// quota with `Shared` and one per client with `PerAgent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientSharing {
    /// Every agent uses `clients[0]`.
    #[default]
    Shared,
    /// Agent `i` uses `clients[i % clients.len()]`.
    PerAgent,
}

impl OAuthClient {
    /// The client agent `index` uses.
    pub fn client_for(&self, index: u32) -> &ClientCredentials {
        match self.sharing {
            ClientSharing::Shared => &self.clients[0],
            ClientSharing::PerAgent => {
                &self.clients[usize::try_from(index).unwrap_or(0) % self.clients.len()]
            }
        }
    }
}

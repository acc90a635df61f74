//! OAuth client-credentials authentication, as the real login service does it: the
//! configured clients ([`AuthConfig`], [`ClientSpec`]), the token store and the checks
//! the limiter gate and `POST /oauth/token` make (`tokens`).
//!
//! With no client configured authentication is off and every `Authorization` value (or
//! none) is accepted, as before. Secrets and tokens are never logged or shown in stats.

mod tokens;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub(crate) use tokens::{Auth, Authn};

/// Who is calling, as the lock workflow sees it: the OAuth client id when authentication
/// is on, else the caller's hashed key name (`token-…`, never the token), else
/// `anonymous`. Put in request extensions by the gate.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) Arc<str>);

/// What an authenticated request's rate limit (and per-key stats) is keyed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LimitKey {
    /// The OAuth client id: a refreshed token keeps the same quota.
    #[default]
    Client,
    /// The access token: every new token starts with a fresh quota.
    Token,
}

/// The OAuth flags of flowsim.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct AuthConfig {
    /// An OAuth client that may get tokens at `POST /oauth/token` (repeatable). Any
    /// configured client turns authentication on: /api/v2 then needs a valid bearer token.
    #[arg(
        long = "client",
        value_name = "ID:SECRET",
        value_parser = ClientSpec::parse,
        env = "FLOWSIM_CLIENT"
    )]
    pub clients: Vec<ClientSpec>,

    /// A file of further OAuth clients, one `id:secret` a line (`#` comments and blank
    /// lines are skipped).
    #[arg(long, value_name = "PATH", env = "FLOWSIM_CLIENTS_FILE")]
    pub clients_file: Option<PathBuf>,

    /// How long an issued access token stays valid (`24h`, `5m`, `2s`).
    #[arg(long, default_value = "24h", value_parser = parse_lifetime, env = "FLOWSIM_TOKEN_LIFETIME")]
    pub token_lifetime: Duration,

    /// Token requests per `--window` the token endpoint admits, over all callers;
    /// beyond it answers 429 with Retry-After. 0 = unlimited.
    #[arg(long, default_value_t = 0, env = "FLOWSIM_TOKEN_RATE_LIMIT")]
    pub token_rate_limit: u64,

    /// What an authenticated request's rate limit is keyed on.
    #[arg(long, value_enum, default_value_t = LimitKey::Client, env = "FLOWSIM_LIMIT_KEY")]
    pub limit_key: LimitKey,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            clients: Vec::new(),
            clients_file: None,
            token_lifetime: Duration::from_secs(24 * 60 * 60),
            token_rate_limit: 0,
            limit_key: LimitKey::Client,
        }
    }
}

impl AuthConfig {
    /// The `--client` clients followed by those of `--clients-file`.
    pub fn load_clients(&self) -> Result<Vec<ClientSpec>, ClientsError> {
        let mut clients = self.clients.clone();
        if let Some(path) = &self.clients_file {
            let text = std::fs::read_to_string(path).map_err(|source| ClientsError::Read {
                path: path.clone(),
                source,
            })?;
            for (index, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let client = ClientSpec::parse(line).map_err(|message| ClientsError::Line {
                    path: path.clone(),
                    line: index + 1,
                    message,
                })?;
                clients.push(client);
            }
        }
        let mut seen = std::collections::HashSet::new();
        for client in &clients {
            if !seen.insert(client.id.as_str()) {
                return Err(ClientsError::Duplicate(client.id.clone()));
            }
        }
        Ok(clients)
    }
}

/// Why the configured clients cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClientsError {
    /// The clients file could not be read.
    #[error("reading clients file {}", path.display())]
    Read {
        /// The `--clients-file` path.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// A line of the clients file is not `id:secret`.
    #[error("{}:{line}: {message}", path.display())]
    Line {
        /// The `--clients-file` path.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// What is wrong with it (never the secret).
        message: String,
    },
    /// The same client id was configured twice.
    #[error("client `{0}` is configured more than once")]
    Duplicate(String),
}

/// One OAuth client: its id and secret. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSpec {
    /// The client id (also what locks and the default rate-limit key name).
    pub id: String,
    /// The client secret.
    pub secret: String,
}

impl ClientSpec {
    /// Parses `id:secret` (the secret may itself contain `:`; neither part may be empty).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().split_once(':') {
            Some((id, secret)) if !id.trim().is_empty() && !secret.is_empty() => Ok(Self {
                id: id.trim().to_owned(),
                secret: secret.to_owned(),
            }),
            _ => Err("expected a client as `id:secret`, both non-empty".to_owned()),
        }
    }
}

impl fmt::Debug for ClientSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSpec")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn parse_lifetime(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s.trim()) {
        Ok(d) if d.is_zero() => Err("the token lifetime must be longer than zero".to_owned()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("invalid duration `{s}`: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_specs_parse_and_hide_secrets() {
        let c = ClientSpec::parse("agent-1:s3:cr3t").unwrap();
        assert_eq!((c.id.as_str(), c.secret.as_str()), ("agent-1", "s3:cr3t"));
        assert!(!format!("{c:?}").contains("s3"));
        for bad in ["nosecret", ":secret", "id:", ""] {
            assert!(ClientSpec::parse(bad).is_err(), "{bad}");
        }
        assert!(parse_lifetime("0s").is_err());
        assert_eq!(parse_lifetime("2s"), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn clients_file_is_merged_and_checked() {
        let dir = std::env::temp_dir().join(format!("flowsim-clients-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("clients.txt");
        std::fs::write(&path, "# comment\n\nb:two\n c:three \n").unwrap();
        let mut config = AuthConfig {
            clients: vec![ClientSpec::parse("a:one").unwrap()],
            clients_file: Some(path.clone()),
            ..AuthConfig::default()
        };
        let ids: Vec<String> = config
            .load_clients()
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(ids, ["a", "b", "c"]);

        std::fs::write(&path, "b:two\nbroken\n").unwrap();
        let err = config.load_clients().unwrap_err().to_string();
        assert!(
            err.ends_with(":2: expected a client as `id:secret`, both non-empty"),
            "{err}"
        );
        std::fs::write(&path, "a:again\n").unwrap();
        assert!(matches!(config.load_clients(), Err(ClientsError::Duplicate(id)) if id == "a"));
        config.clients_file = Some(dir.join("absent.txt"));
        assert!(matches!(
            config.load_clients(),
            Err(ClientsError::Read { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

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

use crate::values::{ValueError, parse_duration};

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
    /// OAuth clients that may get tokens at `POST /oauth/token`. Any configured client
    /// turns authentication on: /api/v2 then needs a valid bearer token. Library callers
    /// set it directly; the binary takes clients from `--clients-file` and the
    /// [`CLIENTS_ENV`] variable ([`clients_from_env`]), never from its command line.
    #[arg(skip)]
    pub clients: Vec<ClientSpec>,

    /// Refused: a secret on the command line is visible to every user through `ps`. Kept
    /// (hidden) to say where clients go instead.
    #[arg(long = "client", value_name = "ID:SECRET", hide = true, value_parser = RefuseClientFlag)]
    #[doc(hidden)]
    pub refused_client: Vec<Refused>,

    /// A file of OAuth clients, one `id:secret` a line (`#` comments and blank lines are
    /// skipped). Clients also come from the FLOWSIM_CLIENTS environment variable
    /// (`id:secret,id:secret`); never from the command line, where `ps` shows them.
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
            refused_client: Vec::new(),
            clients_file: None,
            token_lifetime: Duration::from_secs(24 * 60 * 60),
            token_rate_limit: 0,
            limit_key: LimitKey::Client,
        }
    }
}

impl AuthConfig {
    /// [`Self::clients`] followed by those of `--clients-file`.
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
                let client = ClientSpec::parse(line).map_err(|source| ClientsError::Line {
                    path: path.clone(),
                    line: index + 1,
                    source,
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
    #[error("clients file {}:{line}", path.display())]
    Line {
        /// The `--clients-file` path.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// What is wrong with it (never the secret).
        #[source]
        source: ClientSpecError,
    },
    /// An entry of [`CLIENTS_ENV`] is not `id:secret`.
    #[error("{CLIENTS_ENV} entry {entry}")]
    Env {
        /// Entry number, from 1.
        entry: usize,
        /// What is wrong with it (never the secret).
        #[source]
        source: ClientSpecError,
    },
    /// [`CLIENTS_ENV`] is set but not UTF-8.
    #[error("{CLIENTS_ENV} is not UTF-8 text")]
    EnvNotUtf8,
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
    pub fn parse(s: &str) -> Result<Self, ClientSpecError> {
        match s.trim().split_once(':') {
            Some((id, secret)) if !id.trim().is_empty() && !secret.is_empty() => Ok(Self {
                id: id.trim().to_owned(),
                secret: secret.to_owned(),
            }),
            _ => Err(ClientSpecError::Malformed),
        }
    }
}

/// Why a client cannot be configured (the message never holds the secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClientSpecError {
    /// Not `id:secret` with both parts non-empty.
    #[error("expected a client as `id:secret`, both non-empty")]
    Malformed,
    /// `--client`: secrets never go on the command line.
    #[error(
        "flowsim takes no client secret on its command line, where `ps` shows it: put \
         `id:secret` lines in a file named by --clients-file PATH (or FLOWSIM_CLIENTS_FILE), \
         or set FLOWSIM_CLIENTS=id:secret[,id:secret…]"
    )]
    InArgv,
}

/// The environment variable the binary reads clients from: `id:secret` entries separated
/// by commas (a secret with a comma goes in the clients file instead).
pub const CLIENTS_ENV: &str = "FLOWSIM_CLIENTS";

/// The clients of [`CLIENTS_ENV`], none when it is unset or empty.
pub fn clients_from_env() -> Result<Vec<ClientSpec>, ClientsError> {
    match std::env::var(CLIENTS_ENV) {
        Ok(value) => parse_client_list(&value),
        Err(std::env::VarError::NotPresent) => Ok(Vec::new()),
        Err(std::env::VarError::NotUnicode(_)) => Err(ClientsError::EnvNotUtf8),
    }
}

/// `id:secret,id:secret` (blank entries skipped), as [`CLIENTS_ENV`] holds them.
pub fn parse_client_list(value: &str) -> Result<Vec<ClientSpec>, ClientsError> {
    value
        .split(',')
        .enumerate()
        .filter(|(_, entry)| !entry.trim().is_empty())
        .map(|(i, entry)| {
            ClientSpec::parse(entry).map_err(|source| ClientsError::Env {
                entry: i + 1,
                source,
            })
        })
        .collect()
}

/// The value of the refused `--client` flag: there is none, its parser always fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {}

/// `--client`'s parser: always an error, which (unlike clap's usual one) does not
/// repeat the value, since that is a secret.
#[derive(Debug, Clone, Copy)]
struct RefuseClientFlag;

impl clap::builder::TypedValueParser for RefuseClientFlag {
    type Value = Refused;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        _value: &std::ffi::OsStr,
    ) -> Result<Refused, clap::Error> {
        let message = format!("--client: {}", ClientSpecError::InArgv);
        Err(
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, message)
                .format(&mut cmd.clone()),
        )
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

fn parse_lifetime(s: &str) -> Result<Duration, ValueError> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(ValueError::ZeroTokenLifetime),
        d => Ok(d),
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
        assert_eq!(parse_lifetime("0s"), Err(ValueError::ZeroTokenLifetime));
        assert_eq!(parse_lifetime("2s"), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn env_lists_parse_and_never_echo_secrets() {
        let ids = |v: &str| -> Vec<String> {
            parse_client_list(v)
                .unwrap()
                .into_iter()
                .map(|c| c.id)
                .collect()
        };
        assert_eq!(ids("a:one, b:t:wo ,,"), ["a", "b"]);
        assert!(ids("").is_empty());
        let e = parse_client_list("a:one,b-s3cret").unwrap_err();
        assert!(matches!(
            e,
            ClientsError::Env {
                entry: 2,
                source: ClientSpecError::Malformed
            }
        ));
        assert_eq!(e.to_string(), "FLOWSIM_CLIENTS entry 2");
        assert!(!format!("{e:?}{e}").contains("s3cret"));
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
        let err = config.load_clients().unwrap_err();
        assert!(err.to_string().ends_with("clients.txt:2"), "{err}");
        assert!(
            matches!(
                err,
                ClientsError::Line {
                    line: 2,
                    source: ClientSpecError::Malformed,
                    ..
                }
            ),
            "{err:?}"
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

//! Flag values that both [`config`](crate::config) and [`auth`](crate::auth) parse:
//! durations, and [`ValueError`], the typed error of every flag value parser.

use std::time::Duration;

/// A flag value flowsim cannot use (what clap prints after the flag's name).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    /// Not a duration such as `60s`, `1m` or `500ms`.
    #[error("invalid duration `{value}`")]
    Duration {
        /// The value as given.
        value: String,
        /// Why humantime refused it.
        #[source]
        source: humantime::DurationError,
    },
    /// `--window 0s`.
    #[error("the window must be longer than zero")]
    ZeroWindow,
    /// `--token-lifetime 0s`.
    #[error("the token lifetime must be longer than zero")]
    ZeroTokenLifetime,
    /// `--headers` with a family other than inin, x-ratelimit, ietf or none.
    #[error(
        "unknown header family `{0}`: expected a comma-separated list of inin, x-ratelimit, \
         ietf, or none"
    )]
    HeaderFamily(String),
}

/// `humantime` durations, plus a bare `0`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, ValueError> {
    humantime::parse_duration(s.trim()).map_err(|source| ValueError::Duration {
        value: s.to_owned(),
        source,
    })
}

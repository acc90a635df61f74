//! Simulator configuration: one struct that is both the library's `Config` and the
//! binary's (and the controller's `demo`) command-line flags.

use std::fmt;
use std::time::Duration;

use crate::auth::AuthConfig;
pub use crate::values::ValueError;
use crate::values::parse_duration;

/// Everything that shapes the simulated API. `Config::default()` equals the flag defaults.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[command(next_help_heading = "Simulated API (flowsim)")]
pub struct Config {
    /// GET/PUT on an unknown flow creates it instead of answering 404.
    #[arg(long, env = "FLOWSIM_AUTO_CREATE")]
    pub auto_create: bool,

    /// Seed this many flows at start, with ids `flow-1` … `flow-N` (printed at start).
    #[arg(long, default_value_t = 0, env = "FLOWSIM_FLOWS")]
    pub flows: u64,

    /// Requests per window allowed for each caller (its token, or its OAuth client with
    /// `--limit-key client`); 0 disables per-caller limiting.
    #[arg(long, default_value_t = 300, env = "FLOWSIM_LIMIT")]
    pub limit: u64,

    /// Length of the rate-limit window (`60s`, `1m`, `500ms`).
    #[arg(long, default_value = "60s", value_parser = parse_window, env = "FLOWSIM_WINDOW")]
    pub window: Duration,

    /// Organisation-wide limit over all callers at once (same window and algorithm); 0 = off.
    #[arg(long, default_value_t = 0, env = "FLOWSIM_ORG_LIMIT")]
    pub org_limit: u64,

    /// How the limiter counts.
    #[arg(long, value_enum, default_value_t = Algorithm::FixedWindow, env = "FLOWSIM_ALGORITHM")]
    pub algorithm: Algorithm,

    /// Requests that may pass at once (token-bucket capacity, GCRA burst); default = the limit.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), env = "FLOWSIM_BURST")]
    pub burst: Option<u64>,

    /// How Retry-After and the reset headers round fractional seconds to an integer.
    #[arg(long, value_enum, default_value_t = Rounding::Ceil, env = "FLOWSIM_RETRY_AFTER_ROUNDING")]
    pub retry_after_rounding: Rounding,

    /// Rate-limit header families to send: any of `inin,x-ratelimit,ietf`, or `none`.
    #[arg(
        long,
        default_value = "inin,x-ratelimit",
        value_parser = HeaderFamilies::parse,
        env = "FLOWSIM_HEADERS"
    )]
    pub headers: HeaderFamilies,

    /// Send `X-RateLimit-Reset` as epoch seconds (GitHub style) instead of a delta.
    #[arg(long, env = "FLOWSIM_X_RESET_EPOCH")]
    pub x_reset_epoch: bool,

    /// Fixed extra latency added to every API response.
    #[arg(long, default_value = "0s", value_parser = parse_duration, env = "FLOWSIM_LATENCY")]
    pub latency: Duration,

    /// Uniform random latency in `[0, jitter]` added on top of `--latency`.
    #[arg(long, default_value = "0s", value_parser = parse_duration, env = "FLOWSIM_JITTER")]
    pub jitter: Duration,

    /// A PUT to a flow the caller has not checked out answers 409 (by default only a
    /// flow locked by another client refuses writes).
    #[arg(long, env = "FLOWSIM_REQUIRE_CHECKOUT")]
    pub require_checkout: bool,

    /// How long a checkin or publish operation stays `InProgress` (0: complete at once).
    #[arg(long, default_value = "0s", value_parser = parse_duration, env = "FLOWSIM_OPERATION_DELAY")]
    pub operation_delay: Duration,

    /// OAuth clients and tokens (off unless a client is configured).
    #[command(flatten)]
    pub auth: AuthConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            auto_create: false,
            flows: 0,
            limit: 300,
            window: Duration::from_secs(60),
            org_limit: 0,
            algorithm: Algorithm::FixedWindow,
            burst: None,
            retry_after_rounding: Rounding::Ceil,
            headers: HeaderFamilies::default(),
            x_reset_epoch: false,
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            require_checkout: false,
            operation_delay: Duration::ZERO,
            auth: AuthConfig::default(),
        }
    }
}

impl Config {
    /// Checks what clap cannot (library callers build `Config` by hand).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if (self.limit > 0 || self.org_limit > 0) && self.window.is_zero() {
            return Err(ConfigError::ZeroWindow);
        }
        if self.burst == Some(0) {
            return Err(ConfigError::ZeroBurst);
        }
        if self.auth.token_lifetime.is_zero() {
            return Err(ConfigError::ZeroTokenLifetime);
        }
        if self.auth.token_rate_limit > 0 && self.window.is_zero() {
            return Err(ConfigError::ZeroWindow);
        }
        Ok(())
    }
}

/// A configuration that cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A limit is set but the window is empty.
    #[error("the rate-limit window must be longer than zero")]
    ZeroWindow,
    /// `--burst 0` would never admit anything.
    #[error("the burst must be at least 1")]
    ZeroBurst,
    /// Tokens that expire at once would make every API call a 401.
    #[error("the token lifetime must be longer than zero")]
    ZeroTokenLifetime,
}

/// Rate-limiting algorithm (see `limiter` for the math of each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Algorithm {
    /// `limit` requests per window, the window starting at the first request; herds at the edge.
    #[default]
    FixedWindow,
    /// Sliding window counter: `prev·(1 − elapsed/W) + current`.
    SlidingWindow,
    /// Token bucket refilled at `limit/window`, capacity `burst`.
    TokenBucket,
    /// Generic cell rate algorithm with emission interval `window/limit`.
    Gcra,
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::FixedWindow => "fixed-window",
            Self::SlidingWindow => "sliding-window",
            Self::TokenBucket => "token-bucket",
            Self::Gcra => "gcra",
        })
    }
}

/// How a fractional number of seconds becomes the integer a header carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Rounding {
    /// Round up; a throttled answer never says less than 1 second.
    #[default]
    Ceil,
    /// Round down (may say `Retry-After: 0`, as some real servers do).
    Floor,
    /// Round half up.
    Round,
}

impl Rounding {
    /// Whole seconds for a reset-style value (may be 0).
    pub fn seconds(self, d: Duration) -> u64 {
        let whole = d.as_secs();
        let frac = d.subsec_nanos();
        match self {
            Self::Ceil => whole + u64::from(frac > 0),
            Self::Floor => whole,
            Self::Round => whole + u64::from(frac >= 500_000_000),
        }
    }

    /// Whole seconds for a `Retry-After` on a throttled answer: like [`Self::seconds`],
    /// except that `ceil` never answers less than 1.
    pub fn retry_after(self, d: Duration) -> u64 {
        match self {
            Self::Ceil => self.seconds(d).max(1),
            _ => self.seconds(d),
        }
    }
}

/// Which rate-limit header families every limited response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderFamilies {
    /// `inin-ratelimit-allowed/count/reset` (Genesys Cloud).
    pub inin: bool,
    /// `X-RateLimit-Limit/Remaining/Reset` (de-facto).
    pub x_ratelimit: bool,
    /// `RateLimit-Policy` and `RateLimit` (IETF draft, structured fields).
    pub ietf: bool,
}

impl Default for HeaderFamilies {
    fn default() -> Self {
        Self {
            inin: true,
            x_ratelimit: true,
            ietf: false,
        }
    }
}

impl HeaderFamilies {
    /// No rate-limit headers at all.
    pub const NONE: Self = Self {
        inin: false,
        x_ratelimit: false,
        ietf: false,
    };

    /// Parses `inin,x-ratelimit,ietf` (any combination, any order) or `none`.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let mut out = Self::NONE;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.to_ascii_lowercase().as_str() {
                "inin" => out.inin = true,
                "x-ratelimit" | "xratelimit" | "x" => out.x_ratelimit = true,
                "ietf" | "ratelimit" => out.ietf = true,
                "none" => {}
                other => return Err(ValueError::HeaderFamily(other.to_owned())),
            }
        }
        Ok(out)
    }
}

impl fmt::Display for HeaderFamilies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [
            (self.inin, "inin"),
            (self.x_ratelimit, "x-ratelimit"),
            (self.ietf, "ietf"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

fn parse_window(s: &str) -> Result<Duration, ValueError> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(ValueError::ZeroWindow),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        let argv = std::iter::once("flowsim").chain(args.iter().copied());
        Cli::try_parse_from(argv).map(|c| c.config)
    }

    #[test]
    fn default_matches_flag_defaults() {
        assert_eq!(parse(&[]).unwrap(), Config::default());
    }

    #[test]
    fn flags_parse() {
        let c = parse(&[
            "--auto-create",
            "--flows",
            "10",
            "--limit",
            "20",
            "--window",
            "2s",
            "--org-limit",
            "50",
            "--algorithm",
            "gcra",
            "--burst",
            "5",
            "--retry-after-rounding",
            "floor",
            "--headers",
            "ietf,inin",
            "--x-reset-epoch",
            "--latency",
            "5ms",
            "--jitter",
            "0",
            "--require-checkout",
            "--operation-delay",
            "250ms",
            "--token-lifetime",
            "2s",
            "--token-rate-limit",
            "7",
            "--limit-key",
            "token",
        ])
        .unwrap();
        assert!(c.require_checkout);
        assert_eq!(c.operation_delay, Duration::from_millis(250));
        assert!(c.auth.clients.is_empty());
        assert_eq!(c.auth.token_lifetime, Duration::from_secs(2));
        assert_eq!(c.auth.token_rate_limit, 7);
        assert_eq!(c.auth.limit_key, crate::auth::LimitKey::Token);
        assert!(c.auto_create && c.x_reset_epoch);
        assert_eq!(
            (c.flows, c.limit, c.org_limit, c.burst),
            (10, 20, 50, Some(5))
        );
        assert_eq!(c.window, Duration::from_secs(2));
        assert_eq!(c.algorithm, Algorithm::Gcra);
        assert_eq!(c.retry_after_rounding, Rounding::Floor);
        assert_eq!(c.headers.to_string(), "inin,ietf");
        assert_eq!(c.latency, Duration::from_millis(5));
        assert_eq!(c.jitter, Duration::ZERO);
    }

    #[test]
    fn bad_flags_are_rejected() {
        assert!(parse(&["--window", "0s"]).is_err());
        assert!(parse(&["--burst", "0"]).is_err());
        assert!(parse(&["--headers", "inin,bogus"]).is_err());
        assert!(parse(&["--algorithm", "leaky"]).is_err());
        // No secret on the command line, in any form: the error says where it goes.
        for argv in [
            &["--client", "a:s3cret"][..],
            &["--client", "a"],
            &["--client=a:s3cret"],
        ] {
            let e = parse(argv).unwrap_err().to_string();
            assert!(
                e.contains("--clients-file") && e.contains("FLOWSIM_CLIENTS"),
                "{e}"
            );
            assert!(!e.contains("s3cret"), "{e}");
        }
        assert!(parse(&["--token-lifetime", "0s"]).is_err());
        assert!(parse(&["--limit-key", "ip"]).is_err());
    }

    #[test]
    fn value_errors_are_typed() {
        assert_eq!(parse_window("0s"), Err(ValueError::ZeroWindow));
        let e = parse_duration("soon").unwrap_err();
        assert!(matches!(&e, ValueError::Duration { value, .. } if value == "soon"));
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(
            HeaderFamilies::parse("inin,bogus"),
            Err(ValueError::HeaderFamily("bogus".into()))
        );
    }

    #[test]
    fn header_families_parse() {
        assert_eq!(HeaderFamilies::parse("none").unwrap(), HeaderFamilies::NONE);
        assert_eq!(HeaderFamilies::NONE.to_string(), "none");
        let all = HeaderFamilies::parse(" x-ratelimit , IETF,inin").unwrap();
        assert!(all.inin && all.x_ratelimit && all.ietf);
        assert_eq!(
            HeaderFamilies::parse(&HeaderFamilies::default().to_string()).unwrap(),
            HeaderFamilies::default()
        );
    }

    #[test]
    fn rounding_modes() {
        let d = Duration::from_millis(1_500);
        assert_eq!(Rounding::Ceil.seconds(d), 2);
        assert_eq!(Rounding::Floor.seconds(d), 1);
        assert_eq!(Rounding::Round.seconds(d), 2);
        assert_eq!(Rounding::Round.seconds(Duration::from_millis(1_499)), 1);
        assert_eq!(Rounding::Ceil.seconds(Duration::from_secs(2)), 2);
        assert_eq!(Rounding::Ceil.retry_after(Duration::ZERO), 1);
        assert_eq!(Rounding::Ceil.retry_after(Duration::from_millis(10)), 1);
        assert_eq!(Rounding::Floor.retry_after(Duration::from_millis(900)), 0);
    }

    #[test]
    fn validate_catches_hand_built_configs() {
        let mut c = Config {
            window: Duration::ZERO,
            ..Config::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::ZeroWindow));
        c.limit = 0;
        assert_eq!(c.validate(), Ok(()));
        c.burst = Some(0);
        assert_eq!(c.validate(), Err(ConfigError::ZeroBurst));
        c.burst = None;
        c.auth.token_lifetime = Duration::ZERO;
        assert_eq!(c.validate(), Err(ConfigError::ZeroTokenLifetime));
    }
}

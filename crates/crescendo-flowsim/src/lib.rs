//! flowsim: a faithful local stand-in for an Architect-style flows API (Genesys Cloud)
//! with its rate limits, so that rehearsals and tests never touch production.
//!
//! It serves `GET /api/v2/flows`, `GET`/`PUT /api/v2/flows/{flowId}` and the Architect
//! lock workflow `POST /api/v2/flows/actions/{checkout,checkin,publish,unlock}?flow={id}`
//! behind a per-token limiter (optionally also an organisation-wide one) that answers
//! like the real API: `429` with an integer `Retry-After`, the Genesys error body, and
//! `inin-ratelimit-*`, `X-RateLimit-*` or IETF `RateLimit` headers on every response.
//!
//! With OAuth clients configured (`--clients-file PATH` or `FLOWSIM_CLIENTS`, never the
//! command line, where `ps` would show the secrets),
//! `POST /oauth/token` issues client-credentials tokens and every `/api/v2` request needs
//! a valid `Authorization: Bearer` token (401 `bad.credentials` otherwise, checked before
//! the rate limit); the limit is then keyed on the OAuth client (`--limit-key`). With no
//! client configured any `Authorization` value, or none, is accepted.
//!
//! Flows carry `lockedClient`, `savedVersion`, `checkedInVersion`, `publishedVersion` and
//! `currentOperation`. A write or checkout while another client holds the lock answers
//! 409 `flow.locked`; checkin and publish answer an operation that completes after
//! `--operation-delay`. Test controls (`/__sim/stats`, `/__sim/stall`, `/__sim/reset`,
//! `/__sim/revoke-tokens`,
//! `/healthz`) are never limited.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let config = crescendo_flowsim::Config { limit: 20, auto_create: true, ..Default::default() };
//! crescendo_flowsim::serve(listener, config, shutdown).await
//! # }
//! ```
//!
//! # Layout
//!
//! - [`config`]: [`Config`], which is also the clap flag set (`#[command(flatten)]` it).
//! - [`auth`]: OAuth clients ([`AuthConfig`]: from `--clients-file` or `FLOWSIM_CLIENTS`,
//!   never argv), the token store and the bearer check.
//! - `values`: flag values both parse (durations) and their error, [`ValueError`].
//! - [`limiter`]: pure limiter math over an injected `now`, one file per algorithm
//!   (fixed window, sliding window counter, token bucket, GCRA) plus the
//!   per-token + organisation combination.
//! - `admission`: per-key limiter state and counters in a sharded map; the clock.
//! - [`keys`]: client keys (hashed `Authorization` values, or `anonymous`).
//! - `headers`: the rate-limit header families and the correlation id.
//! - `flows`: the flow store and (`flows::workflow`) each flow's lock, versions and
//!   operations; `error`: Genesys-shaped JSON errors.
//! - `paths`: the route templates, shared by the router and the stats.
//! - `routes`: the router, the gate middleware (auth, then limiter), flow handlers, lock
//!   actions, the token endpoint, test controls.
//! - [`stats`]: the `/__sim/stats` body and the lock-free status counters.
//! - `state`: the shared `App`, latency/jitter and the stall switch.

#![forbid(unsafe_code)]

mod admission;
pub mod auth;
pub mod config;
mod error;
mod flows;
mod headers;
pub mod keys;
pub mod limiter;
mod paths;
mod routes;
mod shard;
mod state;
pub mod stats;
mod values;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use auth::{
    AuthConfig, CLIENTS_ENV, ClientSpec, ClientSpecError, ClientsError, LimitKey, clients_from_env,
    parse_client_list,
};
pub use config::{Algorithm, Config, ConfigError, HeaderFamilies, Rounding, ValueError};
pub use flows::seeded_summary;
pub use keys::{client_key_name, key_name};
pub use stats::{KeyStats, Stats};

/// How long open connections may take to finish after shutdown before `serve` returns.
/// Latency and stall waits end at shutdown, so this is rarely reached.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves the simulated API on `listener` until `shutdown` is cancelled.
///
/// Fails at once with `InvalidInput` for a configuration that cannot run (see
/// [`Config::validate`]) or whose clients file cannot be read or parsed.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> io::Result<()> {
    config
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let clients = config
        .auth
        .load_clients()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    tracing::info!(
        limit = config.limit,
        window = ?config.window,
        org_limit = config.org_limit,
        algorithm = %config.algorithm,
        headers = %config.headers,
        flows = config.flows,
        oauth_clients = clients.len(),
        token_lifetime = ?config.auth.token_lifetime,
        limit_key = ?config.auth.limit_key,
        "flowsim starting"
    );
    let app = Arc::new(state::App::new(config, clients, shutdown.clone()));
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
    });
    let server = axum::serve(listener, routes::router(app))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .into_future();
    let grace_over = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => result,
        () = grace_over => {
            tracing::warn!("connections still open after the shutdown grace period");
            Ok(())
        }
    }
}

//! flowsim: a faithful local stand-in for an Architect-style flows API (Genesys Cloud)
//! with its rate limits, so that rehearsals and tests never touch production.
//!
//! It serves `GET /api/v2/flows`, `GET`/`PUT /api/v2/flows/{flowId}` behind a per-token
//! limiter (optionally also an organisation-wide one) that answers like the real API:
//! `429` with an integer `Retry-After`, the Genesys error body, and `inin-ratelimit-*`,
//! `X-RateLimit-*` or IETF `RateLimit` headers on every response. Test controls
//! (`/__sim/stats`, `/__sim/stall`, `/__sim/reset`, `/healthz`) are never limited.
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
//! - [`limiter`]: pure limiter math over an injected `now`, one file per algorithm
//!   (fixed window, sliding window counter, token bucket, GCRA) plus the
//!   per-token + organisation combination.
//! - `admission`: per-key limiter state and counters in a sharded map; the clock.
//! - [`keys`]: client keys (hashed `Authorization` values, or `anonymous`).
//! - `headers`: the rate-limit header families and the correlation id.
//! - `flows`: the flow store; `error`: Genesys-shaped JSON errors.
//! - `routes`: the router, the limiter gate middleware, flow handlers, test controls.
//! - [`stats`]: the `/__sim/stats` body and the lock-free status counters.
//! - `state`: the shared `App`, latency/jitter and the stall switch.

#![forbid(unsafe_code)]

mod admission;
pub mod config;
mod error;
mod flows;
mod headers;
pub mod keys;
pub mod limiter;
mod routes;
mod shard;
mod state;
pub mod stats;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{Algorithm, Config, ConfigError, HeaderFamilies, Rounding};
pub use keys::key_name;
pub use stats::{KeyStats, Stats};

/// How long open connections may take to finish after shutdown before `serve` returns.
/// Latency and stall waits end at shutdown, so this is rarely reached.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves the simulated API on `listener` until `shutdown` is cancelled.
///
/// Fails at once with `InvalidInput` for a configuration that cannot run (see
/// [`Config::validate`]).
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> io::Result<()> {
    config
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    tracing::info!(
        limit = config.limit,
        window = ?config.window,
        org_limit = config.org_limit,
        algorithm = %config.algorithm,
        headers = %config.headers,
        flows = config.flows,
        "flowsim starting"
    );
    let app = Arc::new(state::App::new(config, shutdown.clone()));
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

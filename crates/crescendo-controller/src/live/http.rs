//! `--metrics-listen ADDR`: `GET /metrics` in the Prometheus text format, served from
//! the shared [`LiveMetrics`] snapshot.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::LiveMetrics;

/// The content type of the text exposition format, version 0.0.4.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn metrics(State(live): State<LiveMetrics>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], live.render())
}

async fn index() -> &'static str {
    "crescendo controller: Prometheus metrics at /metrics\n"
}

/// Serve `/metrics` on an already-bound `listener` until `shutdown` is cancelled.
pub async fn serve_metrics(
    listener: TcpListener,
    live: LiveMetrics,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/", get(index))
        .with_state(live);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Bind `addr` and serve `/metrics` from `live` in a task until `shutdown`; returns the
/// bound address (the real port when `addr` asked for port 0).
pub async fn start_metrics(
    addr: SocketAddr,
    live: LiveMetrics,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = serve_metrics(listener, live, shutdown).await {
            tracing::error!("metrics endpoint failed: {e}");
        }
    });
    Ok(bound)
}

//! Test controls, neither rate limited nor delayed: stats, stall, reset, token revocation.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::state::App;
use crate::stats::Stats;

pub(super) async fn stats(State(app): State<Arc<App>>) -> Json<Stats> {
    Json(app.stats())
}

#[derive(Debug, Deserialize)]
struct StallRequest {
    ms: u64,
}

pub(super) async fn stall(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let StallRequest { ms } = serde_json::from_slice(&body).map_err(ApiError::MalformedJson)?;
    app.stall.start(&app.clock, Duration::from_millis(ms));
    tracing::info!(ms, "stalling API responses");
    Ok(Json(json!({ "ms": ms })))
}

pub(super) async fn reset(State(app): State<Arc<App>>) -> Json<Value> {
    app.reset();
    tracing::info!("stats and limiter state reset");
    Json(json!({ "reset": true }))
}

pub(super) async fn revoke_tokens(State(app): State<Arc<App>>) -> Json<Value> {
    let revoked = app.auth.revoke_all();
    tracing::info!(revoked, "every issued token revoked");
    Json(json!({ "revoked": revoked }))
}

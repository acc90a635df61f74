//! The HTTP surface: `/api/v2/flows…` behind the limiter gate, and the unlimited test
//! controls `/__sim/*` and `/healthz`.

mod api;
mod gate;
mod sim;

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};

use crate::state::App;

/// Route template of the flow list.
pub(crate) const FLOWS: &str = "/api/v2/flows";
/// Route template of one flow.
pub(crate) const FLOW: &str = "/api/v2/flows/{flowId}";

pub(crate) fn router(app: Arc<App>) -> Router {
    // The gate wraps every API route, the 405 answers and the fallback (which also
    // catches non-API paths; the gate lets those through untouched).
    let api = Router::new()
        .route(FLOWS, get(api::list_flows))
        .route(FLOW, get(api::get_flow).put(api::put_flow))
        .method_not_allowed_fallback(api::method_not_allowed)
        .fallback(api::not_found)
        .layer(from_fn_with_state(app.clone(), gate::gate));
    let controls = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/__sim/stats", get(sim::stats))
        .route("/__sim/stall", post(sim::stall))
        .route("/__sim/reset", post(sim::reset));
    api.merge(controls).with_state(app)
}

//! The HTTP surface: `/api/v2/flows…` (flows and lock actions) behind the gate (OAuth
//! check, then limiter), `POST /oauth/token` with its own optional limit, and the
//! unlimited test controls `/__sim/*` and `/healthz`.

mod actions;
mod api;
mod gate;
mod oauth;
mod sim;

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};

use crate::flows::Action;
use crate::paths::{CHECKIN, CHECKOUT, FLOW, FLOWS, PUBLISH, TOKEN, UNLOCK};
use crate::state::App;

pub(crate) fn router(app: Arc<App>) -> Router {
    // The gate wraps every API route, the 405 answers and the fallback (which also
    // catches non-API paths; the gate lets those through untouched).
    let api = Router::new()
        .route(FLOWS, get(api::list_flows))
        .route(FLOW, get(api::get_flow).put(api::put_flow))
        .route(CHECKOUT, actions::route(Action::Checkout))
        .route(CHECKIN, actions::route(Action::Checkin))
        .route(PUBLISH, actions::route(Action::Publish))
        .route(UNLOCK, actions::route(Action::Unlock))
        .method_not_allowed_fallback(api::method_not_allowed)
        .fallback(api::not_found)
        .layer(from_fn_with_state(app.clone(), gate::gate));
    let controls = Router::new()
        .route(TOKEN, post(oauth::token))
        .route("/healthz", get(|| async { "ok" }))
        .route("/__sim/stats", get(sim::stats))
        .route("/__sim/stall", post(sim::stall))
        .route("/__sim/reset", post(sim::reset))
        .route("/__sim/revoke-tokens", post(sim::revoke_tokens));
    api.merge(controls).with_state(app)
}

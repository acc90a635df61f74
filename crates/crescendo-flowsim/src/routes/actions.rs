//! The lock workflow: `POST /api/v2/flows/actions/{checkout,checkin,publish,unlock}?flow={id}`.
//! Checkout and unlock answer the flow (200); checkin answers its operation with 200 and
//! publish with 202. A flow locked by another client answers 409 with a JSON body.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};
use serde::Deserialize;

use super::api::refusal_error;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::flows::{Acted, Action};
use crate::state::App;

/// The `?flow={id}` every action takes.
#[derive(Debug, Deserialize)]
pub(super) struct ActionParams {
    flow: Option<String>,
}

type Params = Result<Query<ActionParams>, QueryRejection>;

/// The `POST` route of one action.
pub(super) fn route(action: Action) -> MethodRouter<Arc<App>> {
    post(
        move |app: State<Arc<App>>, caller: Extension<Caller>, p: Params| async move {
            act(action, app, caller, p)
        },
    )
}

fn act(
    action: Action,
    State(app): State<Arc<App>>,
    Extension(Caller(caller)): Extension<Caller>,
    params: Params,
) -> Response {
    let Query(params) = match params {
        Ok(params) => params,
        Err(e) => return ApiError::BadRequest(e.body_text()).into_response(),
    };
    let Some(id) = params.flow.filter(|id| !id.is_empty()) else {
        return ApiError::BadRequest("the `flow` query parameter is required".into())
            .into_response();
    };
    let now = app.clock.now();
    let delay = app.config.operation_delay;
    match app
        .flows
        .act(&id, action, &caller, app.missing(), now, delay)
    {
        Ok(Acted::Flow(flow)) => Json(flow).into_response(),
        Ok(Acted::Operation(op)) if action == Action::Publish => {
            (StatusCode::ACCEPTED, Json(op)).into_response()
        }
        Ok(Acted::Operation(op)) => Json(op).into_response(),
        Err(refusal) => refusal_error(refusal, id).into_response(),
    }
}

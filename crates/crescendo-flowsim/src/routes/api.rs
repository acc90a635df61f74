//! Flow handlers: `GET /api/v2/flows`, `GET` and `PUT /api/v2/flows/{flowId}` (a PUT
//! obeys the lock rules), and the JSON 404/405 answers.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::Uri;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::flows::{Refusal, Writer};
use crate::state::App;

const DEFAULT_PAGE_SIZE: u64 = 25;
const MAX_PAGE_SIZE: u64 = 500;

type ApiResult = Result<Json<Value>, ApiError>;

pub(super) async fn get_flow(
    State(app): State<Arc<App>>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let id = flow_id(id)?;
    app.flows
        .get(&id, app.missing(), app.clock.now())
        .map(Json)
        .ok_or(ApiError::FlowNotFound(id))
}

pub(super) async fn put_flow(
    State(app): State<Arc<App>>,
    Extension(Caller(caller)): Extension<Caller>,
    id: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> ApiResult {
    let id = flow_id(id)?;
    let patch = match serde_json::from_slice::<Value>(&body).map_err(ApiError::MalformedJson)? {
        Value::Object(patch) => patch,
        _ => {
            return Err(ApiError::BadRequest(
                "the request body must be a JSON object".into(),
            ));
        }
    };
    for field in ["name", "description"] {
        match patch.get(field) {
            None | Some(Value::String(_)) => {}
            Some(Value::Null) if field == "description" => {}
            Some(_) => return Err(ApiError::BadRequest(format!("`{field}` must be a string"))),
        }
    }
    let writer = Writer {
        caller: &caller,
        require_checkout: app.config.require_checkout,
    };
    app.flows
        .put(&id, patch, app.missing(), writer, app.clock.now())
        .map(Json)
        .map_err(|refusal| refusal_error(refusal, id))
}

/// The API error for a flow that refused a write or an action.
pub(super) fn refusal_error(refusal: Refusal, id: String) -> ApiError {
    match refusal {
        Refusal::NotFound => ApiError::FlowNotFound(id),
        Refusal::LockedByOther => ApiError::FlowLocked,
        Refusal::NotCheckedOut => ApiError::NotCheckedOut,
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListParams {
    page_number: Option<u64>,
    page_size: Option<u64>,
}

pub(super) async fn list_flows(
    State(app): State<Arc<App>>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> ApiResult {
    let Query(params) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let number = params.page_number.unwrap_or(1);
    let size = params.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    if number == 0 {
        return Err(ApiError::BadRequest("pageNumber must be at least 1".into()));
    }
    if !(1..=MAX_PAGE_SIZE).contains(&size) {
        return Err(ApiError::BadRequest(format!(
            "pageSize must be between 1 and {MAX_PAGE_SIZE}"
        )));
    }
    let page = app.flows.list(number, size, app.clock.now());
    let page_count = page.total.div_ceil(size);
    let uri = |n: u64| format!("/api/v2/flows?pageSize={size}&pageNumber={n}");
    let mut body = json!({
        "entities": page.entities,
        "pageNumber": number,
        "pageSize": size,
        "total": page.total,
        "pageCount": page_count,
        "firstUri": uri(1),
        "selfUri": uri(number),
        "lastUri": uri(page_count.max(1)),
    });
    if number < page_count {
        body["nextUri"] = json!(uri(number + 1));
    }
    if number > 1 {
        body["previousUri"] = json!(uri(number - 1));
    }
    Ok(Json(body))
}

pub(super) async fn not_found(uri: Uri) -> ApiError {
    ApiError::NoRoute(uri.path().to_owned())
}

pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

pub(super) fn flow_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    id.map(|Path(id)| id)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

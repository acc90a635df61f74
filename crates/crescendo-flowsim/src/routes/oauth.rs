//! `POST /oauth/token`: the client-credentials grant. HTTP Basic client id and secret,
//! form body `grant_type=client_credentials`; answers
//! `{"access_token","token_type":"bearer","expires_in"}`, or an OAuth error body
//! (`invalid_client` 401, `unsupported_grant_type` 400). Limited only by
//! `--token-rate-limit`; never delayed; neither secrets nor tokens are logged.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;

use crate::error::ApiError;
use crate::state::App;
use crate::stats::Endpoint;

type TokenForm = Result<Form<HashMap<String, String>>, FormRejection>;

pub(super) async fn token(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    form: TokenForm,
) -> Response {
    let response = issue(&app, &headers, form);
    app.statuses.record(Endpoint::Token, response.status());
    response
}

fn issue(app: &App, headers: &HeaderMap, form: TokenForm) -> Response {
    let now = app.clock.now();
    if let Err(retry_after) = app.auth.admit_token_request(now) {
        let seconds = app.config.retry_after_rounding.retry_after(retry_after);
        return ApiError::TooManyRequests(seconds).into_response();
    }
    let credentials = headers
        .get(AUTHORIZATION)
        .and_then(|v| basic_credentials(v.as_bytes()));
    let client = match credentials {
        Some((id, secret)) if app.auth.verify(&id, &secret) => id,
        _ => {
            let mut response = oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
            let challenge = HeaderValue::from_static("Basic realm=\"flowsim\"");
            response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
            return response;
        }
    };
    let grant = form.ok().and_then(|Form(f)| f.get("grant_type").cloned());
    if grant.as_deref() != Some("client_credentials") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let (access_token, lifetime) = app.auth.issue(&client, now);
    tracing::debug!(client = %client, "issued an access token");
    let body = json!({
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": crate::config::Rounding::Ceil.seconds(lifetime),
    });
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An RFC 6749 error body.
fn oauth_error(status: StatusCode, error: &'static str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

/// `(id, secret)` of a `Basic base64(id:secret)` header value.
fn basic_credentials(value: &[u8]) -> Option<(String, String)> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_parse() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("agent-1:s3:cr3t");
        let header = format!("basic {encoded}");
        assert_eq!(
            basic_credentials(header.as_bytes()),
            Some(("agent-1".to_owned(), "s3:cr3t".to_owned()))
        );
        assert_eq!(basic_credentials(b"Basic !!notbase64"), None);
        assert_eq!(
            basic_credentials(format!("Bearer {encoded}").as_bytes()),
            None
        );
        let no_colon = base64::engine::general_purpose::STANDARD.encode("agent-1");
        assert_eq!(
            basic_credentials(format!("Basic {no_colon}").as_bytes()),
            None
        );
    }
}

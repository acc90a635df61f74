//! API errors and their Genesys-shaped JSON bodies:
//! `{"message","code","status","contextId","details":[],"errors":[]}`, with `contextId`
//! equal to the response's `inin-correlation-id`.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

/// Sent on every API response; equals `contextId` in error bodies.
pub(crate) const CORRELATION_ID: HeaderName = HeaderName::from_static("inin-correlation-id");

/// A random (v4) correlation id, from the thread-local RNG rather than a syscall per request.
pub(crate) fn correlation_id() -> Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

/// Why an API request failed. The `Display` text is the wire `message`.
/// (`POST /oauth/token` answers OAuth-style bodies instead; see `routes::oauth`.)
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("flow not found: {0}")]
    FlowNotFound(String),
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(#[source] serde_json::Error),
    #[error("{0}")]
    BadRequest(String),
    #[error("no resource at {0}")]
    NoRoute(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Authentication is on and the bearer token is missing, unknown or expired.
    #[error("Invalid login credentials: the access token is missing, unknown or expired")]
    BadCredentials,
    #[error("Flow is locked by another client")]
    FlowLocked,
    #[error("Flow is not checked out by this client")]
    NotCheckedOut,
    /// The real API's wording, including the square brackets.
    #[error("Rate limit exceeded the maximum. Retry the request in [{0}] seconds")]
    TooManyRequests(u64),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::FlowNotFound(_) | Self::NoRoute(_) => StatusCode::NOT_FOUND,
            Self::MalformedJson(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BadCredentials => StatusCode::UNAUTHORIZED,
            Self::FlowLocked | Self::NotCheckedOut => StatusCode::CONFLICT,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::FlowNotFound(_) | Self::NoRoute(_) => "not.found",
            Self::MalformedJson(_) | Self::BadRequest(_) => "bad.request",
            Self::MethodNotAllowed => "method.not.allowed",
            Self::BadCredentials => "bad.credentials",
            Self::FlowLocked => "flow.locked",
            Self::NotCheckedOut => "flow.not.checked.out",
            Self::TooManyRequests(_) => "too.many.requests.retry.after",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let context_id = correlation_id();
        let body = serde_json::json!({
            "message": self.to_string(),
            "code": self.code(),
            "status": status.as_u16(),
            "contextId": context_id,
            "details": [],
            "errors": [],
        });
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        match self {
            Self::TooManyRequests(seconds) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            Self::BadCredentials => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        let id =
            HeaderValue::from_str(&context_id.to_string()).expect("a uuid is a valid header value");
        headers.insert(CORRELATION_ID, id);
        response
    }
}

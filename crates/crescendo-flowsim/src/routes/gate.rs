//! The gate in front of every API route: check the bearer token when OAuth is on (401
//! before any quota is spent, as real APIs do), then decide and count the rate limit (a
//! throttled request never reaches flow state), then run the handler, record the final
//! status, add headers, and hold the response for latency and stalls.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::{Authn, Caller};
use crate::error::ApiError;
use crate::headers;
use crate::keys::Key;
use crate::limiter::Verdict;
use crate::state::App;
use crate::stats::Endpoint;

pub(super) async fn gate(
    State(app): State<Arc<App>>,
    mut request: Request,
    next: Next,
) -> Response {
    if !request.uri().path().starts_with("/api/") {
        return next.run(request).await;
    }
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let endpoint = Endpoint::classify(request.method(), matched);
    let authorization = request.headers().get(AUTHORIZATION).map(|v| v.as_bytes());

    let (key, caller) = match app.auth.authenticate(authorization, app.clock.now()) {
        Authn::Off => {
            let key = Key::from_authorization(authorization);
            (key, unauthenticated_caller(key))
        }
        Authn::Client(client) => (app.auth.key(&client, authorization), client),
        Authn::Rejected => {
            let mut response = ApiError::BadCredentials.into_response();
            app.statuses.record(endpoint, response.status());
            headers::apply(response.headers_mut(), None, &app.config);
            app.delay().await;
            return response;
        }
    };
    request.extensions_mut().insert(Caller(caller));

    let verdict = app.admission.admit(key, &app.clock);
    let mut response = match verdict {
        Verdict::Throttled { retry_after, .. } => {
            let seconds = app.config.retry_after_rounding.retry_after(retry_after);
            ApiError::TooManyRequests(seconds).into_response()
        }
        Verdict::Allowed(_) | Verdict::Unlimited => next.run(request).await,
    };
    // counted before the delay, so a client that gives up mid-stall is still counted
    app.statuses.record(endpoint, response.status());
    let report = verdict
        .report()
        .and_then(|r| app.admission.policy(r.scope).map(|p| (r, p)));
    headers::apply(response.headers_mut(), report, &app.config);
    app.delay().await;
    response
}

/// The lock-workflow identity without OAuth: the caller's key name (`token-<hash>` of
/// its `Authorization` value, else `anonymous`), the same name the stats show. Never the
/// token itself: it would be shown to every caller in `lockedClient` and operations.
fn unauthenticated_caller(key: Key) -> Arc<str> {
    Arc::from(key.to_string())
}

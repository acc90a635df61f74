//! The limiter gate in front of every API route: decide and count first (a throttled
//! request never reaches flow state), then run the handler, record the final status,
//! add headers, and hold the response for latency and stalls.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::headers;
use crate::keys::Key;
use crate::limiter::Verdict;
use crate::state::App;
use crate::stats::Endpoint;

pub(super) async fn gate(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/api/") {
        return next.run(request).await;
    }
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let endpoint = Endpoint::classify(request.method(), matched);
    let key = Key::from_authorization(request.headers().get(AUTHORIZATION).map(|v| v.as_bytes()));

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

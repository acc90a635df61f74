//! Token provider tests against a tiny token endpoint on 127.0.0.1:0.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use crescendo_metrics::Recorder;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::*;

/// What the endpoint answers, one scripted status per fetch (then 200 forever).
#[derive(Debug, Default)]
struct Endpoint {
    fetches: AtomicUsize,
    script: Mutex<VecDeque<(u16, Option<&'static str>)>>,
    expires_in: u64,
    seen: Mutex<Vec<(String, String)>>,
}

async fn token_endpoint(
    State(endpoint): State<Arc<Endpoint>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let n = endpoint.fetches.fetch_add(1, Ordering::SeqCst) + 1;
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    endpoint.seen.lock().unwrap().push((auth, body));
    // Long enough that concurrent callers overlap with a fetch in progress.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let scripted = endpoint.script.lock().unwrap().pop_front();
    match scripted {
        Some((status, retry_after)) => {
            let mut response = StatusCode::from_u16(status).unwrap().into_response();
            if let Some(ra) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", ra.parse().unwrap());
            }
            response
        }
        None => axum::Json(serde_json::json!({
            "access_token": format!("tok-{n}"),
            "token_type": "bearer",
            "expires_in": endpoint.expires_in,
        }))
        .into_response(),
    }
}

struct Fixture {
    endpoint: Arc<Endpoint>,
    credentials: Credentials,
    recorder: Arc<Mutex<Recorder>>,
    stop: CancellationToken,
}

async fn fixture(expires_in: u64, script: &[(u16, Option<&'static str>)]) -> Fixture {
    let endpoint = Arc::new(Endpoint {
        expires_in,
        script: Mutex::new(script.iter().copied().collect()),
        ..Endpoint::default()
    });
    let app = axum::Router::new()
        .route("/oauth/token", post(token_endpoint))
        .with_state(endpoint.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let settings = OAuthSettings {
        token_url: format!("http://{addr}/oauth/token"),
        client_id: Secret::new("client-a"),
        client_secret: Secret::new("secret-a"),
        scope: Some("flows".into()),
        refresh_before: Duration::from_secs(60),
        max_retry_after: Duration::from_secs(5),
    };
    let recorder = Arc::new(Mutex::new(Recorder::new(["update".to_owned()])));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let credentials = Credentials::start(AuthConfig::OAuth(settings), client, &recorder);
    Fixture {
        endpoint,
        credentials,
        recorder,
        stop: CancellationToken::new(),
    }
}

impl Fixture {
    async fn token(&self) -> Result<String, TokenError> {
        let token = self.credentials.token(&self.stop).await?.unwrap();
        Ok(token.0.expose().to_owned())
    }

    fn fetches(&self) -> usize {
        self.endpoint.fetches.load(Ordering::SeqCst)
    }

    /// The auxiliary step's counters: (requests, ok, throttled, client errors).
    fn token_counters(&self) -> (u64, u64, u64, u64) {
        let (steps, _) = self.recorder.lock().unwrap().take();
        let step = steps.iter().find(|s| s.step == TOKEN_STEP).unwrap();
        assert!(step.auxiliary);
        let c = &step.stats.counters;
        (c.requests, c.ok, c.throttled, c.client_errors)
    }
}

#[tokio::test]
async fn fetches_with_basic_auth_and_a_form_then_caches() {
    let f = fixture(3600, &[]).await;
    assert_eq!(f.token().await.unwrap(), "tok-1");
    assert_eq!(f.token().await.unwrap(), "tok-1");
    assert_eq!(f.fetches(), 1);
    let (auth, body) = f.endpoint.seen.lock().unwrap()[0].clone();
    use base64::Engine as _;
    let expected = base64::engine::general_purpose::STANDARD.encode("client-a:secret-a");
    assert_eq!(auth, format!("Basic {expected}"));
    assert_eq!(body, "grant_type=client_credentials&scope=flows");
    assert_eq!(f.token_counters(), (1, 1, 0, 0));
}

#[tokio::test]
async fn concurrent_callers_share_one_fetch() {
    let f = Arc::new(fixture(3600, &[]).await);
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move { f.token().await.unwrap() })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), "tok-1");
    }
    assert_eq!(f.fetches(), 1);
}

#[tokio::test]
async fn an_expired_token_is_replaced() {
    let f = fixture(0, &[]).await;
    assert_eq!(f.token().await.unwrap(), "tok-1");
    assert_eq!(f.token().await.unwrap(), "tok-2");
    assert_eq!(f.fetches(), 2);
}

#[test]
fn refresh_happens_before_the_smaller_of_refresh_before_and_half_the_lifetime() {
    let t = Instant::now();
    let s = Duration::from_secs;
    assert_eq!(oauth::refresh_at(t, s(3600), s(60)), t + s(3540));
    assert_eq!(oauth::refresh_at(t, s(60), s(60)), t + s(30));
    assert_eq!(oauth::refresh_at(t, s(0), s(60)), t);
}

impl Fixture {
    /// Cache `old`, due for refresh but valid for an hour.
    fn seed_stale(&self, old: &str) {
        let Credentials::OAuth(provider) = &self.credentials else {
            unreachable!("the fixture uses oauth");
        };
        let now = Instant::now();
        let token = Token(Secret::new(old));
        provider.seed(
            token,
            now - Duration::from_secs(1),
            now + Duration::from_secs(3600),
        );
    }
}

#[tokio::test]
async fn a_token_due_for_refresh_stays_in_use_while_one_caller_refreshes() {
    let f = Arc::new(fixture(3600, &[]).await);
    f.seed_stale("old");
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move { f.token().await.unwrap() })
        })
        .collect();
    let mut got = Vec::new();
    for call in calls {
        got.push(call.await.unwrap());
    }
    assert!(got.iter().all(|t| t == "old" || t == "tok-1"), "{got:?}");
    assert!(
        got.iter().any(|t| t == "old"),
        "nobody waited for the refresh"
    );
    assert_eq!(f.token().await.unwrap(), "tok-1");
    assert_eq!(f.fetches(), 1);
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_still_valid_token() {
    let f = fixture(3600, &[(500, None)]).await;
    f.seed_stale("old");
    assert_eq!(f.token().await.unwrap(), "old");
    assert_eq!(f.fetches(), 1);
}

#[tokio::test]
async fn invalidate_refetches_only_for_the_current_token() {
    let f = fixture(3600, &[]).await;
    let first = f.credentials.token(&f.stop).await.unwrap().unwrap();
    f.credentials.invalidate(&first);
    assert_eq!(f.token().await.unwrap(), "tok-2");
    // A late 401 for the old token must not throw away the new one.
    f.credentials.invalidate(&first);
    assert_eq!(f.token().await.unwrap(), "tok-2");
    assert_eq!(f.fetches(), 2);
}

#[tokio::test]
async fn throttles_are_waited_out_and_measured() {
    let f = fixture(3600, &[(429, Some("0")), (503, Some("0"))]).await;
    assert_eq!(f.token().await.unwrap(), "tok-3");
    assert_eq!(f.token_counters(), (3, 1, 2, 0));
}

#[tokio::test]
async fn throttling_gives_up_after_the_bounded_attempts_or_a_long_retry_after() {
    let script = [(429, Some("0")); oauth::MAX_FETCH_ATTEMPTS as usize];
    let f = fixture(3600, &script).await;
    let err = f.token().await.unwrap_err();
    assert!(matches!(err, TokenError::Throttled { status: 429, .. }));
    assert_eq!(err.outcome(), Some(Outcome::Throttled));
    assert_eq!(f.fetches(), oauth::MAX_FETCH_ATTEMPTS as usize);

    let f = fixture(3600, &[(429, Some("600"))]).await;
    assert!(matches!(f.token().await, Err(TokenError::Throttled { .. })));
    assert_eq!(f.fetches(), 1);
}

#[tokio::test]
async fn a_refused_client_fails_fast_for_a_moment() {
    let f = fixture(3600, &[(401, None), (401, None)]).await;
    let err = f.token().await.unwrap_err();
    assert_eq!(err, TokenError::Rejected { status: 401 });
    assert_eq!(err.outcome(), Some(Outcome::ClientError));
    // Within the hold, the failure is answered without another fetch.
    assert!(f.token().await.is_err());
    assert_eq!(f.fetches(), 1);
    assert_eq!(f.token_counters(), (1, 0, 0, 1));
}

#[tokio::test]
async fn stop_ends_a_throttle_wait() {
    let f = fixture(3600, &[(429, Some("3"))]).await;
    let stop = f.stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.cancel();
    });
    assert_eq!(f.token().await.unwrap_err(), TokenError::Stopped);
}

#[test]
fn token_answers_are_parsed_leniently_but_never_quoted() {
    let parse = |body: &str| serde_json::from_str::<oauth::TokenResponse>(body);
    let answer = parse(r#"{"access_token":"t","expires_in":"300"}"#).unwrap();
    assert_eq!(answer.lifetime(), Some(Duration::from_secs(300)));
    let answer = parse(r#"{"access_token":"t","token_type":"Bearer"}"#).unwrap();
    assert_eq!(answer.lifetime(), None);
    assert!(parse(r#"{"access_token":12345}"#).is_err());
}

#[tokio::test]
async fn a_garbled_answer_is_an_error_that_does_not_quote_the_body() {
    let f = fixture(3600, &[(200, None)]).await;
    // The scripted 200 has an empty body: not a token answer.
    let err = f.token().await.unwrap_err();
    assert!(matches!(err, TokenError::BadResponse(_)), "{err:?}");
    assert_eq!(err.outcome(), Some(Outcome::ServerError));
}

#[test]
fn limit_keys_hash_the_credential() {
    assert_eq!(AuthConfig::None.limit_key(), "default");
    let bearer = AuthConfig::Bearer(Secret::new("abc")).limit_key();
    assert!(bearer.starts_with("token:") && !bearer.contains("abc"));
    assert_eq!(bearer.len(), "token:".len() + 12);
}

#[test]
fn tokens_never_show_in_debug_output() {
    let token = Token(Secret::new("very-secret-token"));
    assert!(!format!("{token:?}").contains("very-secret"));
    assert!(token.header_value().is_sensitive());
    assert_eq!(token.header_value(), "Bearer very-secret-token");
}

//! OAuth2 client-credentials tokens: fetched once, cached, refreshed ahead of expiry,
//! single-flight, invalidated after a 401, throttle-aware, measured as an auxiliary step.
//!
//! Many iterations ask for a token at once; exactly one of them fetches while the
//! others wait (or, when a still-valid token is only due for refresh, keep using it).
//! A failed fetch is remembered for [`FAILURE_HOLD`] so that a burst of iterations
//! against a broken token endpoint costs one fetch, not one each.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crescendo_metrics::recorder::Attempt;
use crescendo_metrics::{Outcome, Recorder};
use serde::Deserialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::secret::Secret;
use super::{Token, TokenError};

/// Attempts of one fetch when the token endpoint throttles (429, or 503).
pub(crate) const MAX_FETCH_ATTEMPTS: u32 = 4;

/// After a failed fetch, callers get the same error without a new fetch for this long.
pub(crate) const FAILURE_HOLD: Duration = Duration::from_secs(1);

/// The wait after a throttled fetch without a `Retry-After`.
const DEFAULT_THROTTLE_WAIT: Duration = Duration::from_secs(1);

/// One OAuth client, with its secrets resolved.
#[derive(Debug, Clone)]
pub(crate) struct OAuthSettings {
    pub(crate) token_url: String,
    pub(crate) client_id: Secret,
    pub(crate) client_secret: Secret,
    pub(crate) scope: Option<String>,
    /// Refresh when less than `min(refresh_before, lifetime / 2)` is left.
    pub(crate) refresh_before: Duration,
    /// A longer `Retry-After` from the token endpoint fails the fetch (the run's
    /// `backoff.max_retry_after`).
    pub(crate) max_retry_after: Duration,
}

/// Where token fetches are measured: the run's recorder and the auxiliary step index.
#[derive(Debug, Clone)]
pub(crate) struct FetchMeter {
    pub(crate) recorder: Arc<Mutex<Recorder>>,
    pub(crate) step: usize,
}

impl FetchMeter {
    fn record(&self, outcome: Outcome, status: Option<u16>, sent: Instant) {
        let elapsed = sent.elapsed();
        self.recorder
            .lock()
            .expect("recorder lock")
            .record(Attempt {
                step: self.step,
                outcome,
                status,
                latency: elapsed,
                service_time: elapsed,
                retry: false,
                send_lag: None,
            });
    }
}

/// A cached token and when to replace it.
#[derive(Debug, Clone)]
struct Cached {
    token: Token,
    /// From here on one caller refreshes while the others keep using `token`.
    refresh_at: Option<Instant>,
    /// From here on nobody uses `token`.
    expires_at: Option<Instant>,
}

/// The token provider of one OAuth client on one agent.
#[derive(Debug)]
pub(crate) struct TokenProvider {
    settings: OAuthSettings,
    client: reqwest::Client,
    meter: FetchMeter,
    current: Mutex<Option<Cached>>,
    /// Held by the one caller that fetches (single-flight).
    fetching: tokio::sync::Mutex<()>,
    last_failure: Mutex<Option<(Instant, TokenError)>>,
}

/// The answer of a token endpoint (RFC 6749 §5.1).
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    /// Seconds; a number, or a string of digits as some servers send it.
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

impl TokenResponse {
    pub(crate) fn lifetime(&self) -> Option<Duration> {
        let seconds = match self.expires_in.as_ref()? {
            serde_json::Value::Number(n) => n.as_f64()?,
            serde_json::Value::String(s) => s.trim().parse().ok()?,
            _ => return None,
        };
        (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(1e9)))
    }
}

/// When a token with `lifetime` fetched at `fetched` is due for refresh.
pub(crate) fn refresh_at(
    fetched: Instant,
    lifetime: Duration,
    refresh_before: Duration,
) -> Instant {
    fetched + lifetime - refresh_before.min(lifetime / 2)
}

impl TokenProvider {
    pub(crate) fn new(settings: OAuthSettings, client: reqwest::Client, meter: FetchMeter) -> Self {
        Self {
            settings,
            client,
            meter,
            current: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
            last_failure: Mutex::new(None),
        }
    }

    /// The token to send now, fetching one when none is usable. Waits for a fetch in
    /// progress rather than starting another.
    pub(crate) async fn token(&self, stop: &CancellationToken) -> Result<Token, TokenError> {
        let now = Instant::now();
        let cached = self.current.lock().expect("token lock").clone();
        let _guard = match &cached {
            Some(c) if c.refresh_at.is_none_or(|at| now < at) => return Ok(c.token.clone()),
            // Due for refresh but still valid: refresh unless someone else already is.
            Some(c) if c.expires_at.is_none_or(|at| now < at) => match self.fetching.try_lock() {
                Ok(guard) => guard,
                Err(_) => return Ok(c.token.clone()),
            },
            _ => tokio::select! {
                guard = self.fetching.lock() => guard,
                _ = stop.cancelled() => return Err(TokenError::Stopped),
            },
        };
        // Another caller may have fetched while this one waited for the lock.
        let now = Instant::now();
        let cached = self.current.lock().expect("token lock").clone();
        if let Some(c) = &cached
            && c.refresh_at.is_none_or(|at| now < at)
        {
            return Ok(c.token.clone());
        }
        let still_valid = cached.filter(|c| c.expires_at.is_none_or(|at| now < at));
        if let Some((at, error)) = &*self.last_failure.lock().expect("failure lock")
            && now.saturating_duration_since(*at) < FAILURE_HOLD
        {
            return still_valid.map(|c| c.token).ok_or_else(|| error.clone());
        }
        match self.fetch(stop).await {
            Ok(fresh) => {
                let token = fresh.token.clone();
                *self.current.lock().expect("token lock") = Some(fresh);
                *self.last_failure.lock().expect("failure lock") = None;
                Ok(token)
            }
            Err(TokenError::Stopped) => Err(TokenError::Stopped),
            Err(error) => {
                tracing::warn!(%error, "oauth token fetch failed");
                *self.last_failure.lock().expect("failure lock") =
                    Some((Instant::now(), error.clone()));
                // A refresh that failed leaves a still-valid token in use.
                still_valid.map(|c| c.token).ok_or(error)
            }
        }
    }

    /// Put a token in the cache as if it had been fetched (tests of refresh timing).
    #[cfg(test)]
    pub(crate) fn seed(&self, token: Token, refresh_at: Instant, expires_at: Instant) {
        *self.current.lock().expect("token lock") = Some(Cached {
            token,
            refresh_at: Some(refresh_at),
            expires_at: Some(expires_at),
        });
    }

    /// Forget `token` after the API answered 401 to it, unless a newer token has
    /// already replaced it (then the next call simply uses the newer one).
    pub(crate) fn invalidate(&self, token: &Token) {
        let mut current = self.current.lock().expect("token lock");
        if current.as_ref().is_some_and(|c| &c.token == token) {
            *current = None;
            // A 401 is news: the next call fetches even right after a failure.
            *self.last_failure.lock().expect("failure lock") = None;
        }
    }

    /// Fetch a new token, waiting out throttles a bounded number of times.
    async fn fetch(&self, stop: &CancellationToken) -> Result<Cached, TokenError> {
        let s = &self.settings;
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &s.scope {
            form.push(("scope", scope.as_str()));
        }
        for attempt in 1..=MAX_FETCH_ATTEMPTS {
            let sent = Instant::now();
            let request = self
                .client
                .post(&s.token_url)
                .basic_auth(s.client_id.expose(), Some(s.client_secret.expose()))
                .header(http::header::ACCEPT, "application/json")
                .form(&form);
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) => return Err(self.transport_error(&e, sent)),
            };
            let status = response.status().as_u16();
            let info =
                crescendo_backoff::parse_response(status, response.headers(), SystemTime::now());
            let body = match response.bytes().await {
                Ok(body) => body,
                Err(e) => return Err(self.transport_error(&e, sent)),
            };
            if (200..300).contains(&status) {
                return match serde_json::from_slice::<TokenResponse>(&body) {
                    Ok(answer) => self.accept(answer, sent, status),
                    Err(e) => {
                        self.meter.record(Outcome::CheckFailed, Some(status), sent);
                        // serde's own message may quote the body (a token): never log it.
                        Err(TokenError::BadResponse(format!(
                            "not a token answer ({:?} error at line {} column {})",
                            e.classify(),
                            e.line(),
                            e.column()
                        )))
                    }
                };
            }
            let throttled = status == 429 || status == 503;
            let outcome = match status {
                _ if throttled => Outcome::Throttled,
                500.. => Outcome::ServerError,
                _ => Outcome::ClientError,
            };
            self.meter.record(outcome, Some(status), sent);
            if !throttled {
                return Err(if status >= 500 {
                    TokenError::Server { status }
                } else {
                    TokenError::Rejected { status }
                });
            }
            let wait = info.retry_after.unwrap_or(DEFAULT_THROTTLE_WAIT);
            if wait > s.max_retry_after || attempt == MAX_FETCH_ATTEMPTS {
                return Err(TokenError::Throttled {
                    status,
                    retry_after: info.retry_after,
                });
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => return Err(TokenError::Stopped),
            }
        }
        unreachable!("the last attempt always returns")
    }

    fn accept(
        &self,
        answer: TokenResponse,
        sent: Instant,
        status: u16,
    ) -> Result<Cached, TokenError> {
        let bearer = answer
            .token_type
            .as_deref()
            .is_none_or(|t| t.eq_ignore_ascii_case("bearer"));
        if answer.access_token.is_empty() || !bearer {
            self.meter.record(Outcome::CheckFailed, Some(status), sent);
            return Err(TokenError::BadResponse(
                "empty access_token or a token_type other than bearer".into(),
            ));
        }
        self.meter.record(Outcome::Ok, Some(status), sent);
        // Lifetimes count from the request, so clock-free and on the safe side.
        let lifetime = answer.lifetime();
        Ok(Cached {
            token: Token(Secret::new(answer.access_token)),
            refresh_at: lifetime.map(|l| refresh_at(sent, l, self.settings.refresh_before)),
            expires_at: lifetime.map(|l| sent + l),
        })
    }

    fn transport_error(&self, e: &reqwest::Error, sent: Instant) -> TokenError {
        let (outcome, error) = if e.is_timeout() {
            (Outcome::Timeout, TokenError::Timeout)
        } else {
            (Outcome::ConnectError, TokenError::Connect)
        };
        self.meter.record(outcome, None, sent);
        error
    }
}

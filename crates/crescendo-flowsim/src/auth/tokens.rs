//! The runtime side of OAuth: client secrets, issued tokens with their expiry on the
//! simulator clock, the token endpoint's own optional limiter, and the bearer check the
//! limiter gate makes before rate limiting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{AuthConfig, ClientSpec, LimitKey};
use crate::config::Config;
use crate::keys::Key;
use crate::limiter::{Decision, Policy, State};
use crate::shard::lock;

/// Expired tokens are swept when the store has grown past this many since the last sweep.
const SWEEP_FLOOR: usize = 1024;

/// One issued token.
#[derive(Debug)]
struct Issued {
    client: Arc<str>,
    /// Sim-clock time after which the token is refused.
    expires: Duration,
}

#[derive(Debug, Default)]
struct Store {
    tokens: HashMap<String, Issued>,
    /// Store size after the last sweep of expired tokens.
    swept_at: usize,
}

/// The outcome of the gate's bearer check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Authn {
    /// Authentication is off (no clients configured): anything goes.
    Off,
    /// A valid token of this client.
    Client(Arc<str>),
    /// No bearer token, or an unknown or expired one: 401.
    Rejected,
}

/// Clients, tokens and the token endpoint's limiter.
#[derive(Debug)]
pub(crate) struct Auth {
    /// Client id → secret.
    clients: HashMap<String, String>,
    lifetime: Duration,
    limit_key: LimitKey,
    token_limit: Option<(Policy, Mutex<State>)>,
    store: Mutex<Store>,
}

impl Auth {
    pub(crate) fn new(config: &Config, clients: Vec<ClientSpec>) -> Self {
        let AuthConfig {
            token_lifetime,
            token_rate_limit,
            limit_key,
            ..
        } = config.auth;
        let policy = Policy::new(config.algorithm, token_rate_limit, config.window, None);
        Self {
            clients: clients.into_iter().map(|c| (c.id, c.secret)).collect(),
            lifetime: token_lifetime,
            limit_key,
            token_limit: policy.map(|p| (p, Mutex::new(State::new(&p)))),
            store: Mutex::default(),
        }
    }

    /// Whether /api/v2 requires a bearer token.
    pub(crate) fn enabled(&self) -> bool {
        !self.clients.is_empty()
    }

    /// Counts one token request against the endpoint's own limit; `Err(retry_after)` when
    /// it is exhausted.
    pub(crate) fn admit_token_request(&self, now: Duration) -> Result<(), Duration> {
        let Some((policy, state)) = &self.token_limit else {
            return Ok(());
        };
        match lock(state).acquire(policy, now) {
            Decision::Allowed(_) => Ok(()),
            Decision::Throttled { retry_after, .. } => Err(retry_after),
        }
    }

    /// Whether `id`/`secret` are a configured client (compared without an early exit on
    /// the secret, so timing does not leak how much of it matched).
    pub(crate) fn verify(&self, id: &str, secret: &str) -> bool {
        self.clients
            .get(id)
            .is_some_and(|known| equal_bytes(known.as_bytes(), secret.as_bytes()))
    }

    /// Issues a fresh random token for `client`; returns it and its lifetime.
    pub(crate) fn issue(&self, client: &str, now: Duration) -> (String, Duration) {
        let token = random_token();
        let issued = Issued {
            client: Arc::from(client),
            expires: now + self.lifetime,
        };
        let mut store = lock(&self.store);
        if store.tokens.len() >= store.swept_at.max(SWEEP_FLOOR) * 2 {
            store.tokens.retain(|_, t| t.expires > now);
            store.swept_at = store.tokens.len();
        }
        store.tokens.insert(token.clone(), issued);
        (token, self.lifetime)
    }

    /// Forgets every issued token (the test control `POST /__sim/revoke-tokens`): the
    /// next API call with any of them answers 401, as after an expiry the client did not
    /// see coming. Returns how many were revoked.
    pub(crate) fn revoke_all(&self) -> usize {
        let mut store = lock(&self.store);
        let n = store.tokens.len();
        store.tokens.clear();
        store.swept_at = 0;
        n
    }

    /// Checks an `Authorization` header value (`Bearer <token>`, scheme case-insensitive).
    pub(crate) fn authenticate(&self, authorization: Option<&[u8]>, now: Duration) -> Authn {
        if !self.enabled() {
            return Authn::Off;
        }
        let Some(token) = authorization.and_then(bearer) else {
            return Authn::Rejected;
        };
        let mut store = lock(&self.store);
        match store.tokens.get(token) {
            Some(issued) if issued.expires > now => Authn::Client(issued.client.clone()),
            Some(_) => {
                store.tokens.remove(token);
                Authn::Rejected
            }
            None => Authn::Rejected,
        }
    }

    /// The limiter key of an authenticated request.
    pub(crate) fn key(&self, client: &str, authorization: Option<&[u8]>) -> Key {
        match self.limit_key {
            LimitKey::Client => Key::client(client),
            LimitKey::Token => Key::from_authorization(authorization),
        }
    }
}

/// The token of a `Bearer <token>` header value.
pub(crate) fn bearer(value: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// 32 random bytes as 64 hex digits.
fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn equal_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(lifetime: Duration, token_rate_limit: u64) -> Auth {
        let config = Config {
            auth: AuthConfig {
                token_lifetime: lifetime,
                token_rate_limit,
                ..AuthConfig::default()
            },
            ..Config::default()
        };
        let clients = vec![ClientSpec::parse("a:secret-a").unwrap()];
        Auth::new(&config, clients)
    }

    #[test]
    fn tokens_expire_and_are_bound_to_their_client() {
        let auth = auth(Duration::from_secs(2), 0);
        assert!(auth.verify("a", "secret-a"));
        assert!(!auth.verify("a", "secret-b") && !auth.verify("b", "secret-a"));
        let (token, lifetime) = auth.issue("a", Duration::ZERO);
        assert_eq!((token.len(), lifetime), (64, Duration::from_secs(2)));
        let header = format!("bearer {token}");
        let at = |s| auth.authenticate(Some(header.as_bytes()), Duration::from_secs(s));
        assert_eq!(at(1), Authn::Client(Arc::from("a")));
        assert_eq!(at(2), Authn::Rejected);
        assert_eq!(at(1), Authn::Rejected, "an expired token is forgotten");
        assert_eq!(auth.authenticate(None, Duration::ZERO), Authn::Rejected);
        let other = auth.issue("a", Duration::ZERO).0;
        assert_ne!(token, other);
        let basic = format!("Basic {other}");
        assert_eq!(
            auth.authenticate(Some(basic.as_bytes()), Duration::ZERO),
            Authn::Rejected
        );
    }

    #[test]
    fn off_without_clients_and_keys_follow_limit_key() {
        let off = Auth::new(&Config::default(), Vec::new());
        assert_eq!(off.authenticate(None, Duration::ZERO), Authn::Off);
        let on = auth(Duration::from_secs(60), 0);
        assert_eq!(on.key("a", Some(b"Bearer x")), Key::client("a"));
        let mut config = Config::default();
        config.auth.limit_key = LimitKey::Token;
        let by_token = Auth::new(&config, Vec::new());
        assert_eq!(
            by_token.key("a", Some(b"Bearer x")),
            Key::from_authorization(Some(b"Bearer x"))
        );
    }

    #[test]
    fn token_endpoint_limit() {
        let auth = auth(Duration::from_secs(60), 2);
        assert!(auth.admit_token_request(Duration::ZERO).is_ok());
        assert!(auth.admit_token_request(Duration::ZERO).is_ok());
        let retry = auth
            .admit_token_request(Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(retry, Duration::from_secs(50));
        assert!(auth.admit_token_request(Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer(b"Bearer abc"), Some("abc"));
        assert_eq!(bearer(b"BEARER  abc "), Some("abc"));
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"abc"), None);
    }
}

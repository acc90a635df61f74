//! Client keys: who a request is counted against. The key is the caller's token (the
//! whole `Authorization` header value) or, when OAuth is on, the OAuth client id; it is
//! only ever shown hashed.

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};

/// The limiter and stats key of one caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// Requests without an `Authorization` header share one key.
    Anonymous,
    /// A 64-bit hash of the `Authorization` header value.
    Token(u64),
    /// A 64-bit hash of an authenticated request's OAuth client id (`--limit-key client`).
    Client(u64),
}

impl Key {
    /// The key for an `Authorization` header value (absent or empty: anonymous).
    pub fn from_authorization(value: Option<&[u8]>) -> Self {
        match value {
            None | Some([]) => Self::Anonymous,
            Some(bytes) => {
                // `DefaultHasher::new()` has fixed keys: the same token gets the same name
                // in every run of the same build, so reports can be compared.
                let mut hasher = DefaultHasher::new();
                bytes.hash(&mut hasher);
                Self::Token(hasher.finish())
            }
        }
    }

    /// The key for an OAuth client id.
    pub fn client(id: &str) -> Self {
        // fixed-key hasher, as above: stable names across runs
        let mut hasher = DefaultHasher::new();
        id.as_bytes().hash(&mut hasher);
        Self::Client(hasher.finish())
    }

    /// A well-spread hash for picking a shard.
    pub(crate) fn spread(&self) -> u64 {
        match *self {
            Self::Anonymous => 0,
            Self::Token(h) | Self::Client(h) => h,
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Anonymous => f.write_str("anonymous"),
            Self::Token(h) => write!(f, "token-{h:016x}"),
            Self::Client(h) => write!(f, "client-{h:016x}"),
        }
    }
}

/// The name `GET /__sim/stats` shows for a caller sending this `Authorization` value.
pub fn key_name(authorization: Option<&str>) -> String {
    Key::from_authorization(authorization.map(str::as_bytes)).to_string()
}

/// The name `GET /__sim/stats` shows for an OAuth client (with `--limit-key client`).
pub fn client_key_name(client_id: &str) -> String {
    Key::client(client_id).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_hashed_and_distinct() {
        assert_eq!(key_name(None), "anonymous");
        assert_eq!(key_name(Some("")), "anonymous");
        let a = key_name(Some("Bearer secret-a"));
        assert_eq!(a, key_name(Some("Bearer secret-a")));
        assert_ne!(a, key_name(Some("Bearer secret-b")));
        assert!(a.starts_with("token-") && a.len() == 22, "{a}");
        assert!(!a.contains("secret"));
        let c = client_key_name("agent-1");
        assert_eq!(c, client_key_name("agent-1"));
        assert!(c.starts_with("client-") && c.len() == 23, "{c}");
        assert_ne!(c, client_key_name("agent-2"));
    }
}

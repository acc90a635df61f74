//! The limiter gate's state: one limiter per client key, the optional organisation
//! limiter, and the per-key accepted/throttled counters, updated together under the
//! key's shard lock so that every request is counted exactly once, at its decision.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use crate::config::Config;
use crate::keys::Key;
use crate::limiter::{self, Policy, Scope, State, Verdict};
use crate::shard::{Sharded, lock};
use crate::stats::KeyStats;

const SHARDS: usize = 64;

/// Time since the simulator started: the limiters' injected clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    origin: tokio::time::Instant,
}

impl Clock {
    pub(crate) fn start() -> Self {
        Self {
            origin: tokio::time::Instant::now(),
        }
    }

    pub(crate) fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

#[derive(Debug, Default)]
struct KeyEntry {
    /// Created on the key's first request when a per-token limit is set.
    limiter: Option<State>,
    accepted: u64,
    throttled: u64,
}

/// Per-key and organisation limiters plus their counters.
#[derive(Debug)]
pub(crate) struct Admission {
    token: Option<Policy>,
    org: Option<(Policy, Mutex<State>)>,
    keys: Sharded<HashMap<Key, KeyEntry>>,
}

impl Admission {
    pub(crate) fn new(config: &Config) -> Self {
        let policy = |limit| Policy::new(config.algorithm, limit, config.window, config.burst);
        Self {
            token: policy(config.limit),
            org: policy(config.org_limit).map(|p| (p, Mutex::new(State::new(&p)))),
            keys: Sharded::new(SHARDS),
        }
    }

    /// The policy a report came from.
    pub(crate) fn policy(&self, scope: Scope) -> Option<&Policy> {
        match scope {
            Scope::Token => self.token.as_ref(),
            Scope::Org => self.org.as_ref().map(|(p, _)| p),
        }
    }

    /// Decides one request for `key` and counts it. Lock order: key shard, then org.
    pub(crate) fn admit(&self, key: Key, clock: &Clock) -> Verdict {
        let mut shard = self.keys.lock(key.spread());
        let entry = shard.entry(key).or_default();
        let verdict = if self.token.is_none() && self.org.is_none() {
            Verdict::Unlimited
        } else {
            let mut org = self.org.as_ref().map(|(p, m)| (p, lock(m)));
            // read the clock under the locks, so each limiter sees time move forward
            let now = clock.now();
            let token = self
                .token
                .as_ref()
                .map(|p| (p, entry.limiter.get_or_insert_with(|| State::new(p))));
            let org = org.as_mut().map(|(p, state)| (*p, &mut **state));
            limiter::admit(token, org, now)
        };
        if verdict.is_allowed() {
            entry.accepted += 1;
        } else {
            entry.throttled += 1;
        }
        verdict
    }

    /// Per-key counters by key name.
    pub(crate) fn snapshot(&self) -> BTreeMap<String, KeyStats> {
        let mut out = BTreeMap::new();
        self.keys.for_each(|shard| {
            for (key, entry) in shard.iter() {
                let stats = KeyStats {
                    accepted: entry.accepted,
                    throttled: entry.throttled,
                };
                out.insert(key.to_string(), stats);
            }
        });
        out
    }

    /// Forgets every key's limiter and counters and refills the organisation quota.
    pub(crate) fn reset(&self) {
        self.keys.for_each(HashMap::clear);
        if let Some((policy, state)) = &self.org {
            *lock(state) = State::new(policy);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Algorithm;

    fn admission(limit: u64, org_limit: u64) -> Admission {
        Admission::new(&Config {
            limit,
            org_limit,
            algorithm: Algorithm::FixedWindow,
            ..Config::default()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn counts_once_per_request_per_key() {
        let adm = admission(3, 0);
        let clock = Clock::start();
        let a = Key::from_authorization(Some(b"a"));
        let b = Key::from_authorization(Some(b"b"));
        for _ in 0..5 {
            adm.admit(a, &clock);
        }
        adm.admit(b, &clock);
        adm.admit(Key::Anonymous, &clock);
        let snap = adm.snapshot();
        assert_eq!(
            snap[&a.to_string()],
            KeyStats {
                accepted: 3,
                throttled: 2
            }
        );
        assert_eq!(
            snap[&b.to_string()],
            KeyStats {
                accepted: 1,
                throttled: 0
            }
        );
        assert_eq!(
            snap["anonymous"],
            KeyStats {
                accepted: 1,
                throttled: 0
            }
        );
        adm.reset();
        assert!(adm.snapshot().is_empty());
        assert!(adm.admit(a, &clock).is_allowed());
    }

    #[tokio::test(start_paused = true)]
    async fn org_limit_spans_keys_and_window_uses_injected_time() {
        let adm = admission(0, 2);
        let clock = Clock::start();
        let key = |i: u8| Key::from_authorization(Some(&[i]));
        assert!(adm.admit(key(1), &clock).is_allowed());
        assert!(adm.admit(key(2), &clock).is_allowed());
        assert!(!adm.admit(key(3), &clock).is_allowed());
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(adm.admit(key(3), &clock).is_allowed());
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_still_counts() {
        let adm = admission(0, 0);
        let clock = Clock::start();
        for _ in 0..1_000 {
            assert_eq!(adm.admit(Key::Anonymous, &clock), Verdict::Unlimited);
        }
        assert_eq!(adm.snapshot()["anonymous"].accepted, 1_000);
    }
}

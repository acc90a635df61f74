//! A request must pass the caller's own limit and the organisation's limit. The token
//! limit is asked first and the first breach wins; a request throttled by either limit
//! consumes neither quota. When both admit, the headers report the tighter of the two.

use std::time::Duration;

use super::{Decision, Policy, Quota, State};

/// Which limit a report or a throttle came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The caller's own (per-token) limit.
    Token,
    /// The organisation-wide limit.
    Org,
}

/// The quota to show a caller and the limit it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Which limit this is.
    pub scope: Scope,
    /// Its quota after this request.
    pub quota: Quota,
}

/// The combined answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No limit applies at all.
    Unlimited,
    /// Admitted; `Report` is the tighter of the applicable limits.
    Allowed(Report),
    /// Refused by the limit in `report.scope`.
    Throttled {
        /// The limit that refused and its quota.
        report: Report,
        /// Time until that limit would admit a request.
        retry_after: Duration,
    },
}

impl Verdict {
    /// Whether the request may pass.
    pub fn is_allowed(&self) -> bool {
        !matches!(self, Self::Throttled { .. })
    }

    /// The report for the rate-limit headers, if any limit applies.
    pub fn report(&self) -> Option<Report> {
        match *self {
            Self::Unlimited => None,
            Self::Allowed(report) | Self::Throttled { report, .. } => Some(report),
        }
    }
}

/// Decides one request against an optional per-token limit and an optional organisation
/// limit, committing state only when both admit.
pub fn admit(
    token: Option<(&Policy, &mut State)>,
    org: Option<(&Policy, &mut State)>,
    now: Duration,
) -> Verdict {
    let mut admitted: [Option<(Report, &mut State, State)>; 2] = [None, None];
    let limits = [(Scope::Token, token), (Scope::Org, org)];
    for (slot, (scope, limit)) in limits.into_iter().enumerate() {
        let Some((policy, state)) = limit else {
            continue;
        };
        match state.decide(policy, now) {
            (Decision::Throttled { retry_after, quota }, _) => {
                let report = Report { scope, quota };
                return Verdict::Throttled {
                    report,
                    retry_after,
                };
            }
            (Decision::Allowed(quota), next) => {
                admitted[slot] = Some((Report { scope, quota }, state, next));
            }
        }
    }
    let mut tighter: Option<Report> = None;
    for (report, state, next) in admitted.into_iter().flatten() {
        *state = next;
        if tighter.is_none_or(|t| report.quota.remaining < t.quota.remaining) {
            tighter = Some(report);
        }
    }
    tighter.map_or(Verdict::Unlimited, Verdict::Allowed)
}

#[cfg(test)]
mod tests {
    use super::super::Algorithm;
    use super::super::test_support::*;
    use super::*;

    struct Pair {
        token: Policy,
        org: Policy,
        a: State,
        b: State,
        org_state: State,
    }

    impl Pair {
        fn new(algorithm: Algorithm, token_limit: u64, org_limit: u64) -> Self {
            let token = policy(algorithm, token_limit, 60, None);
            let org = policy(algorithm, org_limit, 60, None);
            Self {
                a: State::new(&token),
                b: State::new(&token),
                org_state: State::new(&org),
                token,
                org,
            }
        }

        fn send_a(&mut self, now: Duration) -> Verdict {
            admit(
                Some((&self.token, &mut self.a)),
                Some((&self.org, &mut self.org_state)),
                now,
            )
        }

        fn send_b(&mut self, now: Duration) -> Verdict {
            admit(
                Some((&self.token, &mut self.b)),
                Some((&self.org, &mut self.org_state)),
                now,
            )
        }
    }

    fn scope_of(v: Verdict) -> Option<Scope> {
        match v {
            Verdict::Throttled { report, .. } => Some(report.scope),
            _ => None,
        }
    }

    #[test]
    fn no_limits_is_unlimited() {
        assert_eq!(admit(None, None, secs(1)), Verdict::Unlimited);
    }

    #[test]
    fn token_breach_does_not_consume_org_quota() {
        for algorithm in [
            Algorithm::FixedWindow,
            Algorithm::SlidingWindow,
            Algorithm::TokenBucket,
            Algorithm::Gcra,
        ] {
            let mut p = Pair::new(algorithm, 3, 5);
            for _ in 0..3 {
                assert!(p.send_a(secs(1)).is_allowed(), "{algorithm}");
            }
            for _ in 0..10 {
                assert_eq!(
                    scope_of(p.send_a(secs(1))),
                    Some(Scope::Token),
                    "{algorithm}"
                );
            }
            // the org still has exactly 2 left, all of which b can use
            assert!(p.send_b(secs(1)).is_allowed(), "{algorithm}");
            assert!(p.send_b(secs(1)).is_allowed(), "{algorithm}");
            assert_eq!(scope_of(p.send_b(secs(1))), Some(Scope::Org), "{algorithm}");
        }
    }

    #[test]
    fn org_breach_does_not_consume_token_quota() {
        let mut p = Pair::new(Algorithm::FixedWindow, 3, 2);
        assert!(p.send_b(secs(1)).is_allowed());
        assert!(p.send_b(secs(1)).is_allowed());
        for _ in 0..5 {
            assert_eq!(scope_of(p.send_a(secs(1))), Some(Scope::Org));
        }
        // a's own quota was untouched by the refusals: in the next org window a gets
        // what the org allows, and its own window starts only now
        let admitted = (0..10).filter(|_| p.send_a(secs(61)).is_allowed()).count();
        assert_eq!(admitted, 2, "org limit 2 binds first");
        let Verdict::Throttled {
            report,
            retry_after,
        } = p.send_a(secs(61))
        else {
            panic!("expected throttle");
        };
        assert_eq!(report.scope, Scope::Org);
        assert_eq!(retry_after, secs(60));
        // a used 2 of its 3 in its window, which opened at 61 s
        let mut token_state = p.a;
        assert!(token_state.acquire(&p.token, secs(61)).is_allowed());
        assert!(!token_state.acquire(&p.token, secs(61)).is_allowed());
    }

    #[test]
    fn report_is_the_tighter_limit() {
        let mut p = Pair::new(Algorithm::FixedWindow, 10, 4);
        let Verdict::Allowed(r) = p.send_a(secs(0)) else {
            panic!()
        };
        assert_eq!((r.scope, r.quota.remaining), (Scope::Org, 3));
        let mut p = Pair::new(Algorithm::FixedWindow, 2, 100);
        let Verdict::Allowed(r) = p.send_a(secs(0)) else {
            panic!()
        };
        assert_eq!((r.scope, r.quota.remaining), (Scope::Token, 1));
    }

    #[test]
    fn only_org_limit() {
        let org = policy(Algorithm::FixedWindow, 2, 60, None);
        let mut s = State::new(&org);
        assert!(admit(None, Some((&org, &mut s)), secs(0)).is_allowed());
        assert!(admit(None, Some((&org, &mut s)), secs(0)).is_allowed());
        assert_eq!(
            scope_of(admit(None, Some((&org, &mut s)), secs(0))),
            Some(Scope::Org)
        );
    }
}

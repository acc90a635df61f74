use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

fn config(policy: Policy) -> RetryConfig {
    RetryConfig {
        policy,
        ..RetryConfig::default()
    }
}

fn ra(secs: u64) -> RateLimitInfo {
    RateLimitInfo {
        retry_after: Some(Duration::from_secs(secs)),
        ..RateLimitInfo::default()
    }
}

fn rich_budget() -> RetryBudget {
    RetryBudget::new(f64::INFINITY)
}

fn run(policy: Policy, n: u32, signal: Signal, info: &RateLimitInfo) -> RetryDecision {
    let mut rng = StdRng::seed_from_u64(7);
    decide(&config(policy), n, signal, info, &rich_budget(), &mut rng)
}

fn after(decision: RetryDecision) -> Duration {
    match decision {
        RetryDecision::Retry { after } => after,
        other => panic!("expected a retry, got {other:?}"),
    }
}

#[test]
fn success_and_client_errors_are_done_for_every_policy() {
    for policy in [
        Policy::None,
        Policy::RetryAfter,
        Policy::Exponential,
        Policy::Coordinated,
    ] {
        assert_eq!(run(policy, 0, Signal::Success, &ra(1)), RetryDecision::Done);
        assert_eq!(
            run(policy, 0, Signal::ClientError, &ra(1)),
            RetryDecision::Done
        );
    }
}

#[test]
fn none_never_retries() {
    assert_eq!(
        run(Policy::None, 0, Signal::Throttle, &ra(2)),
        RetryDecision::Done
    );
    assert_eq!(
        run(
            Policy::None,
            0,
            Signal::ServerError,
            &RateLimitInfo::default()
        ),
        RetryDecision::Done
    );
}

#[test]
fn retry_after_waits_exactly_or_base() {
    let wait = after(run(Policy::RetryAfter, 0, Signal::Throttle, &ra(2)));
    assert_eq!(wait, Duration::from_secs(2));
    let wait = after(run(
        Policy::RetryAfter,
        1,
        Signal::Throttle,
        &RateLimitInfo::default(),
    ));
    assert_eq!(wait, Duration::from_millis(100));
    // Server errors are not retried by retry-after.
    assert_eq!(
        run(
            Policy::RetryAfter,
            0,
            Signal::ServerError,
            &RateLimitInfo::default()
        ),
        RetryDecision::Done
    );
}

#[test]
fn exponential_is_full_jitter_and_ignores_retry_after() {
    let cfg = config(Policy::Exponential);
    let budget = rich_budget();
    let mut rng = StdRng::seed_from_u64(1);
    for n in 0..3u32 {
        let ceiling = Duration::from_millis(100 * 2u64.pow(n));
        let mut max_seen = Duration::ZERO;
        for _ in 0..500 {
            let wait = after(decide(&cfg, n, Signal::Throttle, &ra(2), &budget, &mut rng));
            assert!(wait <= ceiling, "{wait:?} > {ceiling:?}");
            max_seen = max_seen.max(wait);
        }
        // Spread over the whole window, not pinned to Retry-After.
        assert!(max_seen > ceiling.mul_f64(0.9));
    }
    let server = after(decide(
        &cfg,
        0,
        Signal::ServerError,
        &RateLimitInfo::default(),
        &budget,
        &mut rng,
    ));
    assert!(server <= Duration::from_millis(100));
}

#[test]
fn exponential_respects_cap_at_huge_retry_counts() {
    let cfg = RetryConfig {
        policy: Policy::Exponential,
        max_retries: u32::MAX,
        ..RetryConfig::default()
    };
    let mut rng = StdRng::seed_from_u64(3);
    for n in [10, 31, 32, 64, u32::MAX - 1] {
        let info = RateLimitInfo::default();
        let wait = after(decide(
            &cfg,
            n,
            Signal::Throttle,
            &info,
            &rich_budget(),
            &mut rng,
        ));
        assert!(wait <= Duration::from_secs(30));
    }
}

#[test]
fn coordinated_adds_bounded_distinct_spread() {
    let cfg = config(Policy::Coordinated);
    let budget = rich_budget();
    let mut rng = StdRng::seed_from_u64(5);
    let mut waits: Vec<Duration> = (0..50)
        .map(|_| after(decide(&cfg, 0, Signal::Throttle, &ra(2), &budget, &mut rng)))
        .collect();
    for w in &waits {
        assert!(*w >= Duration::from_secs(2));
        assert!(*w <= Duration::from_millis(2400), "{w:?}");
    }
    waits.sort();
    waits.dedup();
    assert!(waits.len() > 45, "retries must not synchronise");

    // A long Retry-After spreads by at most 1 s.
    let long = after(decide(
        &cfg,
        0,
        Signal::Throttle,
        &ra(60),
        &budget,
        &mut rng,
    ));
    assert!(long >= Duration::from_secs(60) && long <= Duration::from_secs(61));
}

#[test]
fn coordinated_waits_for_reset_of_exhausted_quota() {
    let info = RateLimitInfo {
        remaining: Some(0.0),
        reset: Some(Duration::from_secs(5)),
        ..RateLimitInfo::default()
    };
    let wait = after(run(Policy::Coordinated, 0, Signal::Throttle, &info));
    assert!(wait >= Duration::from_secs(5) && wait <= Duration::from_secs(6));

    let quota = RateLimitInfo {
        remaining: Some(0.0),
        reset: Some(Duration::from_secs(3600)),
        ..RateLimitInfo::default()
    };
    assert!(matches!(
        run(Policy::Coordinated, 0, Signal::Throttle, &quota),
        RetryDecision::Abort { .. }
    ));
    // Without Retry-After or exhausted quota: full jitter.
    let wait = after(run(
        Policy::Coordinated,
        0,
        Signal::Throttle,
        &RateLimitInfo::default(),
    ));
    assert!(wait <= Duration::from_millis(100));
}

#[test]
fn long_retry_after_aborts_for_every_policy() {
    for policy in [
        Policy::None,
        Policy::RetryAfter,
        Policy::Exponential,
        Policy::Coordinated,
    ] {
        match run(policy, 0, Signal::Throttle, &ra(86_400)) {
            RetryDecision::Abort { reason } => assert_eq!(
                reason,
                "the API asked to wait 86400 s (more than max_retry_after 180 s): likely a \
                 daily quota; stopping the run"
            ),
            other => panic!("{policy:?}: {other:?}"),
        }
    }
    // Exactly the limit is still fine.
    assert!(matches!(
        run(Policy::RetryAfter, 0, Signal::Throttle, &ra(180)),
        RetryDecision::Retry { .. }
    ));
}

#[test]
fn max_retries_gives_up() {
    assert_eq!(
        run(Policy::RetryAfter, 3, Signal::Throttle, &ra(1)),
        RetryDecision::GiveUp {
            reason: GiveUpReason::MaxRetries { retries: 3 }
        }
    );
    assert!(matches!(
        run(Policy::RetryAfter, 2, Signal::Throttle, &ra(1)),
        RetryDecision::Retry { .. }
    ));
}

#[test]
fn budget_floor_then_ratio() {
    let budget = RetryBudget::new(0.2);
    // Floor: 10 retries before any first attempt.
    for _ in 0..10 {
        assert!(budget.try_spend_retry());
    }
    assert!(!budget.try_spend_retry());
    for _ in 0..50 {
        budget.record_first_attempt();
    }
    assert!(!budget.try_spend_retry(), "0.2 × 50 = 10, all spent");
    for _ in 0..5 {
        budget.record_first_attempt();
    }
    assert!(budget.try_spend_retry(), "0.2 × 55 = 11");
    assert!(!budget.try_spend_retry());
    assert_eq!(budget.retries(), 11);
    assert_eq!(budget.first_attempts(), 55);

    assert!(!RetryBudget::new(0.0).try_spend_retry());
    assert!(!RetryBudget::new(f64::NAN).try_spend_retry());
}

#[test]
fn budget_exhaustion_gives_up_without_spending() {
    let cfg = config(Policy::Exponential);
    let budget = RetryBudget::new(0.2);
    let mut rng = StdRng::seed_from_u64(9);
    let info = RateLimitInfo::default();
    let mut retried = 0;
    let mut gave_up = 0;
    for _ in 0..30 {
        match decide(&cfg, 0, Signal::ServerError, &info, &budget, &mut rng) {
            RetryDecision::Retry { .. } => retried += 1,
            RetryDecision::GiveUp {
                reason: GiveUpReason::BudgetExhausted,
            } => gave_up += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((retried, gave_up), (10, 20));
    assert_eq!(budget.retries(), 10);
}

#[test]
fn budget_is_shared_across_threads_without_overspending() {
    let budget = Arc::new(RetryBudget::new(0.1));
    for _ in 0..1000 {
        budget.record_first_attempt();
    }
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let budget = Arc::clone(&budget);
            std::thread::spawn(move || (0..100).filter(|_| budget.try_spend_retry()).count())
        })
        .collect();
    let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, 100);
}

#[test]
fn give_up_reasons_display() {
    assert_eq!(
        GiveUpReason::MaxRetries { retries: 3 }.to_string(),
        "gave up after 3 retries"
    );
    assert_eq!(
        GiveUpReason::BudgetExhausted.to_string(),
        "retry budget exhausted"
    );
}

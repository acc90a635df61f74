//! Property test: whatever the reports, rates stay finite and within bounds, and every
//! decision splits exactly between agents.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

#[derive(Debug, Clone)]
enum Op {
    Throttle {
        agent: u8,
        key: u8,
        retry_after_ms: Option<u32>,
        remaining: Option<f64>,
        reset_ms: Option<u32>,
    },
    Quota {
        key: u8,
        remaining: f64,
        limit: Option<f64>,
        reset_ms: u32,
    },
    Tick {
        accepted: f64,
    },
    Plan {
        rate: f64,
    },
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    let rate = prop_oneof![0.0..200.0, Just(f64::NAN), Just(-1.0), Just(f64::INFINITY)];
    prop_oneof![
        (
            0u8..4,
            0u8..2,
            proptest::option::of(0u32..120_000),
            proptest::option::of(0.0..500.0f64),
            proptest::option::of(0u32..120_000),
        )
            .prop_map(|(agent, key, retry_after_ms, remaining, reset_ms)| {
                Op::Throttle {
                    agent,
                    key,
                    retry_after_ms,
                    remaining,
                    reset_ms,
                }
            }),
        (
            0u8..2,
            0.0..500.0f64,
            proptest::option::of(1.0..500.0f64),
            0u32..120_000
        )
            .prop_map(|(key, remaining, limit, reset_ms)| Op::Quota {
                key,
                remaining,
                limit,
                reset_ms
            }),
        rate.clone().prop_map(|accepted| Op::Tick { accepted }),
        (0.0..200.0f64).prop_map(|rate| Op::Plan { rate }),
    ]
}

proptest::proptest! {
    #[test]
    fn rates_stay_within_plan_and_min_rate(
        ops in proptest::collection::vec((0u32..400, op()), 1..200),
    ) {
        let mut g = Governor::new(GovernorConfig::new(50.0));
        let mut now = Duration::ZERO;
        let mut rng = StdRng::seed_from_u64(3);
        for (step_ms, op) in ops {
            now += ms(u64::from(step_ms));
            let decision = match op {
                Op::Throttle { agent, key, retry_after_ms, remaining, reset_ms } => {
                    let mut r = throttle(
                        &format!("a{agent}"),
                        &format!("k{key}"),
                        now,
                        retry_after_ms.map(|v| ms(u64::from(v))),
                    );
                    r.remaining = remaining;
                    r.reset = reset_ms.map(|v| ms(u64::from(v)));
                    g.on_throttle(now, r)
                }
                Op::Quota { key, remaining, limit, reset_ms } => {
                    let mut q = quota(&format!("k{key}"), now, remaining, 1.0, ms(u64::from(reset_ms)));
                    q.limit = limit;
                    g.on_quota(now, q)
                }
                Op::Tick { accepted } => g.on_tick(now, accepted),
                Op::Plan { rate } => {
                    g.set_plan_rate(now, rate);
                    None
                }
            };
            let plan = g.config().plan_rate;
            let floor = plan.min(0.5);
            for key in ["k0", "k1"] {
                let rate = g.allowed_rate(key);
                proptest::prop_assert!(rate.is_finite() && rate >= floor - 1e-9 && rate <= plan + 1e-9,
                    "{key}: {rate} outside [{floor}, {plan}]");
            }
            if let Some(d) = decision {
                proptest::prop_assert!(d.rate.is_finite() && d.rate >= 0.0);
                proptest::prop_assert!(d.pause_until.is_none_or(|p| p > now));
                let shares = agent_shares(&d, &[("x".into(), 1.0), ("y".into(), 3.0)], &mut rng);
                let total: f64 = shares.iter().map(|a| a.max_rate).sum();
                proptest::prop_assert!((total - d.rate).abs() < 1e-6);
            }
        }
    }
}

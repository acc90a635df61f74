//! Throttles alone (no quota headers) teach the governor what the API sustains: the
//! rate it ran without a throttle is where cuts go back to, and probes above it halve
//! the distance to the rate that was throttled.

use super::*;

/// An API that throttles once the fleet has sent more than 50 per second for 2 s,
/// answering Retry-After: 1; the fleet sends what it is allowed (ticks every 100 ms).
/// Returns the allowed rate at every tick and the governor.
fn run(seconds: u64) -> (Vec<(Duration, f64)>, Governor) {
    let mut g = Governor::new(GovernorConfig::new(150.0));
    let mut rates = Vec::new();
    let mut over_since: Option<Duration> = None;
    for tick in 0..seconds * 10 {
        let now = ms(tick * 100);
        let paused = g.paused_until("k", now).is_some();
        let rate = if paused { 0.0 } else { g.allowed_rate("k") };
        rates.push((now, rate));
        over_since = if rate > 50.0 {
            over_since.or(Some(now))
        } else {
            None
        };
        if over_since.is_some_and(|s| now - s >= secs(2)) || tick == 0 {
            let mut report = throttle("a", "k", now, Some(secs(1)));
            report.agent_rate = rate;
            g.on_throttle(now, report);
            over_since = None;
        }
        g.on_tick(now, rate);
    }
    (rates, g)
}

#[test]
fn the_limit_is_learned_from_throttles_alone_and_probed_rarely() {
    let (rates, g) = run(120);
    let late: Vec<f64> = rates
        .iter()
        .filter(|(t, r)| *t >= secs(60) && *r > 0.0)
        .map(|(_, r)| *r)
        .collect();
    let mean = late.iter().sum::<f64>() / late.len() as f64;
    assert!((46.0..=51.0).contains(&mean), "mean {mean}");
    let late_cuts = g
        .events()
        .iter()
        .filter(|e| e.kind == EventKind::Cut && e.at >= secs(60))
        .count();
    assert!(late_cuts <= 3, "{:#?}", g.events());
    // Cuts go back to what ran without a throttle, not 30 % below the probe.
    assert!(
        g.events()
            .iter()
            .any(|e| e.kind == EventKind::Cut && e.reason.contains("sustained before")),
        "{:#?}",
        g.events()
    );
}

#[test]
fn a_throttle_far_below_the_sustained_rate_forgets_it() {
    let (_, mut g) = run(60);
    let sustained = g.keys["k"].sustained.expect("learned");
    // The limit fell (another client shares the quota): throttled at 60 % of it.
    g.set_plan_rate(secs(60), sustained * 0.6);
    for t in 600..620 {
        g.on_tick(ms(t * 100), sustained * 0.6);
    }
    g.on_throttle(ms(62_000), throttle("a", "k", ms(62_000), Some(secs(1))));
    assert!(g.keys["k"].sustained.is_none());
    let rate = g.allowed_rate("k");
    assert!(rate <= 0.7 * sustained * 0.6 + 1e-9, "{rate}");
}

#[test]
fn probes_step_halfway_to_too_much_and_hold_there() {
    let (rates, g) = run(60);
    let cuts: Vec<_> = g
        .events()
        .iter()
        .filter(|e| e.kind == EventKind::Cut)
        .collect();
    // A hold: the same rate for 3 s on end, strictly inside the bracket a cut left.
    let held = cuts.windows(2).any(|pair| {
        let (cut, next) = (pair[0], pair[1]);
        let inside: Vec<f64> = rates
            .iter()
            .filter(|(t, _)| *t > cut.at && *t < next.at)
            .map(|(_, r)| *r)
            .collect();
        inside.windows(30).any(|w| {
            w.iter().all(|r| (r - w[0]).abs() < 1e-9)
                && w[0] > cut.new_rate + 1.0
                && w[0] < cut.old_rate - 1.0
        })
    });
    assert!(held, "{:#?}", g.events());
}

#[test]
fn a_too_much_near_the_sustained_rate_is_not_probed_again() {
    let (rates, g) = run(60);
    let last = g
        .events()
        .iter()
        .rfind(|e| e.kind == EventKind::Cut)
        .expect("throttled");
    assert!(
        last.at >= secs(20),
        "the bracket closes gradually: {:#?}",
        g.events()
    );
    let above = rates
        .iter()
        .filter(|(t, _)| *t > last.at)
        .any(|(_, r)| *r > last.old_rate * 0.99);
    assert!(
        !above,
        "stays below {:.2}: {:#?}",
        last.old_rate,
        g.events()
    );
}

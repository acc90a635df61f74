//! Continuous limiters (sliding window counter, token bucket) are paced as a rate, and
//! quota pacing keeps a short timeline.

use super::*;

/// 250 per 5 s, a sliding window counter: the report just before the grid's reset and
/// the first one after it show the previous window still counting.
fn sliding_turnover(g: &mut Governor) {
    g.on_tick(Duration::ZERO, 50.0);
    g.on_quota(ms(1_000), quota("k", ms(1_000), 10.0, 250.0, ms(400)));
    // 100 ms into the next window a fixed window would have 250 − (at most 10) left.
    g.on_quota(ms(1_500), quota("k", ms(1_500), 15.0, 250.0, ms(4_900)));
}

#[test]
fn a_window_that_carries_over_is_paced_at_limit_over_window() {
    let mut g = Governor::new(GovernorConfig::new(100.0));
    sliding_turnover(&mut g);
    let cruise = 0.97 * 250.0 / 4.9;
    assert!(
        (g.allowed_rate("k") - cruise).abs() < 1e-6,
        "{}",
        g.allowed_rate("k")
    );
    let reason = &g.events().last().unwrap().reason;
    assert!(reason.contains("refilled continuously"), "{reason}");
    // Past the grid's reset nothing rolls back to the full limit: same pace.
    g.on_tick(ms(6_500), 50.0);
    assert!((g.allowed_rate("k") - cruise).abs() < 1e-6);

    // Nothing left: the pace slows down in proportion instead of pausing until a reset …
    g.on_quota(ms(7_000), quota("k", ms(7_000), 2.0, 250.0, ms(4_400)));
    let slow = g.allowed_rate("k");
    assert!(slow < 0.5 * cruise, "{slow}");
    assert_eq!(g.paused_until("k", ms(7_000)), None);
    // … and a 429 with Retry-After 1 s neither cuts nor pauses the fleet.
    let mut late = throttle("a", "k", ms(7_050), Some(secs(1)));
    late.remaining = Some(0.0);
    late.limit = Some(250.0);
    late.reset = Some(ms(4_350));
    g.on_throttle(ms(7_050), late);
    assert_eq!(g.paused_until("k", ms(7_100)), None);
    assert_eq!(count(&g, EventKind::Cut), 0);
    // Sending below the refill earns the quota back: full pace again, announced.
    let mut back = None;
    for t in 71..=80u64 {
        back = g.on_tick(ms(t * 100), 1.0).or(back);
    }
    let back = back.expect("back at the full pace");
    assert!((back.rate - cruise).abs() < 1e-6, "{}", back.rate);
}

#[test]
fn remaining_rising_within_a_window_is_continuous() {
    let mut g = Governor::new(GovernorConfig::new(100.0));
    g.on_tick(Duration::ZERO, 50.0);
    // A token bucket of 250 refilling at 50/s: reset is the time until it is full.
    g.on_quota(ms(1_000), quota("k", ms(1_000), 20.0, 250.0, ms(4_600)));
    g.on_quota(ms(2_000), quota("k", ms(2_000), 60.0, 250.0, ms(3_800)));
    let cruise = 0.97 * 250.0 / 4.6;
    assert!((g.allowed_rate("k") - cruise).abs() < 1e-6);
}

#[test]
fn a_fixed_window_is_never_taken_for_a_continuous_one() {
    let mut g = Governor::new(GovernorConfig::new(100.0));
    g.on_tick(Duration::ZERO, 50.0);
    g.on_quota(ms(1_000), quota("k", ms(1_000), 10.0, 250.0, ms(400)));
    // After the reset: the whole limit less what 100 rps can have sent.
    g.on_quota(ms(1_500), quota("k", ms(1_500), 240.0, 250.0, ms(4_900)));
    let windowed = 0.97 * 240.0 / (4.9 - 4.9 / 20.0);
    assert!((g.allowed_rate("k") - windowed).abs() < 1e-6);
    // Requests in flight from another agent arrive out of order: a small rise.
    g.on_quota(ms(1_600), quota("k", ms(1_600), 230.0, 250.0, ms(4_800)));
    g.on_quota(ms(1_700), quota("k", ms(1_700), 232.0, 250.0, ms(4_700)));
    assert!(
        g.events()
            .iter()
            .all(|e| !e.reason.contains("continuously"))
    );
}

#[test]
fn consecutive_pacing_adjustments_make_one_event() {
    let mut g = Governor::new(GovernorConfig::new(100.0));
    // 300 per 60 s paced from 10 s on: each report moves the rate by a few percent.
    let mut remaining = 200.0;
    for i in 0..20u64 {
        let at = secs(10) + ms(i * 250);
        let reset = ms(50_500) - ms(i * 250);
        g.on_quota(at, quota("k", at, remaining, 300.0, reset));
        remaining -= if i % 2 == 0 { 0.0 } else { 8.0 };
    }
    let pacing: Vec<&GovernorEvent> = g
        .events()
        .iter()
        .filter(|e| e.kind == EventKind::QuotaPace)
        .collect();
    assert!(pacing.len() < 8, "{pacing:#?}");
    let merged = pacing.iter().find(|e| e.adjustments > 1).expect("merged");
    assert!(
        merged.reason.contains("adjustments over"),
        "{}",
        merged.reason
    );
    // A cut in between is an event of its own; pacing after it starts a new event.
    let before = g.events().len();
    g.on_throttle(ms(15_100), throttle("a", "k", ms(15_100), None));
    assert_eq!(g.events()[before].kind, EventKind::Cut);
    // A jump of more than 10 % is a new event even right after another.
    let n = g.events().len();
    g.on_quota(secs(20), quota("k", secs(20), 20.0, 300.0, ms(40_500)));
    g.on_quota(ms(20_100), quota("k", ms(20_100), 10.0, 300.0, ms(40_400)));
    assert!(g.events().len() > n);
}

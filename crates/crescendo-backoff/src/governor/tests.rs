use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn secs(v: u64) -> Duration {
    Duration::from_secs(v)
}

fn throttle(agent: &str, key: &str, at: Duration, retry_after: Option<Duration>) -> ThrottleReport {
    ThrottleReport {
        agent: agent.to_owned(),
        limit_key: key.to_owned(),
        status: 429,
        retry_after,
        remaining: None,
        limit: None,
        reset: None,
        at,
        agent_rate: 10.0,
    }
}

/// A decision taken at 1 s, resumes spread over 500 ms.
fn decision(
    key: &str,
    rate: f64,
    pause_until: Option<Duration>,
    interleave: bool,
) -> FleetDecision {
    FleetDecision {
        limit_key: key.to_owned(),
        rate,
        pause_until,
        resume_spread: ms(500),
        interleave,
        scout: None,
        resume: false,
        reason: String::new(),
        at: secs(1),
    }
}

fn quota(key: &str, at: Duration, remaining: f64, limit: f64, reset: Duration) -> QuotaReport {
    QuotaReport {
        agent: "a0".to_owned(),
        limit_key: key.to_owned(),
        remaining,
        limit: Some(limit),
        reset,
        at,
    }
}

/// A governor at 40 rps that has seen a few seconds of 40 rps accepted.
fn warmed_up() -> Governor {
    let mut g = Governor::new(GovernorConfig::new(40.0));
    for t in 0..=50 {
        assert!(g.on_tick(ms(t * 100), 40.0).is_none());
    }
    g
}

fn count(g: &Governor, kind: EventKind) -> usize {
    g.events().iter().filter(|e| e.kind == kind).count()
}

#[test]
fn forty_reports_from_four_agents_make_one_cut() {
    let mut g = warmed_up();
    let start = secs(5);
    let mut decisions = Vec::new();
    for i in 0..40u64 {
        let at = start + ms(i * 100 / 40);
        let agent = format!("agent-{}", i % 4);
        if let Some(d) = g.on_throttle(at, throttle(&agent, "cred", at, Some(secs(2)))) {
            decisions.push(d);
        }
    }
    assert_eq!(decisions.len(), 1, "{decisions:#?}");
    assert_eq!(count(&g, EventKind::Cut), 1);
    let d = &decisions[0];
    assert_eq!(d.limit_key, "cred");
    // 0.7 × min(measured 40, allowed 40).
    assert!((d.rate - 28.0).abs() < 1e-9, "{}", d.rate);
    assert_eq!(d.pause_until, Some(start + secs(2)));
    assert_eq!(d.resume_spread, ms(500));
    assert_eq!(d.at, start);
    assert!((g.allowed_rate("cred") - 28.0).abs() < 1e-9);
    assert!(d.reason.contains("429 from agent-0"), "{}", d.reason);
}

#[test]
fn cut_uses_measured_rate_when_lower_and_respects_min_rate() {
    let mut g = Governor::new(GovernorConfig::new(100.0));
    g.on_tick(Duration::ZERO, 0.0);
    g.on_tick(ms(100), 20.0);
    let d = g
        .on_throttle(ms(150), throttle("a", "k", ms(150), None))
        .unwrap();
    assert!((d.rate - 14.0).abs() < 1e-9, "0.7 × 20, got {}", d.rate);
    assert_eq!(d.pause_until, None);

    // Many separate events never push the rate under min_rate.
    for i in 1..40u64 {
        let now = ms(150) + secs(2 * i);
        g.on_throttle(now, throttle("a", "k", now, None));
    }
    assert!((g.allowed_rate("k") - 0.5).abs() < 1e-9);
}

#[test]
fn a_later_throttle_after_the_window_is_a_new_cut() {
    let mut g = warmed_up();
    g.on_throttle(secs(5), throttle("a", "k", secs(5), None));
    assert!(
        g.on_throttle(ms(5_900), throttle("b", "k", ms(5_900), None))
            .is_none()
    );
    let second = g.on_throttle(ms(6_100), throttle("b", "k", ms(6_100), None));
    assert!(second.is_some());
    assert_eq!(count(&g, EventKind::Cut), 2);
}

#[test]
fn a_much_longer_retry_after_extends_the_pause_without_cutting() {
    let mut g = warmed_up();
    let first = g
        .on_throttle(secs(5), throttle("a", "k", secs(5), Some(secs(2))))
        .unwrap();
    assert_eq!(first.pause_until, Some(secs(7)));
    // Same instant, integer rounding: absorbed.
    assert!(
        g.on_throttle(ms(5_050), throttle("b", "k", ms(5_050), Some(secs(2))))
            .is_none()
    );
    let longer = g
        .on_throttle(ms(5_100), throttle("c", "k", ms(5_100), Some(secs(60))))
        .unwrap();
    assert_eq!(longer.pause_until, Some(ms(65_100)));
    assert_eq!(count(&g, EventKind::Cut), 1);
    assert_eq!(count(&g, EventKind::Pause), 2);
}

#[test]
fn resumes_are_staggered_within_the_jitter() {
    let mut g = warmed_up();
    let d = g
        .on_throttle(secs(5), throttle("a", "k", secs(5), Some(secs(2))))
        .unwrap();
    let agents: Vec<(String, f64)> = (0..8).map(|i| (format!("agent-{i}"), 1.0)).collect();
    let mut rng = StdRng::seed_from_u64(11);
    let adjusts = agent_shares(&d, &agents, &mut rng);
    assert_eq!(adjusts.len(), 8);
    let mut pauses: Vec<Duration> = adjusts.iter().map(|a| a.pause).collect();
    for p in &pauses {
        assert!(*p >= secs(2) && *p < secs(2) + ms(500), "{p:?}");
    }
    pauses.sort();
    pauses.dedup();
    assert_eq!(pauses.len(), 8, "resumes must be distinct");
    // Evenly spread: consecutive resumes are 500 ms / 8 apart.
    for pair in pauses.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap.abs_diff(ms(62) + Duration::from_micros(500)) < Duration::from_micros(10));
    }
    let total: f64 = adjusts.iter().map(|a| a.max_rate).sum();
    assert!((total - d.rate).abs() < 1e-9);
}

#[test]
fn an_interleaved_resume_puts_the_agents_one_request_apart() {
    // 4 agents resuming at 50 rps in all: each sends every 80 ms, so they resume
    // 20 ms apart and their requests take turns.
    let d = decision("k", 50.0, Some(secs(2)), true);
    let agents: Vec<(String, f64)> = (0..4).map(|i| (format!("a{i}"), 1.0)).collect();
    let mut rng = StdRng::seed_from_u64(7);
    let mut pauses: Vec<Duration> = agent_shares(&d, &agents, &mut rng)
        .iter()
        .map(|a| a.pause)
        .collect();
    pauses.sort();
    assert!(
        pauses[0] >= secs(1) && pauses[3] < secs(1) + ms(80),
        "{pauses:?}"
    );
    for pair in pauses.windows(2) {
        assert!((pair[1] - pair[0]).abs_diff(ms(20)) < Duration::from_micros(10));
    }
}

#[test]
fn the_current_decision_is_what_a_joining_agent_follows() {
    let mut g = warmed_up();
    let unseen = g.current_decision(secs(5), "k", "join".into());
    assert_eq!((unseen.rate, unseen.pause_until), (40.0, None));
    assert!(!unseen.interleave);
    let cut = g
        .on_throttle(secs(5), throttle("a", "k", secs(5), Some(secs(2))))
        .unwrap();
    let joined = g.current_decision(secs(6), "k", "join".into());
    assert_eq!(
        (joined.rate, joined.pause_until),
        (cut.rate, cut.pause_until)
    );
    assert_eq!(joined.interleave, cut.interleave);
    assert_eq!(joined.at, secs(6));
    // Asking changes nothing.
    assert!((g.allowed_rate("k") - cut.rate).abs() < 1e-9);
}

#[test]
fn shares_follow_weights_and_survive_bad_weights() {
    let d = decision("k", 30.0, None, false);
    let mut rng = StdRng::seed_from_u64(1);
    let adjusts = agent_shares(
        &d,
        &[
            ("a".to_owned(), 2.0),
            ("b".to_owned(), 1.0),
            ("c".to_owned(), f64::NAN),
        ],
        &mut rng,
    );
    assert_eq!(adjusts[0].max_rate, 20.0);
    assert_eq!(adjusts[1].max_rate, 10.0);
    assert_eq!(adjusts[2].max_rate, 0.0);
    assert!(adjusts.iter().all(|a| a.pause.is_zero()));

    let equal = agent_shares(
        &d,
        &[("a".to_owned(), 0.0), ("b".to_owned(), -1.0)],
        &mut rng,
    );
    assert_eq!(equal[0].max_rate, 15.0);
    assert!(agent_shares(&d, &[], &mut rng).is_empty());
}

#[test]
fn recovery_climbs_back_to_plan_rate() {
    let mut g = warmed_up();
    g.on_throttle(secs(5), throttle("a", "k", secs(5), Some(secs(1))));
    assert!((g.allowed_rate("k") - 28.0).abs() < 1e-9);
    let mut last = g.allowed_rate("k");
    let mut decisions = 0;
    for t in 51..=200u64 {
        let now = ms(t * 100);
        if g.on_tick(now, last).is_some() {
            decisions += 1;
        }
        let rate = g.allowed_rate("k");
        assert!(rate >= last - 1e-9, "never drops while quiet");
        assert!(rate <= 40.0);
        if now < secs(6) {
            assert!(
                (rate - 28.0).abs() < 1e-9,
                "no recovery during the cut window"
            );
        }
        last = rate;
    }
    // 12 rps to regain at 2 rps/s: back at the plan rate well before 20 s.
    assert_eq!(g.allowed_rate("k"), 40.0);
    assert!(
        decisions >= 3,
        "recovery is announced in steps, got {decisions}"
    );
    assert!(count(&g, EventKind::Recover) >= 3);
    let last_event = g.events().last().unwrap();
    assert_eq!(last_event.new_rate, 40.0);
}

/// The documented pacing rule for an exact (fractional) reset: spend `0.97 ×` what is
/// left by the reset, less a lead of `min(1 s, window / 20)`.
fn pace(remaining: f64, to_reset: f64, window: f64) -> f64 {
    0.97 * remaining / (to_reset - (window / 20.0).min(1.0))
}

#[test]
fn quota_pacing_matches_remaining_over_reset() {
    let mut g = Governor::new(GovernorConfig::new(100.0));
    let d = g
        .on_quota(secs(10), quota("k", secs(10), 150.0, 300.0, ms(30_500)))
        .unwrap();
    let expected = pace(150.0, 30.5, 30.5);
    assert!((d.rate - expected).abs() < 1e-9, "{} vs {expected}", d.rate);
    assert!((g.allowed_rate("k") - expected).abs() < 1e-9);
    assert_eq!(count(&g, EventKind::QuotaPace), 1);
    let reason = &g.events()[0].reason;
    assert!(
        reason.contains("0.97") && reason.contains("150 of 300"),
        "{reason}"
    );

    // A slightly older report from another agent in the same window changes nothing.
    let older = quota("k", ms(9_990), 151.0, 300.0, ms(30_510));
    assert!(g.on_quota(secs(10), older).is_none());
    // Under-spending raises the pace: 150 left with 20.5 s to go.
    let d = g
        .on_quota(secs(20), quota("k", secs(20), 150.0, 300.0, ms(20_500)))
        .unwrap();
    assert!((d.rate - pace(150.0, 20.5, 30.5)).abs() < 1e-9);
}

#[test]
fn whole_second_resets_pace_by_the_earliest_possible_reset() {
    // "reset: 30" may be rounded either way: the window ends within 29..31 s, and the
    // quota is paced to be spent by the earliest of these, all but 2 requests kept to
    // learn the rounding after it.
    let mut g = Governor::new(GovernorConfig::new(100.0));
    g.on_quota(secs(10), quota("k", secs(10), 150.0, 300.0, secs(30)));
    assert!((g.allowed_rate("k") - pace(148.0, 29.0, 30.0)).abs() < 1e-9);
    // A later report narrows the interval: 19 s at 20.4 s puts the reset in
    // [38.4, 40.4], so in [39, 40.4] with the first; the pace aims at 39 s.
    g.on_quota(ms(20_400), quota("k", ms(20_400), 100.0, 300.0, secs(19)));
    let expected = pace(98.0, 18.6, 30.0);
    assert!(
        (g.allowed_rate("k") - expected).abs() < 1e-9,
        "{}",
        g.allowed_rate("k")
    );
}

#[test]
fn quota_pacing_never_exceeds_plan_and_rolls_to_limit_over_window() {
    let mut g = Governor::new(GovernorConfig::new(8.0));
    // Start of a 60 s window of 300: about 0.97 × 5 rps.
    let start = quota("k", Duration::ZERO, 300.0, 300.0, ms(59_900));
    g.on_quota(Duration::ZERO, start);
    assert!((g.allowed_rate("k") - pace(300.0, 59.9, 59.9)).abs() < 1e-9);
    // Near the end with plenty left: capped at the plan rate.
    g.on_quota(secs(55), quota("k", secs(55), 200.0, 300.0, ms(4_900)));
    assert_eq!(g.allowed_rate("k"), 8.0);
    // After the reset and no fresh report: margin × limit over the (learned) window.
    g.on_tick(ms(61_000), 4.0);
    let rate = g.allowed_rate("k");
    assert!((4.6..5.2).contains(&rate), "{rate}");
}

#[test]
fn exhausted_quota_pauses_until_reset_and_resumes_at_window_pace() {
    let mut g = Governor::new(GovernorConfig::new(20.0));
    let start = quota("k", Duration::ZERO, 300.0, 300.0, ms(59_500));
    g.on_quota(Duration::ZERO, start);
    let d = g
        .on_quota(secs(50), quota("k", secs(50), 0.0, 300.0, ms(9_500)))
        .unwrap();
    assert_eq!(d.pause_until, Some(ms(59_500)));
    // The rate announced is the one after the reset: about 0.97 × 300 / 60 s.
    assert!(
        (4.6..5.2).contains(&d.rate),
        "rate after the reset, got {}",
        d.rate
    );
    assert_eq!(g.paused_until("k", secs(55)), Some(ms(59_500)));
    assert_eq!(g.paused_until("k", secs(60)), None);
    assert_eq!(count(&g, EventKind::Pause), 1);
    // Further reports of the same exhausted window do not pause again.
    let again = quota("k", secs(51), 0.0, 300.0, ms(8_500));
    assert!(g.on_quota(secs(51), again).is_none());
}

#[test]
fn quota_spent_by_own_estimate_pauses_on_a_tick() {
    let mut g = Governor::new(GovernorConfig::new(20.0));
    g.on_tick(Duration::ZERO, 0.0);
    g.on_quota(
        Duration::ZERO,
        quota("k", Duration::ZERO, 3.0, 300.0, ms(10_500)),
    );
    // Pacing 3 requests over 10 s is below min_rate: the fleet sends 0.5 rps (the
    // estimate counts the smaller of allowed and accepted), so the last whole request
    // is gone after 4 s.
    let mut paused = None;
    for t in 1..=60u64 {
        let decision = g.on_tick(ms(t * 100), 2.0);
        if let Some(d) = decision.filter(|d| d.pause_until.is_some()) {
            paused = Some((t, d));
            break;
        }
    }
    let (t, d) = paused.expect("a pause once the estimate is spent");
    assert!((40..=42).contains(&t), "paused at tick {t}");
    assert_eq!(d.pause_until, Some(ms(10_500)));
    assert!(d.reason.contains("estimate"), "{}", d.reason);
}

#[test]
fn throttle_with_exhausted_quota_and_no_retry_after_pauses_until_reset() {
    let mut g = warmed_up();
    let mut report = throttle("a", "k", secs(5), None);
    report.remaining = Some(0.0);
    report.limit = Some(300.0);
    report.reset = Some(secs(3));
    let d = g.on_throttle(secs(5), report).unwrap();
    // "reset: 3" may be rounded down: the window has surely reset at 9 s. The quota
    // ran out, which is no unknown limit: no cut.
    assert_eq!(d.pause_until, Some(secs(9)));
    assert_eq!(count(&g, EventKind::Cut), 0);
    assert_eq!(d.rate, 40.0);
}

#[test]
fn a_straggler_429_from_a_finished_window_is_ignored() {
    let mut g = Governor::new(GovernorConfig::new(20.0));
    g.on_quota(secs(1), quota("k", secs(1), 200.0, 300.0, ms(9_500)));
    // The window (ending at 10.5 s) is long over when this 429 from 9 s arrives.
    g.on_quota(secs(12), quota("k", secs(12), 290.0, 300.0, ms(58_500)));
    let mut late = throttle("a", "k", secs(9), Some(secs(2)));
    late.remaining = Some(0.0);
    late.reset = Some(ms(1_500));
    assert!(g.on_throttle(secs(12), late).is_none());
    assert_eq!(g.paused_until("k", secs(12)), None);
    assert!(g.events().iter().all(|e| e.kind == EventKind::QuotaPace));
}

#[test]
fn keys_are_independent() {
    let mut g = warmed_up();
    g.on_throttle(secs(5), throttle("a", "cred-1", secs(5), Some(secs(2))));
    g.on_quota(secs(5), quota("cred-2", secs(5), 100.0, 300.0, ms(50_500)));
    assert!((g.allowed_rate("cred-1") - 28.0).abs() < 1e-9);
    assert!((g.allowed_rate("cred-2") - pace(100.0, 50.5, 50.5)).abs() < 1e-9);
    assert_eq!(g.allowed_rate("never-seen"), 40.0);
    assert_eq!(g.paused_until("cred-2", secs(6)), None);
    assert_eq!(g.paused_until("cred-1", secs(6)), Some(secs(7)));
    // A throttle on cred-2 is its own first cut, even inside cred-1's window.
    assert!(
        g.on_throttle(ms(5_010), throttle("b", "cred-2", ms(5_010), None))
            .is_some()
    );
    assert_eq!(count(&g, EventKind::Cut), 2);
}

#[test]
fn plan_rate_changes_bound_the_rate() {
    let mut g = warmed_up();
    g.set_plan_rate(secs(6), 10.0);
    assert_eq!(g.allowed_rate("k"), 10.0);
    g.on_throttle(secs(6), throttle("a", "k", secs(6), None));
    assert!((g.allowed_rate("k") - 7.0).abs() < 1e-9);
    g.set_plan_rate(secs(7), 5.0);
    assert_eq!(g.allowed_rate("k"), 5.0);
    // A plan below min_rate wins: the plan asks for less.
    g.set_plan_rate(secs(8), 0.0);
    assert_eq!(g.allowed_rate("k"), 0.0);
    g.set_plan_rate(secs(9), f64::NAN);
    assert_eq!(g.allowed_rate("k"), 0.0);
}

#[test]
fn timeline_records_cut_pause_recover_and_serializes() {
    let mut g = warmed_up();
    g.on_throttle(secs(5), throttle("a", "k", secs(5), Some(secs(1))));
    for t in 51..=150u64 {
        g.on_tick(ms(t * 100), 30.0);
    }
    let kinds: Vec<EventKind> = g.events().iter().map(|e| e.kind).collect();
    assert_eq!(&kinds[..2], &[EventKind::Cut, EventKind::Pause]);
    assert!(kinds[2..].iter().all(|k| *k == EventKind::Recover));
    let times: Vec<Duration> = g.events().iter().map(|e| e.at).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    let first = &g.events()[0];
    assert_eq!((first.old_rate, first.limit_key.as_str()), (40.0, "k"));

    let json = serde_json::to_string(&g.events()[0]).unwrap();
    assert!(json.contains("\"kind\":\"cut\""), "{json}");
    assert!(json.contains("\"at\":5.0"), "{json}");
}

#[test]
fn arbitrary_inputs_never_panic() {
    let mut g = Governor::new(GovernorConfig::new(10.0));
    let mut report = throttle("a", "k", Duration::MAX, Some(Duration::MAX));
    report.agent_rate = f64::NAN;
    report.remaining = Some(f64::INFINITY);
    report.reset = Some(Duration::MAX);
    g.on_throttle(Duration::MAX, report);
    g.on_quota(
        Duration::ZERO,
        quota("k", Duration::MAX, f64::NAN, -1.0, Duration::MAX),
    );
    g.on_quota(
        Duration::MAX,
        quota("k", Duration::ZERO, -5.0, f64::INFINITY, Duration::ZERO),
    );
    g.on_tick(Duration::ZERO, f64::NAN);
    g.on_tick(Duration::MAX, f64::INFINITY);
    g.on_tick(Duration::ZERO, -1.0);
    let rate = g.allowed_rate("k");
    assert!(rate.is_finite() && rate >= 0.0);
}

mod bracket;
mod continuous;
mod keys;
mod props;
mod rounding;
mod scout;
mod stragglers;

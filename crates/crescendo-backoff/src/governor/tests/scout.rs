//! The scout of a whole-second Retry-After: one agent resumes a second early, and the
//! fleet resumes as soon as it gets through.

use super::*;

fn agents() -> Vec<(String, f64)> {
    ["a0", "a1", "a2", "a3"]
        .iter()
        .map(|a| ((*a).to_owned(), 1.0))
        .collect()
}

/// A warmed-up governor throttled at 5 s by `a1` with a Retry-After of `wait`.
fn throttled(wait: Duration) -> (Governor, FleetDecision) {
    let mut g = warmed_up();
    let d = g
        .on_throttle(secs(5), throttle("a1", "cred", secs(5), Some(wait)))
        .expect("a cut");
    (g, d)
}

#[test]
fn the_throttled_agent_scouts_a_whole_second_retry_after_from_a_second_early() {
    let (_, d) = throttled(secs(2));
    assert_eq!(d.pause_until, Some(secs(7)));
    let scout = d.scout.clone().expect("a scout");
    assert_eq!(scout.agent, "a1");
    assert_eq!(scout.from, secs(6));
    assert!(!d.resume);

    let shares = agent_shares(&d, &agents(), &mut StdRng::seed_from_u64(1));
    for a in &shares {
        if a.agent == "a1" {
            // It resumes at 6 s even though its own 429 paused it until 7 s, probes at
            // most SCOUT_RATE and scouts until the last agent's resume.
            assert_eq!(a.pause, secs(1));
            assert!(a.replace_pause);
            assert_eq!(a.scout_for, secs(1) + d.resume_spread);
            assert!(
                a.max_rate <= SCOUT_RATE && a.max_rate > 0.0,
                "{}",
                a.max_rate
            );
        } else {
            assert!(a.pause >= secs(2), "{a:?}");
            assert!(!a.replace_pause && a.scout_for.is_zero(), "{a:?}");
            assert!((a.max_rate - d.rate / 4.0).abs() < 1e-9);
        }
    }
}

#[test]
fn an_answer_before_the_scout_resumed_opens_nothing() {
    // Retry-After 2 s at 5 s: the scout resumes at 6 s. A success it reports at 5.5 s
    // is one of a request sent before the pause.
    let (mut g, _) = throttled(secs(2));
    assert!(g.on_opened(ms(5_500), "cred", "a1").is_none());
    assert_eq!(g.paused_until("cred", ms(5_500)), Some(secs(7)));
    assert!(g.on_opened(ms(6_100), "cred", "a1").is_some());
}

#[test]
fn a_later_pause_replacing_the_scouted_one_has_no_scout() {
    // A 429 asking for much longer (another limit) while the scouted pause is in force.
    let (mut g, _) = throttled(secs(2));
    let longer = g
        .on_throttle(ms(5_400), throttle("a2", "cred", ms(5_400), Some(secs(30))))
        .expect("the pause is extended");
    assert_eq!(longer.pause_until, Some(ms(35_400)));
    assert_eq!(longer.scout, None);
    assert!(g.on_opened(ms(6_100), "cred", "a1").is_none());
}

#[test]
fn a_wait_that_is_not_whole_seconds_has_no_scout() {
    let (_, d) = throttled(ms(1_500));
    assert_eq!(d.pause_until, Some(ms(6_500)));
    assert_eq!(d.scout, None);
    let shares = agent_shares(&d, &agents(), &mut StdRng::seed_from_u64(1));
    assert!(
        shares
            .iter()
            .all(|a| !a.replace_pause && a.scout_for.is_zero())
    );
}

#[test]
fn with_quota_headers_nobody_scouts() {
    // A 429 while the reported quota is not spent (another limit, or a sliding
    // window's estimate): a cut and a pause, but the headers know the window better.
    let mut g = warmed_up();
    let report = ThrottleReport {
        remaining: Some(5.0),
        limit: Some(100.0),
        reset: Some(secs(1)),
        ..throttle("a1", "cred", secs(5), Some(secs(1)))
    };
    let d = g.on_throttle(secs(5), report).expect("a pause");
    assert_eq!(count(&g, EventKind::Cut), 1);
    assert!(d.pause_until.is_some());
    assert_eq!(d.scout, None);
}

#[test]
fn the_fleet_resumes_when_its_scout_gets_through_and_a_later_429_is_news() {
    let (mut g, d) = throttled(secs(2));
    // Only the scout of a pause in force opens it.
    assert!(g.on_opened(ms(6_200), "cred", "a2").is_none());
    assert!(g.on_opened(ms(6_200), "other", "a1").is_none());
    let open = g
        .on_opened(ms(6_300), "cred", "a1")
        .expect("the fleet resumes");
    assert!(open.resume);
    assert_eq!(open.pause_until, None);
    assert_eq!(open.scout, None);
    assert!(open.rate >= d.rate);
    assert_eq!(g.paused_until("cred", ms(6_300)), None);
    assert_eq!(count(&g, EventKind::Resume), 1);
    assert!(
        open.reason.contains("a1 got through 0.70 s"),
        "{}",
        open.reason
    );
    // Every agent's pause ends now, a longer one it took on its own included.
    let shares = agent_shares(&open, &agents(), &mut StdRng::seed_from_u64(1));
    assert!(shares.iter().all(|a| a.pause.is_zero() && a.replace_pause));
    // Once only.
    assert!(g.on_opened(ms(6_400), "cred", "a1").is_none());

    // A 429 soon after is a new event (the fleet resumed into an open window), not a
    // sign of rounded-down delays: its whole-second Retry-After gets no second more.
    let again = g
        .on_throttle(ms(6_800), throttle("a3", "cred", ms(6_800), Some(secs(1))))
        .expect("a new cut");
    assert_eq!(count(&g, EventKind::Cut), 2);
    assert_eq!(again.pause_until, Some(ms(7_800)));
    assert_eq!(again.scout.expect("a scout").agent, "a3");
}

#[test]
fn a_scout_that_never_gets_through_gets_its_share_back() {
    let (mut g, d) = throttled(secs(1));
    assert_eq!(d.scout.as_ref().map(|s| s.from), Some(secs(5)));
    let mut after = None;
    for t in 51..=70 {
        if let Some(d) = g.on_tick(ms(t * 100), 0.0) {
            after.get_or_insert(d);
        }
    }
    let after = after.expect("a decision once the pause is over");
    assert!(after.at >= secs(6), "{after:?}");
    assert!(after.reason.contains("scout saw no opening"), "{after:?}");
    assert_eq!(after.scout, None);
    assert!(!after.resume);
    let shares = agent_shares(&after, &agents(), &mut StdRng::seed_from_u64(1));
    assert!(shares.iter().all(|a| a.scout_for.is_zero()));
    assert!(
        shares
            .iter()
            .all(|a| (a.max_rate - after.rate / 4.0).abs() < 1e-9)
    );
    // Too late to open anything.
    assert!(g.on_opened(secs(7), "cred", "a1").is_none());
}

#[test]
fn a_cycle_ended_by_the_scout_is_measured_to_the_real_resume() {
    let mut g = warmed_up();
    g.on_throttle(secs(5), throttle("a1", "cred", secs(5), Some(secs(1))));
    for t in 51..=70 {
        g.on_tick(ms(t * 100), 40.0);
    }
    // Resumed at 6 s, throttled at 7 s: the cut assumes the cycle lasts until the
    // Retry-After's end at 8 s, half of it idle, and caps the rate at what that sent.
    let cut = g
        .on_throttle(secs(7), throttle("a1", "cred", secs(7), Some(secs(1))))
        .expect("a cut");
    assert!(
        cut.reason.contains("capped at learned ceiling"),
        "{}",
        cut.reason
    );
    // The scout gets through at 7.1 s: the cycle was 1.1 s, the ceiling twice as high,
    // and the cut no longer capped by the old estimate.
    let open = g.on_opened(ms(7_100), "cred", "a1").expect("opened");
    assert!(
        open.rate > 1.3 * cut.rate,
        "{} after {}",
        open.rate,
        cut.rate
    );
    // Not above the cut's own rule: 0.7 × min(measured 40, allowed).
    assert!(open.rate <= 0.7 * 40.0 + 1e-9, "{}", open.rate);
}

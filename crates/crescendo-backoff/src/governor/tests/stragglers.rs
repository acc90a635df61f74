//! Late reports of a window that has just reset. The controller stamps a report on
//! receipt, so its response may be ~100 ms older than `at`: a "0 left, reset 1" sent just
//! before a reset can arrive after the governor's inferred reset, or after the first
//! report of the next window. It says nothing about the next window, and must never
//! pause the fleet past the reset the headers allow.

use super::*;

/// Reports every 100 ms from `from` until before `to` (ms) of a window of 100 per 2 s
/// that ends at `end`, spent at 45 per second, resets rounded up as flowsim does;
/// stamped with the response's arrival.
fn report_window(g: &mut Governor, (from, to): (u64, u64), end: u64) {
    let mut t = from;
    while t < to.min(end) {
        let reset = secs((end - t).div_ceil(1_000));
        let remaining = 100.0 - 45.0 * (t + 2_000 - end) as f64 / 1_000.0;
        g.on_quota(ms(t), quota("k", ms(t), remaining.max(0.0), 100.0, reset));
        t += 100;
    }
}

/// A governor that learned that resets are rounded up and knows the window in force
/// ends within [5.0, 5.1] s: at 5.0 s the window resets "within 0.1 s".
fn reset_within_a_tenth() -> Governor {
    let mut g = Governor::new(GovernorConfig::new(150.0));
    report_window(&mut g, (1_050, 3_050), 3_050);
    // The next window opens with the first request after the reset (as flowsim's).
    report_window(&mut g, (3_100, 5_050), 5_100);
    let quota = g.keys["k"].quota.as_ref().unwrap();
    assert!(quota.rounds_up());
    assert_eq!(quota.bounds(), (ms(5_000), ms(5_100)));
    g
}

/// The pause in force at `now`, if any, must not outlast `reset`.
fn assert_no_pause_past(g: &Governor, now: Duration, reset: Duration) {
    let until = g.paused_until("k", now);
    assert!(
        until.is_none_or(|u| u <= reset),
        "paused until {until:?}, past the reset at {reset:?}: {:#?}",
        g.events()
    );
}

#[test]
fn a_late_zero_left_after_the_inferred_reset_does_not_pause_a_window() {
    let mut g = reset_within_a_tenth();
    // "0 left, reset 1" from a response at 5.08 s, received at 5.13 s: after the latest
    // reset (5.1 s) but before a tick rolled the window over. Read as news it opens a
    // "new window" that is spent, up to 2 s long (a second either way, once it does not
    // fit the rounding up): the fleet would idle through a whole window.
    g.on_quota(ms(5_130), quota("k", ms(5_130), 0.0, 100.0, secs(1)));
    assert_no_pause_past(&g, ms(5_130), ms(5_100));
    assert_eq!(count(&g, EventKind::Pause), 0);
    // The next window is paced from the full limit.
    g.on_tick(ms(5_200), 45.0);
    assert!(g.allowed_rate("k") > 40.0, "{}", g.allowed_rate("k"));
}

#[test]
fn a_late_zero_left_after_the_next_window_showed_up_is_ignored() {
    let mut g = reset_within_a_tenth();
    // The first answer of the next window (opened at 5.1 s) comes in first …
    g.on_quota(ms(5_120), quota("k", ms(5_120), 99.0, 100.0, secs(2)));
    // … then the old window's last "0 left, reset 1" (a response at 5.09 s).
    g.on_quota(ms(5_150), quota("k", ms(5_150), 0.0, 100.0, secs(1)));
    assert_no_pause_past(&g, ms(5_150), ms(5_100));
    assert_eq!(count(&g, EventKind::Pause), 0);
    let quota = g.keys["k"].quota.as_ref().unwrap();
    assert_eq!(quota.remaining(), 99.0);
    assert!(quota.bounds().1 >= ms(7_100), "{:?}", quota.bounds());
}

#[test]
fn a_window_spent_at_once_still_pauses_until_its_reset() {
    let mut g = reset_within_a_tenth();
    g.on_quota(ms(5_120), quota("k", ms(5_120), 99.0, 100.0, secs(2)));
    // A burst spent the new window: "0 left, reset 2" is about this window, whose end
    // its reset puts well after the previous one.
    g.on_quota(ms(5_400), quota("k", ms(5_400), 0.0, 100.0, secs(2)));
    let until = g.paused_until("k", ms(5_400)).expect("paused");
    assert!((ms(7_100)..=ms(7_120)).contains(&until), "{until:?}");
}

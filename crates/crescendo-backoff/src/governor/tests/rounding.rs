//! Whole-second resets: the governor learns which way the server rounds them, and then
//! knows each window's end to within a report interval instead of a second.

use super::super::quota::QuotaWindow;
use super::*;

/// A window of 100 per 2 s that ends at `end` (ms), reported every 100 ms from `from`
/// until `to` by a fleet spending 45 per second, with resets rounded up or down.
fn report_window(q: &mut QuotaWindow, (from, to): (u64, u64), end: u64, up: bool) {
    let mut t = from;
    while t < to.min(end) {
        let left = end - t;
        let reset = if up {
            left.div_ceil(1_000)
        } else {
            left / 1_000
        };
        let remaining = 100.0 - 45.0 * (t + 2_000 - end) as f64 / 1_000.0;
        q.observe(ms(t), remaining.max(0.0), Some(100.0), secs(reset), 45.0);
        t += 100;
    }
}

fn width(q: &QuotaWindow) -> Duration {
    let (earliest, latest) = q.bounds();
    latest - earliest
}

#[test]
fn rounded_up_resets_are_learned_when_a_window_ends_early() {
    let mut q = QuotaWindow::new(ms(1_050), 99.0, Some(100.0), secs(2));
    report_window(&mut q, (1_150, 3_050), 3_050, true);
    // Either rounding fits so far: the end is known to within about a second.
    let (earliest, latest) = q.bounds();
    assert!(earliest <= ms(3_050) && ms(3_050) <= latest);
    assert!(width(&q) >= ms(900), "{:?}", q.bounds());
    // The next window shows up 50 ms after the end: a second too early for resets
    // rounded down, so they are rounded up …
    q.observe(ms(3_100), 97.0, Some(100.0), secs(2), 45.0);
    assert!(q.rounds_up());
    // … and the following window's end is known to within a report interval.
    report_window(&mut q, (3_200, 5_050), 5_050, true);
    let (earliest, latest) = q.bounds();
    assert!(
        earliest <= ms(5_050) && ms(5_050) <= latest,
        "{:?}",
        q.bounds()
    );
    assert!(width(&q) <= ms(100), "{:?}", q.bounds());
}

#[test]
fn a_reset_of_zero_means_rounded_down() {
    let mut q = QuotaWindow::new(ms(1_050), 99.0, Some(100.0), secs(1));
    report_window(&mut q, (1_150, 3_050), 3_050, false);
    assert!(!q.rounds_up());
    let (earliest, latest) = q.bounds();
    assert!(
        earliest <= ms(3_050) && ms(3_050) <= latest,
        "{:?}",
        q.bounds()
    );
    assert!(width(&q) <= ms(100), "{:?}", q.bounds());
}

#[test]
fn resets_that_rounding_up_cannot_explain_widen_the_window_again() {
    let mut q = QuotaWindow::new(ms(1_050), 99.0, Some(100.0), secs(2));
    report_window(&mut q, (1_150, 3_050), 3_050, true);
    q.observe(ms(3_100), 97.0, Some(100.0), secs(2), 45.0);
    assert!(q.rounds_up());
    // Not rounded up after all: "2" at 3.2 s and "1" at 3.4 s put the end in
    // (4.2, 5.2] and (3.4, 4.4] if rounded up, and then "2" again at 3.7 s cannot be.
    q.observe(ms(3_200), 90.0, Some(100.0), secs(2), 45.0);
    q.observe(ms(3_400), 80.0, Some(100.0), secs(1), 45.0);
    q.observe(ms(3_700), 70.0, Some(100.0), secs(2), 45.0);
    assert!(!q.rounds_up());
    assert!(width(&q) >= ms(900), "{:?}", q.bounds());
}

#[test]
fn pacing_keeps_a_reserve_to_learn_the_rounding_then_spends_up_to_the_end() {
    let mut q = QuotaWindow::new(ms(1_050), 99.0, Some(100.0), secs(2));
    report_window(&mut q, (1_150, 2_000), 3_050, true);
    // Before the earliest plausible end (3.05 s less a 100 ms lead): all but 2.
    let (earliest, _) = q.bounds();
    let until = (earliest - ms(100) - ms(2_000)).as_secs_f64();
    // The last report, at 1.95 s, is 1.1 s before the end.
    let remaining = 100.0 - 45.0 * 0.9;
    let pace = q.pace(ms(2_000), 0.97).unwrap();
    assert!(
        (pace - 0.97 * (remaining - 2.0) / until).abs() < 1e-6,
        "{pace}"
    );
    // Once rounded up is known, what is left is spread until the latest end.
    report_window(&mut q, (2_000, 3_050), 3_050, true);
    q.observe(ms(3_100), 97.0, Some(100.0), secs(2), 45.0);
    report_window(&mut q, (3_200, 4_500), 5_050, true);
    let (_, latest) = q.bounds();
    let left = (latest - ms(4_500)).as_secs_f64();
    let pace = q.pace(ms(4_500), 0.97).unwrap();
    assert!(
        (pace - 0.97 * q.estimated_remaining() / left).abs() < 1e-6,
        "{pace}"
    );
}

#[test]
fn the_governor_asks_to_be_woken_when_a_window_is_over() {
    let mut g = Governor::new(GovernorConfig::new(150.0));
    assert_eq!(g.next_wake(secs(1)), None);
    // An exact reset: the window is over at 3 s.
    g.on_quota(ms(1_050), quota("k", ms(1_050), 99.0, 100.0, ms(1_950)));
    assert_eq!(g.next_wake(ms(1_100)), Some(ms(3_000)));
    // Ticked then, the window rolls over and the next one is due a window later
    // (widened by a second: the window's length is only known from the resets).
    g.on_tick(ms(3_001), 50.0);
    assert_eq!(g.next_wake(ms(3_001)), Some(ms(5_950)));
}

//! [`due()`]: which of a schedule's times have come, decided from the clock alone.
//!
//! The rules for applying the answer are on [`due()`] itself.

use chrono::{DateTime, Utc};

use crate::schedule::Schedule;
use crate::when::{CompiledWhen, ONE_SECOND};

/// The most missed times [`due()`] lists (the newest ones).
pub const MISSED_CAP: usize = 1000;

/// What [`due()`] found. All times are schedule times, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Due {
    /// Times more than a second before `now` (and after the schedule was last handled).
    pub missed: Vec<DateTime<Utc>>,
    /// True when more times were missed than the newest [`MISSED_CAP`] listed here.
    pub missed_capped: bool,
    /// The time within the last second (`now - 1 s < t <= now`), if one fell there.
    pub on_time: Option<DateTime<Utc>>,
    /// The first time after `now`; `None` when the schedule is paused or has no more.
    pub next: Option<DateTime<Utc>>,
}

impl Due {
    /// The newest time this answer covers, to pass to `set_last_handled` once it is
    /// dealt with; `None` when nothing was due.
    pub fn handled_up_to(&self) -> Option<DateTime<Utc>> {
        self.on_time.or_else(|| self.missed.last().copied())
    }

    /// True when nothing is due now.
    pub fn is_empty(&self) -> bool {
        self.missed.is_empty() && self.on_time.is_none()
    }
}

/// The schedule's times in `(last_handled or created_at, now]`, split into missed and on
/// time, and its next time after `now`. A paused schedule has nothing due and no next
/// time; so does one whose cron expression no longer parses (the store checks it on add).
///
/// # How the service applies it
///
/// On start and whenever a [`Due::next`] time comes, for each schedule:
///
/// 1. `let d = due(&schedule, now)`.
/// 2. If [`Due::missed`] is not empty (times more than a second old that were never
///    handled: the service was down, or too busy to look), by the schedule's
///    [`Missed`](crate::Missed):
///    - [`RunOnce`](crate::Missed::RunOnce): queue one run for the newest missed time,
///      with `scheduled_at` = that time and `missed = Some(RunOnce)`; however many were
///      missed, the plan runs once.
///    - [`Skip`](crate::Missed::Skip): queue no load, but never skip silently: insert
///      one run for the newest missed time with `missed = Some(Skip)` and at once
///      [`finish`](crate::Store::finish) it as `not-started` with the reason
///      `"missed while the service was down"` (the count, `d.missed.len()` and
///      [`Due::missed_capped`], belongs in the log line beside it).
/// 3. If [`Due::on_time`] is set, queue a run with that `scheduled_at` (after any missed
///    run, so the two are in time order).
/// 4. [`set_last_handled`](crate::Store::set_last_handled) to [`Due::handled_up_to`]
///    once the runs are stored: a crash between 3 and 4 makes the time due again, as
///    missed, after the restart, so a time is handled at least once, never lost.
/// 5. Sleep until [`Due::next`] (`None`: the schedule will not fire again, e.g. an
///    `At` that was handled, or it is paused).
///
/// # The cap
///
/// A per-second schedule after a month down has missed 2.6 million times. `due` lists
/// at most [`MISSED_CAP`] of them, the newest, and sets [`Due::missed_capped`] when
/// older ones exist; finding them costs `O(MISSED_CAP)` steps however long the outage
/// was.
pub fn due(schedule: &Schedule, now: DateTime<Utc>) -> Due {
    if schedule.paused {
        return Due::default();
    }
    let Ok(times) = schedule.when.compile() else {
        return Due::default();
    };
    let handled = schedule.last_handled.unwrap_or(schedule.created_at);
    let next = times.next_after(now.max(handled));

    // Walk back from now to bound the walk forward; the walk forward alone decides which
    // times count, so `due` and `next_after` always agree (also across DST overlaps).
    let (start, mut missed_capped) = match newest_times_back_to(&times, handled, now) {
        Some(oldest_beyond) => (oldest_beyond, true),
        None => (handled, false),
    };
    let mut missed = Vec::new();
    let mut on_time = None;
    let mut t = start;
    // A bound of its own in case the walk back and forward disagree.
    for _ in 0..MISSED_CAP + 3 {
        match times.next_after(t) {
            Some(time) if time <= now => {
                if now - time < ONE_SECOND {
                    on_time = Some(time);
                } else {
                    missed.push(time);
                }
                t = time;
            }
            _ => break,
        }
    }
    if missed.len() > MISSED_CAP {
        missed.drain(..missed.len() - MISSED_CAP);
        missed_capped = true;
    }
    Due {
        missed,
        missed_capped,
        on_time,
        next,
    }
}

/// Steps back from `now` over the times after `handled`; when there are more than
/// `MISSED_CAP + 1` of them (room for the on-time one), returns the oldest time stepped
/// on, which the walk forward then starts after.
fn newest_times_back_to(
    times: &CompiledWhen,
    handled: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut t = now + chrono::TimeDelta::nanoseconds(1);
    for _ in 0..MISSED_CAP + 2 {
        t = times.previous_before(t).filter(|&time| time > handled)?;
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Missed, Selector, When};

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn schedule(when: When, created_at: &str, last_handled: Option<&str>) -> Schedule {
        Schedule {
            name: "nightly".into(),
            plan_name: "flow-update".into(),
            plan_text: String::new(),
            agents: 1,
            selector: Selector::default(),
            when,
            missed: Missed::RunOnce,
            paused: false,
            created_at: utc(created_at),
            last_handled: last_handled.map(utc),
        }
    }

    #[test]
    fn nothing_due_before_the_first_time() {
        let s = schedule(
            When::cron("0 9 * * *", "UTC").unwrap(),
            "2025-06-01T08:00:00Z",
            None,
        );
        let d = due(&s, utc("2025-06-01T08:59:59Z"));
        assert!(d.is_empty());
        assert_eq!(d.next, Some(utc("2025-06-01T09:00:00Z")));
        assert_eq!(d.handled_up_to(), None);
    }

    #[test]
    fn a_time_within_the_last_second_is_on_time_and_older_ones_are_missed() {
        let s = schedule(
            When::cron("0 9 * * *", "UTC").unwrap(),
            "2025-06-01T08:00:00Z",
            None,
        );
        let d = due(&s, utc("2025-06-01T09:00:00.999Z"));
        assert_eq!(d.on_time, Some(utc("2025-06-01T09:00:00Z")));
        assert!(d.missed.is_empty());
        assert_eq!(d.next, Some(utc("2025-06-02T09:00:00Z")));

        // Down from 08:30 on the 1st until 09:00:01 on the 3rd.
        let d = due(&s, utc("2025-06-03T09:00:01Z"));
        assert_eq!(
            d.missed,
            [
                utc("2025-06-01T09:00:00Z"),
                utc("2025-06-02T09:00:00Z"),
                utc("2025-06-03T09:00:00Z")
            ]
        );
        assert_eq!(d.on_time, None);
        assert!(!d.missed_capped);
        assert_eq!(d.handled_up_to(), Some(utc("2025-06-03T09:00:00Z")));
    }

    #[test]
    fn last_handled_times_are_not_due_again() {
        let s = schedule(
            When::cron("0 9 * * *", "UTC").unwrap(),
            "2025-06-01T08:00:00Z",
            Some("2025-06-02T09:00:00Z"),
        );
        let d = due(&s, utc("2025-06-03T10:00:00Z"));
        assert_eq!(d.missed, [utc("2025-06-03T09:00:00Z")]);
        let paused = Schedule { paused: true, ..s };
        assert_eq!(due(&paused, utc("2025-06-03T10:00:00Z")), Due::default());
    }

    #[test]
    fn a_long_outage_lists_only_the_newest_missed_times() {
        let s = schedule(
            When::cron("* * * * * *", "UTC").unwrap(),
            "2025-05-01T00:00:00Z",
            None,
        );
        // A month of per-second times (about 2.6 million).
        let now = utc("2025-06-01T00:00:00.5Z");
        let d = due(&s, now);
        assert_eq!(d.missed.len(), MISSED_CAP);
        assert!(d.missed_capped);
        assert_eq!(d.on_time, Some(utc("2025-06-01T00:00:00Z")));
        assert_eq!(d.missed.last(), Some(&utc("2025-05-31T23:59:59Z")));
        assert_eq!(d.missed[0], utc("2025-05-31T23:43:20Z"));
        assert!(d.missed.windows(2).all(|w| w[1] - w[0] == ONE_SECOND));
        assert_eq!(d.next, Some(utc("2025-06-01T00:00:01Z")));
    }

    #[test]
    fn the_cap_holds_exactly_at_its_edge() {
        let created = utc("2025-06-01T00:00:00Z");
        let s = schedule(
            When::cron("* * * * * *", "UTC").unwrap(),
            "2025-06-01T00:00:00Z",
            None,
        );
        let cap = i64::try_from(MISSED_CAP).unwrap();
        // Exactly MISSED_CAP missed times plus one on time: nothing left out.
        let now = created + chrono::TimeDelta::seconds(cap + 1);
        let d = due(&s, now);
        assert_eq!((d.missed.len(), d.missed_capped), (MISSED_CAP, false));
        assert_eq!(d.on_time, Some(now));
        // One more: the oldest is left out and said so.
        let d = due(&s, now + ONE_SECOND);
        assert_eq!((d.missed.len(), d.missed_capped), (MISSED_CAP, true));
        assert_eq!(d.missed[0], created + chrono::TimeDelta::seconds(2));
    }

    #[test]
    fn an_at_schedule_is_due_once() {
        let s = schedule(
            When::at("2025-06-01T09:00:00Z").unwrap(),
            "2025-06-01T08:00:00Z",
            None,
        );
        let d = due(&s, utc("2025-06-01T12:00:00Z"));
        assert_eq!(d.missed, [utc("2025-06-01T09:00:00Z")]);
        assert_eq!(d.next, None);
        let handled = Schedule {
            last_handled: d.handled_up_to(),
            ..s
        };
        assert_eq!(due(&handled, utc("2025-06-01T12:00:00Z")), Due::default());
    }

    #[test]
    fn missed_times_across_a_dst_change_follow_local_time() {
        let s = schedule(
            When::cron("0 9 * * *", "Europe/Dublin").unwrap(),
            "2025-03-29T00:00:00Z",
            None,
        );
        let d = due(&s, utc("2025-03-31T12:00:00Z"));
        assert_eq!(
            d.missed,
            [
                utc("2025-03-29T09:00:00Z"),
                utc("2025-03-30T08:00:00Z"),
                utc("2025-03-31T08:00:00Z")
            ]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// `due` lists what stepping with `next_after` from the last handled time finds,
        /// cut to the newest `MISSED_CAP` missed times, in every zone (Lord Howe's DST
        /// moves by half an hour).
        #[test]
        fn due_agrees_with_stepping_next_after(
            expr in proptest::sample::select(vec![
                "*/7 * * * * *", "0 */5 * * * *", "30 1 * * *", "0 2 * * SUN", "*/13 * * * *",
            ]),
            tz in proptest::sample::select(vec![
                "UTC", "Europe/Dublin", "America/New_York", "Australia/Lord_Howe",
            ]),
            handled_offset in 0i64..366 * 86_400,
            window in 0i64..6 * 3_600,
            now_nanos in 0i64..1_000_000_000,
        ) {
            let year = utc("2025-01-01T00:00:00Z");
            let handled = year + chrono::TimeDelta::seconds(handled_offset);
            let now = handled
                + chrono::TimeDelta::seconds(window)
                + chrono::TimeDelta::nanoseconds(now_nanos);
            let when = When::cron(expr, tz).unwrap();
            let s = schedule(when.clone(), "2024-12-31T00:00:00Z", Some(&handled.to_rfc3339()));
            let d = due(&s, now);

            let mut all = Vec::new();
            let mut t = handled;
            while let Some(next) = when.next_after(t).filter(|&n| n <= now) {
                all.push(next);
                t = next;
            }
            let on_time = all.last().copied().filter(|&n| now - n < ONE_SECOND);
            if on_time.is_some() {
                all.pop();
            }
            let capped = all.len() > MISSED_CAP;
            let newest = all.split_off(all.len().saturating_sub(MISSED_CAP));
            proptest::prop_assert_eq!(d.missed, newest);
            proptest::prop_assert_eq!(d.missed_capped, capped);
            proptest::prop_assert_eq!(d.on_time, on_time);
            proptest::prop_assert_eq!(d.next, when.next_after(now));
        }
    }
}

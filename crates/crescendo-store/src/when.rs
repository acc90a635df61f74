//! [`When`]: the times a schedule fires, and stepping along them. Pure, no I/O.

use std::fmt;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::errors::CronError;
use croner::parser::{CronParser, Seconds, Year};

/// When a schedule fires.
///
/// A cron expression is evaluated in its IANA time zone by `croner` over `chrono-tz`, so
/// `0 9 * * *` in Europe/Dublin is 09:00 Irish time on both sides of a DST change. At a
/// spring-forward gap a fixed time that does not exist that day (01:30 when clocks jump
/// from 01:00 to 02:00) fires at the first instant after the gap; at a fall-back overlap
/// it fires once, at the earlier of the two instants, while an expression that repeats
/// within the hour (`*/15 * * * *`) fires in both. Cron times are whole seconds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum When {
    /// Every time the cron expression matches, read in the time zone `tz`.
    ///
    /// `expr` has 5 fields (`minute hour day-of-month month day-of-week`) or 6 with
    /// seconds first (`0 0 9 * * MON-FRI`), or is a nickname such as `@daily`. Build it
    /// with [`When::cron`], which checks it.
    Cron { expr: String, tz: Tz },
    /// Once, at this time.
    At(DateTime<Utc>),
}

/// Why a schedule's timing was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "cron expression {expr:?} has {fields} fields: expected 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)"
    )]
    CronFieldCount { expr: String, fields: usize },
    #[error("invalid cron expression {expr:?}")]
    Cron {
        expr: String,
        #[source]
        source: CronError,
    },
    #[error("unknown time zone {name:?}: expected an IANA name such as Europe/Dublin or UTC")]
    UnknownTimeZone { name: String },
    #[error("invalid time {text:?}: expected RFC 3339 such as 2025-06-01T09:00:00Z")]
    At {
        text: String,
        #[source]
        source: chrono::ParseError,
    },
}

impl When {
    /// A cron schedule: `expr` with 5 fields or 6 (seconds first), in the IANA zone `tz_name`.
    pub fn cron(expr: &str, tz_name: &str) -> Result<When, ScheduleError> {
        let tz = tz_name
            .trim()
            .parse::<Tz>()
            .map_err(|_| ScheduleError::UnknownTimeZone {
                name: tz_name.to_owned(),
            })?;
        let expr = expr.trim();
        parse_cron(expr)?;
        Ok(When::Cron {
            expr: expr.to_owned(),
            tz,
        })
    }

    /// A one-off schedule at an RFC 3339 time (any offset; kept in UTC).
    pub fn at(rfc3339: &str) -> Result<When, ScheduleError> {
        DateTime::parse_from_rfc3339(rfc3339.trim())
            .map(|t| When::At(t.with_timezone(&Utc)))
            .map_err(|source| ScheduleError::At {
                text: rfc3339.to_owned(),
                source,
            })
    }

    /// Checks a `When` built by hand (not through [`When::cron`]).
    pub fn check(&self) -> Result<(), ScheduleError> {
        self.compile().map(drop)
    }

    /// The first time strictly after `t`, or `None` when there is none: an `At` whose time
    /// is not after `t`, or a cron expression that matches no time in the next year of
    /// its search (such as `0 0 30 2 *`) or fails [`When::check`].
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.compile().ok()?.next_after(t)
    }

    pub(crate) fn compile(&self) -> Result<CompiledWhen, ScheduleError> {
        Ok(match self {
            When::Cron { expr, tz } => CompiledWhen::Cron {
                cron: Box::new(parse_cron(expr)?),
                tz: *tz,
            },
            When::At(at) => CompiledWhen::At(*at),
        })
    }
}

impl fmt::Display for When {
    /// `cron "0 9 * * MON-FRI" in Europe/Dublin` or `at 2025-06-01T09:00:00+00:00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            When::Cron { expr, tz } => write!(f, "cron {expr:?} in {}", tz.name()),
            When::At(at) => write!(f, "at {}", at.to_rfc3339()),
        }
    }
}

/// 5 or 6 fields (seconds first, optional); a year field is refused.
fn parse_cron(expr: &str) -> Result<Cron, ScheduleError> {
    let fields = expr.split_whitespace().count();
    let nickname = expr.starts_with('@') && fields == 1;
    if !nickname && !(5..=6).contains(&fields) {
        return Err(ScheduleError::CronFieldCount {
            expr: expr.to_owned(),
            fields,
        });
    }
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|source| ScheduleError::Cron {
            expr: expr.to_owned(),
            source,
        })
}

/// A [`When`] with its cron expression parsed once, for stepping through many times.
#[derive(Debug, Clone)]
pub(crate) enum CompiledWhen {
    // Boxed: a parsed pattern is some 300 bytes, an `At` 12.
    Cron { cron: Box<Cron>, tz: Tz },
    At(DateTime<Utc>),
}

impl CompiledWhen {
    /// The first time strictly after `t`.
    pub(crate) fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let next = match self {
            CompiledWhen::At(at) => *at,
            // Cron times are whole seconds, so the first one after `t`'s whole second is
            // also the first one after `t`.
            CompiledWhen::Cron { cron, tz } => cron
                .find_next_occurrence(&t.trunc_subsecs(0).with_timezone(tz), false)
                .ok()?
                .with_timezone(&Utc),
        };
        (next > t).then_some(next)
    }

    /// The last time strictly before `t`.
    pub(crate) fn previous_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let previous = match self {
            CompiledWhen::At(at) => *at,
            CompiledWhen::Cron { cron, tz } => {
                let whole = t.trunc_subsecs(0);
                // A whole second below `t` may itself be the answer.
                let inclusive = whole < t;
                cron.find_previous_occurrence(&whole.with_timezone(tz), inclusive)
                    .ok()?
                    .with_timezone(&Utc)
            }
        };
        (previous < t).then_some(previous)
    }
}

/// One second, the smallest step of a cron schedule.
pub(crate) const ONE_SECOND: TimeDelta = TimeDelta::seconds(1);

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn times(when: &When, from: &str, n: usize) -> Vec<String> {
        let mut t = utc(from);
        (0..n)
            .map(|_| {
                t = when.next_after(t).unwrap();
                t.to_rfc3339()
            })
            .collect()
    }

    #[test]
    fn six_fields_put_seconds_first() {
        let when = When::cron("0 0 9 * * MON-FRI", "UTC").unwrap();
        // 2025-06-06 is a Friday.
        assert_eq!(
            times(&when, "2025-06-06T08:00:00Z", 2),
            ["2025-06-06T09:00:00+00:00", "2025-06-09T09:00:00+00:00"]
        );
        let every_ten = When::cron("*/10 * * * * *", "UTC").unwrap();
        assert_eq!(
            times(&every_ten, "2025-06-06T08:00:00.5Z", 2),
            ["2025-06-06T08:00:10+00:00", "2025-06-06T08:00:20+00:00"]
        );
    }

    #[test]
    fn five_fields_are_minute_granular_and_strictly_after() {
        let when = When::cron("30 9 * * *", "UTC").unwrap();
        assert_eq!(
            times(&when, "2025-06-06T09:30:00Z", 2),
            ["2025-06-07T09:30:00+00:00", "2025-06-08T09:30:00+00:00"]
        );
        assert_eq!(
            when.next_after(utc("2025-06-06T09:29:59.999Z")),
            Some(utc("2025-06-06T09:30:00Z"))
        );
        assert!(When::cron("@daily", "UTC").is_ok());
    }

    #[test]
    fn a_zone_keeps_local_time_across_dst_changes() {
        // Ireland: clocks went forward on 2025-03-30 and back on 2025-10-26.
        let nine = When::cron("0 9 * * *", "Europe/Dublin").unwrap();
        assert_eq!(
            times(&nine, "2025-03-29T00:00:00Z", 3),
            [
                "2025-03-29T09:00:00+00:00",
                "2025-03-30T08:00:00+00:00",
                "2025-03-31T08:00:00+00:00"
            ]
        );
        assert_eq!(
            times(&nine, "2025-10-25T00:00:00Z", 2),
            ["2025-10-25T08:00:00+00:00", "2025-10-26T09:00:00+00:00"]
        );
        // 01:30 does not exist on 2025-03-30: it fires when the clocks reach 02:00 IST.
        let half_one = When::cron("30 1 * * *", "Europe/Dublin").unwrap();
        assert_eq!(
            times(&half_one, "2025-03-29T12:00:00Z", 2),
            ["2025-03-30T01:00:00+00:00", "2025-03-31T00:30:00+00:00"]
        );
        // 01:30 happens twice on 2025-10-26: it fires once, at the first.
        assert_eq!(
            times(&half_one, "2025-10-25T12:00:00Z", 2),
            ["2025-10-26T00:30:00+00:00", "2025-10-27T01:30:00+00:00"]
        );
    }

    #[test]
    fn at_fires_once() {
        let when = When::at("2025-06-01T10:00:00+01:00").unwrap();
        assert_eq!(
            when,
            When::At(Utc.with_ymd_and_hms(2025, 6, 1, 9, 0, 0).unwrap())
        );
        assert_eq!(
            when.next_after(utc("2025-06-01T08:59:59Z")),
            Some(utc("2025-06-01T09:00:00Z"))
        );
        assert_eq!(when.next_after(utc("2025-06-01T09:00:00Z")), None);
        let err = When::at("tomorrow").unwrap_err().to_string();
        assert!(err.contains("expected RFC 3339"), "{err}");
    }

    #[test]
    fn bad_expressions_and_zones_are_refused_by_name() {
        let zone = When::cron("0 9 * * *", "Europe/Dublinn").unwrap_err();
        assert_eq!(
            zone.to_string(),
            "unknown time zone \"Europe/Dublinn\": expected an IANA name such as Europe/Dublin or UTC"
        );
        let fields = When::cron("0 9 * *", "UTC").unwrap_err();
        assert!(matches!(
            fields,
            ScheduleError::CronFieldCount { fields: 4, .. }
        ));
        assert!(matches!(
            When::cron("0 0 9 * * * 2030", "UTC").unwrap_err(),
            ScheduleError::CronFieldCount { fields: 7, .. }
        ));
        assert!(matches!(
            When::cron("61 9 * * *", "UTC").unwrap_err(),
            ScheduleError::Cron { .. }
        ));
        let hand_built = When::Cron {
            expr: "nonsense".into(),
            tz: Tz::UTC,
        };
        assert!(hand_built.check().is_err());
        assert_eq!(hand_built.next_after(utc("2025-01-01T00:00:00Z")), None);
    }

    #[test]
    fn previous_before_mirrors_next_after() {
        let compiled = When::cron("*/10 * * * * *", "UTC")
            .unwrap()
            .compile()
            .unwrap();
        let t = utc("2025-06-06T08:00:10Z");
        assert_eq!(
            compiled.previous_before(t),
            Some(utc("2025-06-06T08:00:00Z"))
        );
        assert_eq!(
            compiled.previous_before(utc("2025-06-06T08:00:10.1Z")),
            Some(t)
        );
        let at = CompiledWhen::At(t);
        assert_eq!(at.previous_before(t), None);
        assert_eq!(at.previous_before(t + ONE_SECOND), Some(t));
    }
}

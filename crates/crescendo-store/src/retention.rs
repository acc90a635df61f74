//! Retention: which finished runs to forget, and forgetting them.
//!
//! The store deletes rows only; the caller removes each returned run's folder
//! `DIR/runs/<id>/`.

use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::params;

use crate::columns::{get_opt_time, get_time};
use crate::error::{StoreError, sql};
use crate::runs_table::UNFINISHED_SQL;
use crate::store::Store;

/// How much run history to keep. `None` is no limit; both `None` keeps everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep the newest this many finished runs (by queue time), over all plans.
    pub keep_runs: Option<usize>,
    /// Keep finished runs that ended within this many days before `now`.
    pub keep_days: Option<u32>,
}

/// A finished run as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FinishedRun {
    id: String,
    ended_at: DateTime<Utc>,
    baseline: bool,
}

impl Store {
    /// Deletes the finished runs beyond either limit and returns their ids (oldest
    /// first). Unfinished runs and plans' baselines are never deleted; a baseline still
    /// counts towards `keep_runs`.
    pub fn prune(
        &self,
        retention: Retention,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let op = "prune runs";
        let tx = self.conn.unchecked_transaction().map_err(sql(op))?;
        let finished = tx
            .prepare(&format!(
                "SELECT r.id, r.ended_at, r.queued_at, \
                 EXISTS (SELECT 1 FROM baselines b WHERE b.run_id = r.id) AS is_baseline \
                 FROM runs r WHERE r.state NOT IN {UNFINISHED_SQL} \
                 ORDER BY r.queued_at DESC, r.rowid DESC"
            ))
            .and_then(|mut stmt| {
                stmt.query_map([], |row| {
                    Ok(FinishedRun {
                        id: row.get("id")?,
                        ended_at: match get_opt_time(row, "ended_at")? {
                            Some(t) => t,
                            None => get_time(row, "queued_at")?,
                        },
                        baseline: row.get("is_baseline")?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(sql(op))?;
        let mut doomed = beyond_limits(&finished, retention, now);
        doomed.reverse();
        for id in &doomed {
            tx.execute("DELETE FROM runs WHERE id = ?1", params![id])
                .map_err(sql(op))?;
        }
        tx.commit().map_err(sql(op))?;
        Ok(doomed)
    }
}

/// The ids of `newest_first` runs beyond either limit, in the same order, baselines left out.
fn beyond_limits(
    newest_first: &[FinishedRun],
    retention: Retention,
    now: DateTime<Utc>,
) -> Vec<String> {
    let oldest_kept_end = retention
        .keep_days
        .map(|days| now - TimeDelta::days(i64::from(days)));
    newest_first
        .iter()
        .enumerate()
        .filter(|(position, run)| {
            let too_many = retention.keep_runs.is_some_and(|keep| *position >= keep);
            let too_old = oldest_kept_end.is_some_and(|oldest| run.ended_at < oldest);
            !run.baseline && (too_many || too_old)
        })
        .map(|(_, run)| run.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, days_ago: i64, baseline: bool, now: DateTime<Utc>) -> FinishedRun {
        FinishedRun {
            id: id.into(),
            ended_at: now - TimeDelta::days(days_ago),
            baseline,
        }
    }

    #[test]
    fn either_limit_condemns_a_run_but_never_a_baseline() {
        let now = Utc::now();
        let runs = [
            run("a", 0, false, now),
            run("b", 1, false, now),
            run("c", 2, true, now),
            run("d", 3, false, now),
            run("e", 40, false, now),
        ];
        let only_count = Retention {
            keep_runs: Some(2),
            keep_days: None,
        };
        assert_eq!(beyond_limits(&runs, only_count, now), ["d", "e"]);
        let only_days = Retention {
            keep_runs: None,
            keep_days: Some(30),
        };
        assert_eq!(beyond_limits(&runs, only_days, now), ["e"]);
        let both = Retention {
            keep_runs: Some(4),
            keep_days: Some(2),
        };
        assert_eq!(beyond_limits(&runs, both, now), ["d", "e"]);
        assert!(beyond_limits(&runs, Retention::default(), now).is_empty());
        let none = Retention {
            keep_runs: Some(0),
            keep_days: None,
        };
        assert_eq!(beyond_limits(&runs, none, now), ["a", "b", "d", "e"]);
    }
}

//! The JSON form of the service's records: what the admin service replies and what
//! `--output json` prints. Documented in the README ("Scheduling rehearsals").

use chrono::{DateTime, SecondsFormat, Utc};
use crescendo_store::{Origin, RunRecord, Schedule, When};
use serde_json::{Value, json};

use crate::compare::{Comparison, Direction};

fn time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| {
        Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true))
    })
}

/// A run record. `plan_text` only with `full` (`runs show`).
pub(crate) fn run_json(r: &RunRecord, full: bool) -> Value {
    let origin = match &r.origin {
        Origin::Submit => json!({"kind": "submit"}),
        Origin::Schedule { name } => json!({"kind": "schedule", "name": name}),
        Origin::Rerun { of } => json!({"kind": "rerun", "of": of}),
    };
    let comparison = r.comparison.as_ref().map(|c| {
        json!({
            "outcome": c.outcome.as_str(),
            "baseline_run": c.baseline_run,
            "details": c.details,
        })
    });
    let mut v = json!({
        "id": r.id,
        "plan_name": r.plan_name,
        "state": r.state.as_str(),
        "origin": origin,
        "agents_wanted": r.agents_wanted,
        "selector": r.selector.to_string(),
        "agents": r.agents,
        "scheduled_at": time(r.scheduled_at),
        "queued_at": time(Some(r.queued_at)),
        "started_at": time(r.started_at),
        "ended_at": time(r.ended_at),
        "missed": r.missed.map(|m| m.as_str()),
        "reason": r.reason,
        "exit_code": r.exit_code,
        "checkpointed_at": time(r.checkpointed_at),
        "baseline": r.baseline,
        "comparison": comparison,
        "summary": r.summary,
    });
    if full {
        v["plan_text"] = Value::String(r.plan_text.clone());
    }
    v
}

/// A schedule (without its plan text).
pub(crate) fn schedule_json(s: &Schedule, now: DateTime<Utc>) -> Value {
    let when = match &s.when {
        When::Cron { expr, tz } => json!({"cron": expr, "tz": tz.name()}),
        When::At(at) => json!({"at": time(Some(*at))}),
    };
    let next = if s.paused {
        None
    } else {
        s.when.next_after(s.last_handled.unwrap_or(now).max(now))
    };
    json!({
        "name": s.name,
        "plan_name": s.plan_name,
        "agents": s.agents,
        "selector": s.selector.to_string(),
        "when": when,
        "missed": s.missed.as_str(),
        "paused": s.paused,
        "created_at": time(Some(s.created_at)),
        "last_handled": time(s.last_handled),
        "next": time(next),
    })
}

/// A baseline comparison's rows, and the metrics that moved past the tolerance.
pub(crate) fn comparison_json(c: &Comparison) -> Value {
    let rows: Vec<Value> = c
        .rows
        .iter()
        .map(|r| {
            json!({
                "metric": r.name,
                "unit": r.unit,
                "baseline": r.a,
                "run": r.b,
                "change_pct": r.change_pct(),
                "judged": r.direction != Direction::Info,
                "regressed": r.regressed,
            })
        })
        .collect();
    json!({
        "tolerance": c.tolerance,
        "regressed": c.regressions(),
        "rows": rows,
    })
}

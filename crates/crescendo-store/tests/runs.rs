//! Runs: round trips, state changes, listing, interruption.

mod common;

use common::{new_run, t};
use crescendo_store::{
    Comparison, Missed, NewRun, Origin, Outcome, RunFilter, RunState, Selector, Store, StoreError,
};
use serde_json::json;

fn store() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    (tmp, store)
}

#[test]
fn a_run_round_trips_every_field() {
    let (tmp, store) = store();
    let new = NewRun {
        plan_name: "flow-update".into(),
        plan_text: "name = \"flow-update\"\n# ünïcode, 'quotes'\n".into(),
        origin: Origin::Schedule {
            name: "nightly".into(),
        },
        agents: 3,
        selector: Selector(std::collections::BTreeMap::from([
            ("region".to_owned(), "eu-west-1".to_owned()),
            ("zone".to_owned(), "a".to_owned()),
        ])),
        scheduled_at: Some(t(10) + chrono::TimeDelta::nanoseconds(123_456_789)),
        missed: Some(Missed::RunOnce),
    };
    let before = chrono::Utc::now();
    let queued = store.insert_run(&new).unwrap();
    assert_eq!(queued.id.len(), 12);
    assert!(
        queued
            .id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(queued.state, RunState::Queued);
    assert!(queued.queued_at >= before && queued.queued_at <= chrono::Utc::now());
    assert_eq!(
        (
            queued.agents_wanted,
            &queued.selector,
            queued.scheduled_at,
            queued.missed
        ),
        (3, &new.selector, new.scheduled_at, new.missed)
    );
    assert_eq!(queued.origin, new.origin);

    let agents = vec!["agent-b".to_string(), "agent-a".to_string()];
    store
        .set_state(&queued.id, RunState::WaitingForAgents)
        .unwrap();
    store.mark_started(&queued.id, &agents, t(20)).unwrap();
    store
        .checkpoint(&queued.id, &json!({"requests": 10}), t(25))
        .unwrap();
    let summary = json!({"requests": 100, "p99_ms": 12.5, "thresholds": [true, false]});
    store
        .finish(
            &queued.id,
            RunState::Failed,
            Some("p99 > 10ms"),
            Some(&summary),
            Some(2),
            t(30),
        )
        .unwrap();
    let comparison = Comparison {
        outcome: Outcome::Regressed,
        baseline_run: "0123456789ab".into(),
        details: json!({"p99_ms": {"baseline": 8.0, "run": 12.5}}),
    };
    store.set_comparison(&queued.id, &comparison).unwrap();

    drop(store);
    let store = Store::open(tmp.path()).unwrap();
    let run = store.run(&queued.id).unwrap().unwrap();
    assert_eq!(run.id, queued.id);
    assert_eq!(run.plan_name, new.plan_name);
    assert_eq!(run.plan_text, new.plan_text);
    assert_eq!(run.origin, new.origin);
    assert_eq!(run.agents_wanted, 3);
    assert_eq!(run.selector, new.selector);
    assert_eq!(run.state, RunState::Failed);
    assert_eq!(run.scheduled_at, new.scheduled_at);
    assert_eq!(run.queued_at, queued.queued_at);
    assert_eq!(run.started_at, Some(t(20)));
    assert_eq!(run.ended_at, Some(t(30)));
    assert_eq!(run.missed, Some(Missed::RunOnce));
    assert_eq!(run.agents, agents);
    assert_eq!(run.reason.as_deref(), Some("p99 > 10ms"));
    assert_eq!(run.summary, Some(summary));
    assert_eq!(run.exit_code, Some(2));
    assert_eq!(run.checkpointed_at, Some(t(25)));
    assert_eq!(run.comparison, Some(comparison));
    assert!(!run.baseline);
    assert!(run.is_finished());

    let rerun = store
        .insert_run(&NewRun {
            origin: Origin::Rerun { of: run.id.clone() },
            ..new_run("flow-update")
        })
        .unwrap();
    assert_eq!(rerun.origin, Origin::Rerun { of: run.id });
    assert_eq!(rerun.missed, None);
    assert!(rerun.agents.is_empty() && rerun.summary.is_none());
}

#[test]
fn finishing_twice_is_refused_and_keeps_the_first_verdict() {
    let (_tmp, store) = store();
    let id = store.insert_run(&new_run("p")).unwrap().id;
    store
        .finish(
            &id,
            RunState::Passed,
            None,
            Some(&json!({"ok": true})),
            Some(0),
            t(1),
        )
        .unwrap();
    let err = store
        .finish(&id, RunState::Failed, Some("late"), None, Some(1), t(2))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::AlreadyFinished {
                state: RunState::Passed,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("run {id} already finished as passed")
    );
    // No other change reaches a finished run either.
    assert!(matches!(
        store.checkpoint(&id, &json!({}), t(3)).unwrap_err(),
        StoreError::AlreadyFinished { .. }
    ));
    assert!(matches!(
        store.set_state(&id, RunState::Running).unwrap_err(),
        StoreError::AlreadyFinished { .. }
    ));
    let run = store.run(&id).unwrap().unwrap();
    assert_eq!(
        (run.state, run.exit_code, run.ended_at),
        (RunState::Passed, Some(0), Some(t(1)))
    );
    assert_eq!(run.summary, Some(json!({"ok": true})));
}

#[test]
fn wrong_states_and_unknown_ids_are_typed_errors() {
    let (_tmp, store) = store();
    let id = store.insert_run(&new_run("p")).unwrap().id;
    assert!(matches!(
        store.finish(&id, RunState::Running, None, None, None, t(1)),
        Err(StoreError::NotAFinalState {
            state: RunState::Running
        })
    ));
    assert!(matches!(
        store.set_state(&id, RunState::Passed),
        Err(StoreError::FinalStateNeedsFinish {
            state: RunState::Passed
        })
    ));
    let missing = "ffffffffffff";
    assert!(store.run(missing).unwrap().is_none());
    for err in [
        store.set_state(missing, RunState::Running).unwrap_err(),
        store.mark_started(missing, &[], t(1)).unwrap_err(),
        store.checkpoint(missing, &json!({}), t(1)).unwrap_err(),
        store
            .finish(missing, RunState::Error, None, None, None, t(1))
            .unwrap_err(),
        store
            .set_comparison(
                missing,
                &Comparison {
                    outcome: Outcome::Held,
                    baseline_run: id.clone(),
                    details: json!(null),
                },
            )
            .unwrap_err(),
    ] {
        assert!(
            matches!(&err, StoreError::RunNotFound { id } if id == missing),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "no run \"ffffffffffff\"");
    }
}

#[test]
fn finish_without_a_summary_keeps_the_last_checkpoint() {
    let (_tmp, store) = store();
    let id = store.insert_run(&new_run("p")).unwrap().id;
    store.mark_started(&id, &["a".into()], t(1)).unwrap();
    store.checkpoint(&id, &json!({"n": 1}), t(6)).unwrap();
    store.checkpoint(&id, &json!({"n": 2}), t(11)).unwrap();
    let running = store.run(&id).unwrap().unwrap();
    assert_eq!(
        (running.summary, running.checkpointed_at),
        (Some(json!({"n": 2})), Some(t(11)))
    );
    store
        .finish(
            &id,
            RunState::Cancelled,
            Some("cancelled by alice"),
            None,
            None,
            t(12),
        )
        .unwrap();
    let run = store.run(&id).unwrap().unwrap();
    assert_eq!(run.summary, Some(json!({"n": 2})));
    assert_eq!(run.reason.as_deref(), Some("cancelled by alice"));
}

#[test]
fn list_runs_filters_and_puts_the_newest_first() {
    let (_tmp, store) = store();
    let a1 = store.insert_run(&new_run("a")).unwrap().id;
    let b1 = store.insert_run(&new_run("b")).unwrap().id;
    let a2 = store.insert_run(&new_run("a")).unwrap().id;
    let a3 = store.insert_run(&new_run("a")).unwrap().id;
    store
        .finish(&a2, RunState::Passed, None, None, Some(0), t(1))
        .unwrap();

    let ids = |filter: RunFilter| -> Vec<String> {
        store
            .list_runs(&filter)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(ids(RunFilter::default()), [&*a3, &*a2, &*b1, &*a1]);
    let plan_a = RunFilter {
        plan_name: Some("a".into()),
        ..RunFilter::default()
    };
    assert_eq!(ids(plan_a.clone()), [&*a3, &*a2, &*a1]);
    assert_eq!(
        ids(RunFilter {
            limit: 2,
            ..plan_a.clone()
        }),
        [&*a3, &*a2]
    );
    assert_eq!(
        ids(RunFilter {
            state: Some(RunState::Queued),
            ..plan_a
        }),
        [&*a3, &*a1]
    );
    assert_eq!(
        ids(RunFilter {
            state: Some(RunState::Passed),
            ..RunFilter::default()
        }),
        [&*a2]
    );
    assert!(
        ids(RunFilter {
            limit: 0,
            ..RunFilter::default()
        })
        .is_empty()
    );

    let trend: Vec<_> = store
        .runs_of_plan("a", 2)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(trend, [&*a2, &*a3]);
    assert_eq!(store.runs_of_plan("a", 10).unwrap().len(), 3);
    assert!(store.runs_of_plan("zzz", 10).unwrap().is_empty());
}

#[test]
fn interrupt_unfinished_marks_every_unfinished_run_and_keeps_its_checkpoint() {
    let (_tmp, store) = store();
    let queued = store.insert_run(&new_run("p")).unwrap().id;
    let waiting = store.insert_run(&new_run("p")).unwrap().id;
    store
        .set_state(&waiting, RunState::WaitingForAgents)
        .unwrap();
    let running = store.insert_run(&new_run("p")).unwrap().id;
    store.mark_started(&running, &["a".into()], t(1)).unwrap();
    store
        .checkpoint(&running, &json!({"requests": 42}), t(6))
        .unwrap();
    let done = store.insert_run(&new_run("p")).unwrap().id;
    store
        .finish(&done, RunState::Passed, None, None, Some(0), t(2))
        .unwrap();

    let reason = "the service stopped while it was unfinished";
    let ids = store.interrupt_unfinished(reason, t(100)).unwrap();
    assert_eq!(ids, [&*queued, &*waiting, &*running]);
    for id in &ids {
        let run = store.run(id).unwrap().unwrap();
        assert_eq!(run.state, RunState::Interrupted);
        assert_eq!(run.reason.as_deref(), Some(reason));
        assert_eq!(run.ended_at, Some(t(100)));
    }
    let running = store.run(&running).unwrap().unwrap();
    assert_eq!(running.summary, Some(json!({"requests": 42})));
    assert_eq!(store.run(&done).unwrap().unwrap().state, RunState::Passed);
    assert!(
        store
            .interrupt_unfinished(reason, t(200))
            .unwrap()
            .is_empty()
    );
}

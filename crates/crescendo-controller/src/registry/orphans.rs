//! Agents still part of a run this registry does not know (the controller restarted
//! under them): told to stop, their snapshots acknowledged, idle once they say
//! `Finished`.

use super::Known;
use crate::messages::{AgentTx, FromAgent, Stop, ToAgent};

/// An agent came back still part of `run_id`, which this registry does not know (the
/// controller restarted): tell it to stop its load. Returns the run to wait out.
pub(super) fn stop_orphan(agent: &str, run_id: &str, tx: &AgentTx) -> String {
    tracing::warn!(
        agent,
        run_id,
        "agent is still part of a run this controller does not know: stopping it"
    );
    let stop = ToAgent::Stop(Stop {
        run_id: run_id.to_owned(),
        reason: "the controller restarted and no longer knows this run".to_owned(),
        release: false,
    });
    if tx.try_send(stop).is_err() {
        tracing::warn!(
            agent,
            "could not queue the stop; the agent's stream is full"
        );
    }
    run_id.to_owned()
}

/// A message of an orphaned run: its snapshots are acknowledged (nothing merges them)
/// so the agent does not keep them; its `Finished` makes the agent idle.
pub(super) fn drain_orphan(known: &mut Known, agent: &str, message: FromAgent) {
    let Some(tx) = &known.tx else {
        return;
    };
    match message {
        FromAgent::Snapshot(s) => {
            let _ = tx.try_send(ToAgent::Ack {
                run_id: s.run_id,
                seq: s.seq,
            });
        }
        FromAgent::Rejected { run_id, seq, .. } => {
            let _ = tx.try_send(ToAgent::Ack { run_id, seq });
        }
        FromAgent::Finished(f) => {
            tracing::info!(agent, run_id = %f.run_id, "the old run stopped: agent idle");
            known.orphan = None;
        }
        _ => {}
    }
}

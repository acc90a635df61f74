//! The session's answers to what the controller says: an assignment is prepared (or
//! refused when busy), data rows are spooled, `Start` starts the prepared run,
//! `Adjust` reaches the run's pacing, `Ack` releases a kept snapshot, `Stop` stops
//! the load (and may release the agent).

use crescendo_proto::v1 as pb;
use tokio::sync::mpsc;

use super::{RunState, Session, message_of};
use crate::messages::{Finished, FromController, ToController};
use crate::prepare::prepare_run;
use crate::run::start_run;
use crate::wire::WireError;

impl Session {
    pub(super) async fn handle(
        &mut self,
        message: FromController,
        tx: &mpsc::Sender<pb::AgentMessage>,
    ) {
        match message {
            FromController::Welcome { controller_version } => {
                tracing::info!(controller = %controller_version, "attached");
            }
            FromController::Assign(assign) => {
                if let Some(busy) = self.busy(&assign.run_id) {
                    let _ = tx.send(message_of(ToController::Finished(busy))).await;
                    return;
                }
                let run_id = assign.run_id.clone();
                match prepare_run(*assign, &self.config.id) {
                    Ok(prepared) => {
                        self.run_id = run_id.clone();
                        self.unacked.clear();
                        self.finished = None;
                        // With streamed rows, Ready waits for the last DataChunk.
                        let ready = !prepared.awaiting_data();
                        self.run = RunState::Prepared(Box::new(prepared));
                        if ready {
                            let _ = tx.send(message_of(ToController::Ready { run_id })).await;
                        }
                    }
                    Err(error) => {
                        let failed = Finished::failed(run_id, 0, &error);
                        self.fail_preparation(failed, tx).await;
                    }
                }
            }
            FromController::Data(chunk) if chunk.run_id == self.run_id => {
                let RunState::Prepared(prepared) = &mut self.run else {
                    return;
                };
                match prepared.receive(&chunk) {
                    Ok(false) => {}
                    Ok(true) => {
                        let run_id = self.run_id.clone();
                        let _ = tx.send(message_of(ToController::Ready { run_id })).await;
                    }
                    Err(error) => {
                        // Dropping the prepared run deletes its spool file.
                        self.run = RunState::Idle;
                        let failed = Finished::failed(self.run_id.clone(), 0, &error);
                        self.fail_preparation(failed, tx).await;
                    }
                }
            }
            FromController::Start { run_id, delay } if run_id == self.run_id => {
                if matches!(&self.run, RunState::Prepared(p) if p.awaiting_data()) {
                    tracing::warn!(run_id = %self.run_id, "start before the last data chunk: ignored");
                    return;
                }
                let run = std::mem::replace(&mut self.run, RunState::Idle);
                if let RunState::Prepared(prepared) = run {
                    tracing::info!(run_id = %self.run_id, ?delay, "starting");
                    let handle = start_run(
                        *prepared,
                        self.config.id.clone(),
                        delay,
                        self.outbox_tx.clone(),
                        // Not a child of the root token: on a signal the session stops
                        // the load itself, saying why (`stop_early`), before the run
                        // reports its `Finished`.
                        tokio_util::sync::CancellationToken::new(),
                        &self.tracker,
                    );
                    self.run = RunState::Started(handle);
                } else {
                    // A repeated start changes nothing.
                    self.run = run;
                }
            }
            FromController::Adjust(adjust) => {
                if let RunState::Started(handle) = &self.run
                    && handle.run_id == adjust.run_id
                {
                    handle.adjust(&adjust);
                }
            }
            FromController::Ack { run_id, seq } if run_id == self.run_id => {
                self.unacked.remove(&seq);
            }
            FromController::Reshare { run_id, share } if run_id == self.run_id => {
                if let RunState::Started(handle) = &self.run {
                    tracing::info!(run_id = %run_id, ?share, "taking a new share of the run");
                    handle.reshare(share);
                }
            }
            FromController::Stop(stop) => {
                if stop.run_id.is_empty() || stop.run_id == self.run_id {
                    tracing::info!(reason = %stop.reason, "stop");
                    match &self.run {
                        RunState::Started(handle) => handle.stop(),
                        RunState::Prepared(_) => self.run = RunState::Idle,
                        RunState::Idle => {}
                    }
                }
                self.release_requested |= stop.release;
                self.check_released();
            }
            _ => {}
        }
    }

    /// The answer to an assignment of run `run_id` that this agent cannot take now:
    /// it is busy with another run, or shutting down.
    fn busy(&self, run_id: &str) -> Option<Finished> {
        let error = if self.flush_until.is_some() {
            "agent shutting down".to_owned()
        } else if self.is_running() && run_id != self.run_id {
            format!("agent busy with run {}", self.run_id)
        } else {
            return None;
        };
        Some(Finished {
            run_id: run_id.to_owned(),
            last_seq: 0,
            error,
            stopped_early: String::new(),
        })
    }

    /// A controller message refused at the edge (an assignment without a valid share):
    /// the controller sees `Finished { error }` for its run.
    pub(super) async fn refuse(&self, refused: WireError, tx: &mpsc::Sender<pb::AgentMessage>) {
        let run_id = refused.run_id().to_owned();
        match self.busy(&run_id) {
            Some(busy) => {
                let _ = tx.send(message_of(ToController::Finished(busy))).await;
            }
            None => {
                let failed = Finished::failed(run_id, 0, &refused);
                self.fail_preparation(failed, tx).await;
            }
        }
    }

    /// Report a preparation that failed; the controller sees `Finished { error }`.
    async fn fail_preparation(&self, finished: Finished, tx: &mpsc::Sender<pb::AgentMessage>) {
        tracing::warn!(run_id = %finished.run_id, error = %finished.error, "run preparation failed");
        let _ = tx.send(message_of(ToController::Finished(finished))).await;
    }
}

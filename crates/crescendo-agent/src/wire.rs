//! Conversions between the wire's generated protobuf types and the agent's domain
//! types ([`crate::messages`]). With `session` this is the agent's gRPC edge: a
//! controller message that cannot be taken as sent fails here with a [`WireError`],
//! and the controller's numbers are bounded here (a start delay of at most a minute,
//! a pause of at most an hour).

use std::time::Duration;

use crescendo_metrics::{Counters, FailureDetail, FailureKind, Outcome, StepSnapshot, encode};
use crescendo_plan::Share;
use crescendo_proto::v1 as pb;
use pb::agent_message::Kind as Out;
use pb::controller_message::Kind as In;

use crate::messages::{
    Adjust, Assign, DataChunk, Finished, FromController, Opened, Quota, Snapshot, Stop, Throttle,
    ToController,
};

/// A controller message the agent cannot take as sent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum WireError {
    #[error("assignment without a share")]
    NoShare { run_id: String },
    #[error("bad share {index}/{count} (rate fraction {rate_fraction})")]
    BadShare {
        run_id: String,
        index: u32,
        count: u32,
        rate_fraction: f64,
    },
}

impl WireError {
    /// The run the refused message was about.
    pub(crate) fn run_id(&self) -> &str {
        match self {
            WireError::NoShare { run_id } | WireError::BadShare { run_id, .. } => run_id,
        }
    }
}

/// The longest start delay and scouting the agent takes, and the longest pause.
const MAX_START_DELAY: Duration = Duration::from_secs(60);
const MAX_SCOUT: Duration = Duration::from_secs(60);
const MAX_PAUSE: Duration = Duration::from_secs(3600);

/// A controller message in domain terms.
pub(crate) fn from_controller(kind: In) -> Result<FromController, WireError> {
    Ok(match kind {
        In::Welcome(w) => FromController::Welcome {
            controller_version: w.controller_version,
        },
        In::Assign(a) => FromController::Assign(Box::new(assign(a)?)),
        In::Data(d) => FromController::Data(DataChunk {
            run_id: d.run_id,
            rows_jsonl: d.rows_jsonl,
            rows: d.rows,
            last: d.last,
        }),
        In::Start(s) => FromController::Start {
            run_id: s.run_id,
            delay: Duration::from_millis(s.delay_ms).min(MAX_START_DELAY),
        },
        In::Adjust(a) => FromController::Adjust(Adjust {
            run_id: a.run_id,
            max_rate: a.max_rate_rps.filter(|r| r.is_finite() && *r >= 0.0),
            pause: Duration::from_millis(a.pause_ms).min(MAX_PAUSE),
            replace_pause: a.replace_pause,
            scout: Duration::from_millis(a.scout_ms).min(MAX_SCOUT),
        }),
        In::Ack(a) => FromController::Ack {
            run_id: a.run_id,
            seq: a.seq,
        },
        In::Heartbeat(_) => FromController::Heartbeat,
        In::Reshare(r) => FromController::Reshare {
            share: share(r.share, &r.run_id)?,
            run_id: r.run_id,
        },
        In::Stop(s) => FromController::Stop(Stop {
            run_id: s.run_id,
            reason: s.reason,
            release: s.release,
        }),
    })
}

fn assign(a: pb::Assign) -> Result<Assign, WireError> {
    Ok(Assign {
        share: share(a.share, &a.run_id)?,
        run_id: a.run_id,
        plan_toml: a.plan_toml,
        files: a.files.into_iter().collect(),
        data_streamed: a.data_streamed,
    })
}

/// A share as the controller sent it: present, its turn within its count, a rate
/// fraction in (0, 1].
fn share(share: Option<pb::Share>, run_id: &str) -> Result<Share, WireError> {
    let Some(share) = share else {
        return Err(WireError::NoShare {
            run_id: run_id.to_owned(),
        });
    };
    let fraction = share.rate_fraction;
    if share.count == 0
        || share.index >= share.count
        || !(fraction.is_finite() && fraction > 0.0 && fraction <= 1.0)
    {
        return Err(WireError::BadShare {
            run_id: run_id.to_owned(),
            index: share.index,
            count: share.count,
            rate_fraction: fraction,
        });
    }
    Ok(Share {
        index: share.index,
        count: share.count,
        rate_fraction: fraction,
        vus: share.vus,
        max_in_flight: share.max_in_flight.max(1),
    })
}

/// A message to the controller in wire terms.
pub(crate) fn to_controller(message: ToController) -> Out {
    match message {
        ToController::Ready { run_id } => Out::Ready(pb::Ready { run_id }),
        ToController::Snapshot(s) => Out::Snapshot(snapshot(*s)),
        ToController::Throttle(t) => Out::Throttle(throttle(t)),
        ToController::Quota(q) => Out::Quota(quota(q)),
        ToController::Opened(Opened {
            run_id,
            limit_key,
            at_ms,
        }) => Out::Opened(pb::Opened {
            run_id,
            limit_key,
            at_ms,
        }),
        ToController::Finished(f) => Out::Finished(finished(f)),
    }
}

fn finished(f: Finished) -> pb::Finished {
    pb::Finished {
        run_id: f.run_id,
        last_seq: f.last_seq,
        error: f.error,
        stopped_early: f.stopped_early,
    }
}

fn snapshot(s: Snapshot) -> pb::Snapshot {
    pb::Snapshot {
        run_id: s.run_id,
        seq: s.seq,
        start_ms: s.start_ms,
        end_ms: s.end_ms,
        steps: s.steps.iter().map(step).collect(),
        offered: s.offered,
        last: s.last,
        quota: s.quota.map(quota),
        send_lag: encode(s.send_lag.histogram()),
    }
}

fn quota(q: Quota) -> pb::Quota {
    pb::Quota {
        remaining: q.remaining,
        limit: q.limit,
        reset_s: q.reset.map(|d| d.as_secs_f64()),
        at_ms: q.at_ms,
        run_id: q.run_id,
        limit_key: q.limit_key,
    }
}

fn throttle(t: Throttle) -> pb::Throttle {
    pb::Throttle {
        run_id: t.run_id,
        limit_key: t.limit_key,
        status: u32::from(t.status),
        retry_after_s: t.retry_after.map(|d| d.as_secs_f64()),
        remaining: t.remaining,
        limit: t.limit,
        reset_s: t.reset.map(|d| d.as_secs_f64()),
        at_ms: t.at_ms,
        rate_rps: t.rate_rps,
    }
}

/// One step's interval as shipped: histograms as V2+deflate bytes.
fn step(step: &StepSnapshot) -> pb::StepSnapshot {
    pb::StepSnapshot {
        step: step.step.clone(),
        latency: encode(&step.stats.latency),
        service_time: encode(&step.stats.service_time),
        counters: Some(counters(&step.stats.counters)),
        statuses: step
            .stats
            .statuses
            .iter()
            .map(|(&k, &v)| (u32::from(k), v))
            .collect(),
        auxiliary: step.auxiliary,
        failures: step.stats.failures.iter().map(failure).collect(),
    }
}

fn failure((kind, detail): (&FailureKind, &FailureDetail)) -> pb::FailureKind {
    use pb::FailureOutcome as O;
    let outcome = match kind.outcome {
        Outcome::ClientError => O::ClientError,
        Outcome::ServerError => O::ServerError,
        Outcome::Timeout => O::Timeout,
        Outcome::ConnectError => O::ConnectError,
        Outcome::CheckFailed => O::CheckFailed,
        // Never in a table (see `crescendo_metrics::failures`).
        Outcome::Ok | Outcome::Throttled => O::Unspecified,
    };
    pb::FailureKind {
        outcome: outcome.into(),
        status: kind.status.map(u32::from),
        message: kind.message.clone(),
        count: detail.count,
        first_seen_unix_ms: detail.first_seen_ms,
        sample: detail.sample.clone(),
    }
}

fn counters(c: &Counters) -> pb::Counters {
    let Counters {
        requests,
        ok,
        throttled,
        client_errors,
        server_errors,
        timeouts,
        connect_errors,
        retries,
        dropped,
        missed,
        paused_ms,
        check_failed,
        auth_refreshes,
    } = *c;
    pb::Counters {
        requests,
        ok,
        throttled,
        client_errors,
        server_errors,
        timeouts,
        connect_errors,
        retries,
        dropped,
        missed,
        paused_ms,
        check_failed,
        auth_refreshes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assign(share: Option<pb::Share>) -> In {
        In::Assign(pb::Assign {
            run_id: "r".into(),
            share,
            ..pb::Assign::default()
        })
    }

    #[test]
    fn an_assignment_needs_a_valid_share() {
        let err = from_controller(assign(None)).unwrap_err();
        assert_eq!(
            (err.to_string().as_str(), err.run_id()),
            ("assignment without a share", "r")
        );
        let bad = pb::Share {
            index: 2,
            count: 2,
            rate_fraction: 0.5,
            ..pb::Share::default()
        };
        let err = from_controller(assign(Some(bad))).unwrap_err();
        assert_eq!(err.to_string(), "bad share 2/2 (rate fraction 0.5)");
        for fraction in [0.0, f64::NAN, 1.5] {
            let bad = pb::Share {
                index: 0,
                count: 2,
                rate_fraction: fraction,
                ..pb::Share::default()
            };
            assert!(from_controller(assign(Some(bad))).is_err(), "{fraction}");
        }
        let good = pb::Share {
            index: 1,
            count: 2,
            rate_fraction: 0.5,
            max_in_flight: 0,
            ..pb::Share::default()
        };
        let Ok(FromController::Assign(a)) = from_controller(assign(Some(good))) else {
            panic!("a valid share is taken");
        };
        assert_eq!(a.share.max_in_flight, 1, "at least one request in flight");
    }

    #[test]
    fn the_controller_numbers_are_bounded() {
        let adjust = In::Adjust(pb::Adjust {
            max_rate_rps: Some(f64::NAN),
            pause_ms: u64::MAX,
            scout_ms: u64::MAX,
            ..pb::Adjust::default()
        });
        let Ok(FromController::Adjust(a)) = from_controller(adjust) else {
            panic!("an adjust");
        };
        assert_eq!((a.max_rate, a.pause, a.scout), (None, MAX_PAUSE, MAX_SCOUT));
        let start = In::Start(pb::Start {
            run_id: "r".into(),
            delay_ms: u64::MAX,
        });
        assert!(matches!(
            from_controller(start),
            Ok(FromController::Start { delay, .. }) if delay == MAX_START_DELAY
        ));
    }
}

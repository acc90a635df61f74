//! Conversions between the wire's generated protobuf types and the controller's
//! domain types ([`crate::messages`]). With `server` (and the CLI's admin client) this
//! is the controller's gRPC edge: every check of what an agent sent that does not need
//! the run's state happens here, so a malformed message fails with a [`WireError`]
//! before anything is merged.

use std::time::Duration;

use crescendo_metrics::failures::{MAX_KINDS, MAX_MERGED_KINDS};
use crescendo_metrics::{
    Counters, FailureDetail, FailureKind, Failures, Outcome, SendLag, StepSnapshot, StepStats,
    decode,
};
use crescendo_proto::v1 as pb;
use pb::agent_message::Kind as Out;
use pb::controller_message::Kind as In;

use crate::error::WireError;
use crate::messages::{
    Adjust, AgentView, Assign, CancelView, DataChunk, Finished, FromAgent, Hello, Opened, Quota,
    Snapshot, StatusView, Stop, Throttle, ToAgent,
};

/// An agent's message in domain terms; a snapshot that cannot be decoded becomes
/// [`FromAgent::Rejected`].
pub(crate) fn from_agent(kind: Out) -> FromAgent {
    match kind {
        Out::Ready(r) => FromAgent::Ready { run_id: r.run_id },
        Out::Snapshot(s) => {
            let (run_id, seq) = (s.run_id.clone(), s.seq);
            match snapshot(s) {
                Ok(s) => FromAgent::Snapshot(Box::new(s)),
                Err(error) => FromAgent::Rejected { run_id, seq, error },
            }
        }
        Out::Throttle(t) => FromAgent::Throttle(throttle(t)),
        Out::Quota(q) => quota(q).map_or(FromAgent::Other, FromAgent::Quota),
        Out::Opened(o) => FromAgent::Opened(Opened {
            run_id: o.run_id,
            limit_key: o.limit_key,
        }),
        Out::Finished(f) => FromAgent::Finished(Finished {
            run_id: f.run_id,
            last_seq: f.last_seq,
            error: f.error,
            stopped_early: f.stopped_early,
        }),
        Out::Hello(_) | Out::Heartbeat(_) => FromAgent::Other,
    }
}

pub(crate) fn hello(h: pb::Hello) -> Hello {
    Hello {
        agent_id: h.agent_id,
        host: h.host,
        version: h.version,
        resume_run_id: h.resume_run_id,
        labels: h.labels.into_iter().collect(),
    }
}

/// Decode every histogram of a snapshot: all or nothing.
fn snapshot(s: pb::Snapshot) -> Result<Snapshot, WireError> {
    let steps = s
        .steps
        .into_iter()
        .map(step)
        .collect::<Result<Vec<_>, _>>()?;
    let send_lag = decode(&s.send_lag).map_err(|source| WireError::Histogram {
        step: "send_lag".to_owned(),
        source,
    })?;
    Ok(Snapshot {
        run_id: s.run_id,
        seq: s.seq,
        start_ms: s.start_ms,
        end_ms: s.end_ms,
        steps,
        offered: s.offered,
        quota: s.quota.and_then(quota),
        send_lag: SendLag::from_histogram(send_lag),
    })
}

fn step(s: pb::StepSnapshot) -> Result<StepSnapshot, WireError> {
    let histogram = |bytes: &[u8]| {
        decode(bytes).map_err(|source| WireError::Histogram {
            step: s.step.clone(),
            source,
        })
    };
    let latency = histogram(&s.latency)?;
    let service_time = histogram(&s.service_time)?;
    let statuses = s
        .statuses
        .iter()
        .map(|(&status, &count)| match u16::try_from(status) {
            Ok(code) if (100..=999).contains(&code) => Ok((code, count)),
            _ => Err(WireError::Status {
                step: s.step.clone(),
                status,
            }),
        })
        .collect::<Result<_, _>>()?;
    let failures = failures(&s.step, &s.failures)?;
    Ok(StepSnapshot {
        stats: StepStats {
            latency,
            service_time,
            counters: s.counters.as_ref().map(counters).unwrap_or_default(),
            statuses,
            failures,
        },
        step: s.step,
        auxiliary: s.auxiliary,
    })
}

/// Most failure kinds one step's snapshot may carry: an agent sends at most
/// `MAX_KINDS` plus one "other failures" per error outcome.
const MAX_WIRE_FAILURES: usize = MAX_KINDS + Outcome::ERRORS.len();

/// A step's failure table: too many kinds, an outcome that is no error or a status
/// that is no HTTP status refuse the snapshot; over-long messages and samples are cut
/// (`Failures::insert`), and the table is bounded like any merged one.
fn failures(step: &str, kinds: &[pb::FailureKind]) -> Result<Failures, WireError> {
    let refuse = |reason: String| WireError::Failures {
        step: step.to_owned(),
        reason,
    };
    if kinds.len() > MAX_WIRE_FAILURES {
        return Err(refuse(format!(
            "{} kinds, at most {MAX_WIRE_FAILURES}",
            kinds.len()
        )));
    }
    let mut table = Failures::default();
    for k in kinds {
        use pb::FailureOutcome as O;
        let outcome = match O::try_from(k.outcome) {
            Ok(O::ClientError) => Outcome::ClientError,
            Ok(O::ServerError) => Outcome::ServerError,
            Ok(O::Timeout) => Outcome::Timeout,
            Ok(O::ConnectError) => Outcome::ConnectError,
            Ok(O::CheckFailed) => Outcome::CheckFailed,
            Ok(O::Unspecified) | Err(_) => {
                return Err(refuse(format!("outcome {} is no error", k.outcome)));
            }
        };
        let status = match k.status.map(u16::try_from) {
            None => None,
            Some(Ok(code)) if (100..=999).contains(&code) => Some(code),
            Some(_) => return Err(refuse(format!("status {:?}", k.status))),
        };
        table.insert(
            FailureKind::new(outcome, status, &k.message),
            FailureDetail {
                count: k.count,
                first_seen_ms: k.first_seen_unix_ms,
                sample: k.sample.clone(),
            },
        );
    }
    table.bound(MAX_MERGED_KINDS);
    Ok(table)
}

fn counters(c: &pb::Counters) -> Counters {
    Counters {
        requests: c.requests,
        ok: c.ok,
        throttled: c.throttled,
        client_errors: c.client_errors,
        server_errors: c.server_errors,
        timeouts: c.timeouts,
        connect_errors: c.connect_errors,
        retries: c.retries,
        dropped: c.dropped,
        missed: c.missed,
        paused_ms: c.paused_ms,
        check_failed: c.check_failed,
        auth_refreshes: c.auth_refreshes,
    }
}

/// A finite, non-negative number, or nothing.
fn amount(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite() && *x >= 0.0)
}

fn seconds(v: Option<f64>) -> Option<Duration> {
    amount(v).and_then(|s| Duration::try_from_secs_f64(s).ok())
}

/// Quota headers; `None` when `remaining` is not a finite, non-negative number.
fn quota(q: pb::Quota) -> Option<Quota> {
    Some(Quota {
        remaining: amount(Some(q.remaining))?,
        limit: amount(q.limit),
        reset: seconds(q.reset_s),
        at_ms: q.at_ms,
        run_id: q.run_id,
        limit_key: q.limit_key,
    })
}

fn throttle(t: pb::Throttle) -> Throttle {
    Throttle {
        run_id: t.run_id,
        limit_key: t.limit_key,
        status: u16::try_from(t.status).unwrap_or(429),
        retry_after: seconds(t.retry_after_s),
        remaining: amount(t.remaining),
        limit: amount(t.limit),
        reset: seconds(t.reset_s),
        rate_rps: amount(Some(t.rate_rps)).unwrap_or(0.0),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A message to an agent in wire terms.
pub(crate) fn to_agent(message: ToAgent) -> pb::ControllerMessage {
    let kind = match message {
        ToAgent::Assign(a) => In::Assign(assign(*a)),
        ToAgent::Data(d) => In::Data(data(d)),
        ToAgent::Start { run_id, delay } => In::Start(pb::Start {
            run_id,
            delay_ms: millis(delay),
        }),
        ToAgent::Adjust(a) => In::Adjust(adjust(a)),
        ToAgent::Ack { run_id, seq } => In::Ack(pb::Ack { run_id, seq }),
        ToAgent::Stop(s) => In::Stop(stop(s)),
        ToAgent::Reshare { run_id, share } => In::Reshare(pb::Reshare {
            run_id,
            share: Some(share_to_pb(share)),
        }),
    };
    pb::ControllerMessage { kind: Some(kind) }
}

/// The controller's heartbeat (see `server::HEARTBEAT_INTERVAL`).
pub(crate) fn heartbeat() -> pb::ControllerMessage {
    pb::ControllerMessage {
        kind: Some(In::Heartbeat(pb::Heartbeat::default())),
    }
}

pub(crate) fn welcome(agent_id: String) -> pb::ControllerMessage {
    pb::ControllerMessage {
        kind: Some(In::Welcome(pb::Welcome {
            agent_id,
            controller_version: env!("CARGO_PKG_VERSION").to_owned(),
        })),
    }
}

fn assign(a: Assign) -> pb::Assign {
    pb::Assign {
        run_id: a.run_id,
        plan_toml: a.plan_toml,
        share: Some(share_to_pb(a.share)),
        files: a.files.into_iter().collect(),
        data_streamed: a.data_streamed,
    }
}

fn share_to_pb(s: crescendo_plan::Share) -> pb::Share {
    pb::Share {
        index: s.index,
        count: s.count,
        rate_fraction: s.rate_fraction,
        vus: s.vus,
        max_in_flight: s.max_in_flight,
    }
}

fn data(d: DataChunk) -> pb::DataChunk {
    pb::DataChunk {
        run_id: d.run_id,
        rows_jsonl: d.rows_jsonl,
        rows: d.rows,
        last: d.last,
    }
}

fn adjust(a: Adjust) -> pb::Adjust {
    pb::Adjust {
        run_id: a.run_id,
        max_rate_rps: a.max_rate_rps,
        pause_ms: millis(a.pause),
        reason: a.reason,
        replace_pause: a.replace_pause,
        scout_ms: millis(a.scout),
    }
}

fn stop(s: Stop) -> pb::Stop {
    pb::Stop {
        run_id: s.run_id,
        reason: s.reason,
        release: s.release,
    }
}

pub(crate) fn status_reply(s: StatusView) -> pb::StatusReply {
    pb::StatusReply {
        agents: s.agents.into_iter().map(agent_info).collect(),
        run_id: s.run.run_id,
        state: s.run.state.to_owned(),
        elapsed_s: s.run.elapsed_s,
        requests: s.run.requests,
    }
}

fn agent_info(a: AgentView) -> pb::AgentInfo {
    pb::AgentInfo {
        id: a.id,
        host: a.host,
        version: a.version,
        run_id: a.run_id,
        labels: a.labels.into_iter().collect(),
        silent_s: a.silent.as_secs_f64(),
    }
}

pub(crate) fn cancel_reply(c: CancelView) -> pb::CancelReply {
    pb::CancelReply {
        cancelled: c.cancelled,
        run_id: c.run_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_histogram_fails_at_the_edge_naming_the_step() {
        let snapshot = pb::Snapshot {
            seq: 1,
            steps: vec![pb::StepSnapshot {
                step: "update".into(),
                latency: vec![1, 2, 3, 4, 5, 6, 7, 8, 9],
                ..Default::default()
            }],
            ..Default::default()
        };
        let FromAgent::Rejected { seq: 1, error, .. } = from_agent(Out::Snapshot(snapshot)) else {
            panic!("a corrupt histogram must be rejected");
        };
        assert!(
            error.to_string().starts_with("step \"update\": "),
            "{error}"
        );
    }

    #[test]
    fn send_lags_travel_and_an_older_agent_sends_none() {
        let FromAgent::Snapshot(old) = from_agent(Out::Snapshot(pb::Snapshot::default())) else {
            panic!("a snapshot without send lags is an older agent's, not a bad one");
        };
        assert_eq!(old.send_lag.histogram().len(), 0);
        let mut lag = SendLag::default();
        lag.record(Duration::from_micros(42));
        let new = pb::Snapshot {
            send_lag: crescendo_metrics::encode(lag.histogram()),
            ..Default::default()
        };
        let FromAgent::Snapshot(new) = from_agent(Out::Snapshot(new)) else {
            panic!("a valid send-lag histogram must be taken");
        };
        assert_eq!(new.send_lag.summary().p50, 42);
        let bad = pb::Snapshot {
            send_lag: vec![1, 2, 3],
            ..Default::default()
        };
        assert!(matches!(
            from_agent(Out::Snapshot(bad)),
            FromAgent::Rejected { .. }
        ));
    }

    #[test]
    fn a_status_that_is_no_http_status_is_refused() {
        let snapshot = pb::Snapshot {
            steps: vec![pb::StepSnapshot {
                step: "s".into(),
                statuses: [(70_000, 1)].into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let rejected = from_agent(Out::Snapshot(snapshot));
        assert!(
            matches!(
                rejected,
                FromAgent::Rejected {
                    error: WireError::Status { status: 70_000, .. },
                    ..
                }
            ),
            "{rejected:?}"
        );
    }

    fn with_failures(failures: Vec<pb::FailureKind>) -> FromAgent {
        from_agent(Out::Snapshot(pb::Snapshot {
            steps: vec![pb::StepSnapshot {
                step: "s".into(),
                failures,
                ..Default::default()
            }],
            ..Default::default()
        }))
    }

    fn refused(n: u64) -> pb::FailureKind {
        pb::FailureKind {
            outcome: pb::FailureOutcome::ConnectError.into(),
            message: "connection refused".into(),
            count: n,
            first_seen_unix_ms: 1_700_000_000_000,
            sample: "x".repeat(1_000),
            ..Default::default()
        }
    }

    #[test]
    fn failure_tables_are_cut_to_their_limits_or_refused() {
        let long = pb::FailureKind {
            message: "m".repeat(1_000),
            outcome: pb::FailureOutcome::ClientError.into(),
            status: Some(404),
            ..refused(2)
        };
        let FromAgent::Snapshot(s) = with_failures(vec![refused(3), long, refused(4)]) else {
            panic!("a valid table is taken");
        };
        let table = &s.steps[0].stats.failures;
        assert_eq!(table.len(), 2);
        assert_eq!(table.count_of(Outcome::ConnectError), 7);
        assert!(
            table
                .iter()
                .all(|(k, d)| k.message.len() <= 200 && d.sample.len() <= 256)
        );
        let too_many = (0..30).map(|_| refused(1)).collect();
        let ok = pb::FailureKind {
            outcome: pb::FailureOutcome::Unspecified.into(),
            ..refused(1)
        };
        let bad_status = pb::FailureKind {
            status: Some(70_000),
            ..refused(1)
        };
        for kinds in [too_many, vec![ok], vec![bad_status]] {
            let rejected = with_failures(kinds);
            assert!(
                matches!(
                    rejected,
                    FromAgent::Rejected {
                        error: WireError::Failures { .. },
                        ..
                    }
                ),
                "{rejected:?}"
            );
        }
    }

    #[test]
    fn non_finite_numbers_never_reach_the_governor() {
        let t = throttle(pb::Throttle {
            retry_after_s: Some(f64::NAN),
            remaining: Some(-1.0),
            limit: Some(f64::INFINITY),
            reset_s: Some(1e300),
            rate_rps: f64::NAN,
            status: 70_000,
            ..Default::default()
        });
        assert_eq!(
            (t.retry_after, t.remaining, t.limit, t.reset),
            (None, None, None, None)
        );
        assert_eq!((t.status, t.rate_rps), (429, 0.0));
        let q = pb::Quota {
            remaining: f64::NAN,
            ..Default::default()
        };
        assert!(matches!(from_agent(Out::Quota(q)), FromAgent::Other));
    }
}

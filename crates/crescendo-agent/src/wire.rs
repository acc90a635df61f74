//! Conversions between the agent's domain types and the wire's generated protobuf
//! types. Together with [`crate::session`] this is the agent's gRPC edge.

use crescendo_metrics::{Counters, StepSnapshot, encode};
use crescendo_proto::v1 as pb;

/// One step's interval as shipped: histograms as V2+deflate bytes.
pub(crate) fn step_to_pb(step: &StepSnapshot) -> pb::StepSnapshot {
    pb::StepSnapshot {
        step: step.step.clone(),
        latency: encode(&step.stats.latency),
        service_time: encode(&step.stats.service_time),
        counters: Some(counters_to_pb(&step.stats.counters)),
        statuses: step
            .stats
            .statuses
            .iter()
            .map(|(&k, &v)| (u32::from(k), v))
            .collect(),
        auxiliary: step.auxiliary,
    }
}

pub(crate) fn counters_to_pb(c: &Counters) -> pb::Counters {
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
        paused_ms,
        check_failed,
        auth_refreshes,
    }
}

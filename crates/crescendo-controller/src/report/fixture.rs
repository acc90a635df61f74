//! A hand-made summary for the report and comparison unit tests.

use std::collections::BTreeMap;

use crescendo_metrics::LatencySummary;

use super::Summary;
use super::summary::{AgentSummary, GovernorEventSummary, IntervalSummary, Totals};
use crate::thresholds::ThresholdResult;

pub(crate) fn latency(p50: f64, p99: f64, max: f64) -> LatencySummary {
    LatencySummary {
        count: 900,
        p50,
        p90: (p50 + p99) / 2.0,
        p95: (p50 + 3.0 * p99) / 4.0,
        p99,
        p999: (p99 + max) / 2.0,
        max,
        mean: p50 * 1.1,
    }
}

pub(crate) fn totals(requests: u64, ok: u64, throttled: u64) -> Totals {
    Totals {
        requests,
        ok,
        throttled,
        errors: requests - ok - throttled,
        retries: 3,
        dropped: 0,
        missed: 0,
        offered: requests,
        planned: Some(requests),
        deferred: Some(0),
        client_errors: requests - ok - throttled,
        server_errors: 0,
        timeouts: 0,
        connect_errors: 0,
        check_failed: 0,
        paused_ms: 0,
        fleet_paused_ms: None,
        auth_refreshes: 0,
    }
}

/// A 10 s run of plan "fixture <&>" with one passed and one failed threshold.
pub(crate) fn summary() -> Summary {
    let t = totals(1000, 900, 90);
    Summary {
        run_id: "run1".into(),
        plan_name: "fixture <&>".into(),
        started_at_unix_s: 1_700_000_000.0,
        duration_s: 10.0,
        agents: vec![AgentSummary {
            id: "agent-1".into(),
            host: "h".into(),
            requests: 1000,
            ok: 900,
            throttled: 90,
            errors: 10,
            lost: false,
            rate_fraction: 1.0,
            vus: 0,
            max_in_flight: 100,
        }],
        lost_agents: vec![],
        totals: t.clone(),
        latency_ms: latency(10.0, 50.0, 80.0),
        service_time_ms: latency(5.0, 20.0, 30.0),
        throughput_rps: 100.0,
        goodput_rps: 90.0,
        offered_rps: 100.0,
        throttled_ratio: 0.09,
        statuses: BTreeMap::from([(200, 900), (429, 90), (400, 10)]),
        steps: BTreeMap::new(),
        thresholds: vec![
            ThresholdResult {
                expr: "latency.p99 < 800ms".into(),
                ok: true,
                value: 50.0,
                ..Default::default()
            },
            ThresholdResult {
                expr: "errors == 0".into(),
                ok: false,
                value: 10.0,
                ..Default::default()
            },
        ],
        passed: false,
        outcome: super::Verdict::Failed,
        outcome_reasons: vec!["threshold failed: errors == 0".into()],
        stopped: None,
        agent_errors: vec![],
        throttle_reports: 0,
        rejected_snapshots: 0,
        rejected_messages: Default::default(),
        timeline: (0..10)
            .map(|t| IntervalSummary {
                t,
                offered: 100,
                planned: Some(100.0),
                requests: 100,
                ok: 90,
                throttled: 9,
                errors: 1,
                p50_ms: 10.0,
                p90_ms: 30.0,
                p99_ms: 50.0,
                max_ms: 80.0,
            })
            .collect(),
        governor_events: vec![GovernorEventSummary {
            at: 2.5,
            kind: "pause".into(),
            limit_key: "k".into(),
            old_rate: 100.0,
            new_rate: 50.0,
            reason: "429 retry-after 2s".into(),
            adjustments: 1,
        }],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_summary_reads_back_as_written() {
        let s = super::summary();
        let json = serde_json::to_value(&s).unwrap();
        let back: super::Summary = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), json);
        assert_eq!(json["governor_events"][0]["kind"], "pause");
        assert_eq!(json["latency_ms"]["p99"], 50.0);
        assert_eq!(json["statuses"]["429"], 90);
    }

    #[test]
    fn an_older_summary_with_fewer_keys_still_reads() {
        let back: super::Summary =
            serde_json::from_str(r#"{"run_id": "r", "latency_ms": {"p50": 1.5}}"#).unwrap();
        assert_eq!(back.run_id, "r");
        assert_eq!(back.latency_ms.p50, 1.5);
    }
}

//! What `GET /__sim/stats` reports: accepted/throttled per client key (kept by
//! `admission`) and final statuses per endpoint (flows, lock actions, token endpoint), counted with relaxed atomics so the
//! hot path never takes a lock for them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use crate::paths;

/// The JSON body of `GET /__sim/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// API requests that passed the limiter, whatever their final status.
    pub accepted: u64,
    /// API requests the limiter answered with 429.
    pub throttled: u64,
    /// The same split per client key (`anonymous` or `token-<hash>`).
    pub keys: BTreeMap<String, KeyStats>,
    /// Final response statuses of the API and the token endpoint (`"200"`, `"409"`,
    /// `"429"`, …) and how often each was sent.
    pub statuses: BTreeMap<String, u64>,
    /// Final statuses per endpoint (`"PUT /api/v2/flows/{flowId}"`, `"POST /oauth/token"`,
    /// `"POST /api/v2/flows/actions/checkout"`, … → status → count), 401s and 409s included.
    pub endpoints: BTreeMap<String, BTreeMap<String, u64>>,
    /// API responses a `/__sim/stall` is holding right now (0 when none is in force).
    #[serde(default)]
    pub stalled: u64,
}

/// One client key's share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyStats {
    /// Requests that passed the limiter.
    pub accepted: u64,
    /// Requests answered 429 by the limiter.
    pub throttled: u64,
}

/// The API endpoints flowsim serves, for per-endpoint status counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    ListFlows,
    GetFlow,
    PutFlow,
    Checkout,
    Checkin,
    Publish,
    Unlock,
    /// `POST /oauth/token` (counted by its handler; it is not behind the gate).
    Token,
    /// Unknown paths and methods.
    Other,
}

impl Endpoint {
    const ALL: [Self; 9] = [
        Self::ListFlows,
        Self::GetFlow,
        Self::PutFlow,
        Self::Checkout,
        Self::Checkin,
        Self::Publish,
        Self::Unlock,
        Self::Token,
        Self::Other,
    ];

    /// Classifies by method and the route template axum matched.
    pub(crate) fn classify(method: &Method, matched: Option<&str>) -> Self {
        match (method.as_str(), matched) {
            ("GET", Some(paths::FLOWS)) => Self::ListFlows,
            ("GET", Some(paths::FLOW)) => Self::GetFlow,
            ("PUT", Some(paths::FLOW)) => Self::PutFlow,
            ("POST", Some(paths::CHECKOUT)) => Self::Checkout,
            ("POST", Some(paths::CHECKIN)) => Self::Checkin,
            ("POST", Some(paths::PUBLISH)) => Self::Publish,
            ("POST", Some(paths::UNLOCK)) => Self::Unlock,
            ("POST", Some(paths::TOKEN)) => Self::Token,
            _ => Self::Other,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::ListFlows => "GET /api/v2/flows",
            Self::GetFlow => "GET /api/v2/flows/{flowId}",
            Self::PutFlow => "PUT /api/v2/flows/{flowId}",
            Self::Checkout => "POST /api/v2/flows/actions/checkout",
            Self::Checkin => "POST /api/v2/flows/actions/checkin",
            Self::Publish => "POST /api/v2/flows/actions/publish",
            Self::Unlock => "POST /api/v2/flows/actions/unlock",
            Self::Token => "POST /oauth/token",
            Self::Other => "other",
        }
    }
}

const FIRST_STATUS: u16 = 100;
const STATUSES: usize = 500;

/// Status counts per endpoint: `Endpoint::ALL.len() × 500` atomics.
#[derive(Debug)]
pub(crate) struct StatusCounts {
    counts: Box<[AtomicU64]>,
}

impl StatusCounts {
    pub(crate) fn new() -> Self {
        Self {
            counts: (0..Endpoint::ALL.len() * STATUSES)
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    pub(crate) fn record(&self, endpoint: Endpoint, status: StatusCode) {
        let offset = usize::from(status.as_u16() - FIRST_STATUS).min(STATUSES - 1);
        self.counts[endpoint as usize * STATUSES + offset].fetch_add(1, Ordering::Relaxed);
    }

    /// Fills `statuses` and `endpoints` of a stats body.
    pub(crate) fn fill(&self, stats: &mut Stats) {
        for endpoint in Endpoint::ALL {
            let row = &self.counts[endpoint as usize * STATUSES..][..STATUSES];
            for (offset, count) in row.iter().enumerate() {
                let n = count.load(Ordering::Relaxed);
                if n == 0 {
                    continue;
                }
                let status = (offset + usize::from(FIRST_STATUS)).to_string();
                *stats.statuses.entry(status.clone()).or_default() += n;
                stats
                    .endpoints
                    .entry(endpoint.label().to_owned())
                    .or_default()
                    .insert(status, n);
            }
        }
    }

    pub(crate) fn reset(&self) {
        for count in &*self.counts {
            count.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_per_endpoint_and_status() {
        let counts = StatusCounts::new();
        counts.record(Endpoint::PutFlow, StatusCode::OK);
        counts.record(Endpoint::PutFlow, StatusCode::OK);
        counts.record(Endpoint::PutFlow, StatusCode::TOO_MANY_REQUESTS);
        counts.record(Endpoint::GetFlow, StatusCode::OK);
        counts.record(Endpoint::Other, StatusCode::NOT_FOUND);
        let mut stats = Stats::default();
        counts.fill(&mut stats);
        assert_eq!(stats.statuses["200"], 3);
        assert_eq!(stats.statuses["429"], 1);
        assert_eq!(stats.endpoints["PUT /api/v2/flows/{flowId}"]["200"], 2);
        assert_eq!(stats.endpoints["other"]["404"], 1);
        counts.reset();
        let mut stats = Stats::default();
        counts.fill(&mut stats);
        assert!(stats.statuses.is_empty() && stats.endpoints.is_empty());
    }

    #[test]
    fn classifies_routes() {
        let put = Endpoint::classify(&Method::PUT, Some("/api/v2/flows/{flowId}"));
        assert_eq!(put, Endpoint::PutFlow);
        assert_eq!(
            Endpoint::classify(&Method::GET, Some("/api/v2/flows")),
            Endpoint::ListFlows
        );
        assert_eq!(
            Endpoint::classify(&Method::DELETE, Some("/api/v2/flows/{flowId}")),
            Endpoint::Other
        );
        assert_eq!(Endpoint::classify(&Method::GET, None), Endpoint::Other);
        let checkout = Endpoint::classify(&Method::POST, Some("/api/v2/flows/actions/checkout"));
        assert_eq!(checkout, Endpoint::Checkout);
        assert_eq!(Endpoint::Token.label(), "POST /oauth/token");
    }
}

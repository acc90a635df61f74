//! The one-line progress report printed each second while a run goes.

use std::time::Duration;

use crescendo_metrics::histogram::percentile_ms;
use tokio::time::Instant;

use crescendo_metrics::StepStats;

/// Remembers the previous line's totals to show rates.
#[derive(Debug)]
pub(crate) struct Progress {
    total: Duration,
    last_requests: u64,
    last_at: Option<Instant>,
}

impl Progress {
    pub(crate) fn new(total: Duration) -> Self {
        Self {
            total,
            last_requests: 0,
            last_at: None,
        }
    }

    /// `[  5s/20s]  14.8 req/s  ok 60  429 12  err 0  dropped 0  p99 12.3 ms  agents 3/3`
    pub(crate) fn line(
        &mut self,
        started: Instant,
        total: &StepStats,
        attached: usize,
        agents: usize,
    ) -> String {
        let now = Instant::now();
        let c = total.counters;
        let since = self.last_at.unwrap_or(started);
        let secs = now.saturating_duration_since(since).as_secs_f64().max(1e-3);
        let rate = (c.requests - self.last_requests.min(c.requests)) as f64 / secs;
        self.last_requests = c.requests;
        self.last_at = Some(now);
        format!(
            "[{:>4.0}s/{}s] {:>8.1} req/s  ok {}  429 {}  err {}  dropped {}  p99 {:.1} ms  agents {attached}/{agents}",
            now.saturating_duration_since(started).as_secs_f64(),
            self.total.as_secs(),
            rate,
            c.ok,
            c.throttled,
            c.errors(),
            c.dropped,
            percentile_ms(&total.latency, 99.0),
        )
    }
}

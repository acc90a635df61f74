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

    /// `[  5s/20s]  14.8 req/s  ok 60  429 12 (16.7 %)  retries 3  err 0  dropped 0  paused 1.2 s  p99 12.3 ms  agents 3/3`
    /// (paused: agent-seconds spent paused by backoff so far)
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
        let throttled_pct = if c.requests == 0 {
            0.0
        } else {
            100.0 * c.throttled as f64 / c.requests as f64
        };
        format!(
            "[{:>4.0}s/{}s] {:>8.1} req/s  ok {}  429 {} ({throttled_pct:.1} %)  retries {}  err {}  dropped {}  paused {:.1} s  p99 {:.1} ms  agents {attached}/{agents}",
            now.saturating_duration_since(started).as_secs_f64(),
            self.total.as_secs(),
            rate,
            c.ok,
            c.throttled,
            c.retries,
            c.errors(),
            c.dropped,
            c.paused_ms as f64 / 1000.0,
            percentile_ms(&total.latency, 99.0),
        )
    }
}

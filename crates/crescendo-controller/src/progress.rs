//! The progress report printed each second while a run goes: one plain line for
//! people, or one JSON object per line for other programs.

use std::time::Duration;

use crescendo_metrics::StepStats;
use crescendo_metrics::histogram::percentile_ms;
use serde::Serialize;
use tokio::time::Instant;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ProgressMode {
    /// Nothing.
    #[default]
    None,
    /// One line a second.
    Plain,
    /// One JSON object a second (JSON Lines).
    Json,
}

/// One second's progress.
#[derive(Debug, Serialize)]
struct Tick {
    elapsed_s: f64,
    duration_s: f64,
    rate_rps: f64,
    requests: u64,
    ok: u64,
    throttled: u64,
    throttled_ratio: f64,
    retries: u64,
    errors: u64,
    dropped: u64,
    /// Agent-seconds spent paused by backoff so far.
    paused_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    agents: usize,
    agents_total: usize,
}

/// Remembers the previous report's totals to show rates.
#[derive(Debug)]
pub(crate) struct Progress {
    mode: ProgressMode,
    total: Duration,
    last_requests: u64,
    last_at: Option<Instant>,
}

impl Progress {
    pub(crate) fn new(mode: ProgressMode, total: Duration) -> Self {
        Self {
            mode,
            total,
            last_requests: 0,
            last_at: None,
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.mode != ProgressMode::None
    }

    /// The report for now, e.g.
    /// `[  5s/20s]  14.8 req/s  ok 60  429 12 (16.7 %)  retries 3  err 0  dropped 0  paused 1.2 s  p99 12.3 ms  agents 3/3`.
    pub(crate) fn report(
        &mut self,
        started: Instant,
        total: &StepStats,
        agents: usize,
        agents_total: usize,
    ) -> Option<String> {
        let now = Instant::now();
        let c = total.counters;
        let since = self.last_at.unwrap_or(started);
        let secs = now.saturating_duration_since(since).as_secs_f64().max(1e-3);
        let rate_rps = c.requests.saturating_sub(self.last_requests) as f64 / secs;
        self.last_requests = c.requests;
        self.last_at = Some(now);
        let tick = Tick {
            elapsed_s: now.saturating_duration_since(started).as_secs_f64(),
            duration_s: self.total.as_secs_f64(),
            rate_rps,
            requests: c.requests,
            ok: c.ok,
            throttled: c.throttled,
            throttled_ratio: if c.requests == 0 {
                0.0
            } else {
                c.throttled as f64 / c.requests as f64
            },
            retries: c.retries,
            errors: c.errors(),
            dropped: c.dropped,
            paused_s: c.paused_ms as f64 / 1000.0,
            p50_ms: percentile_ms(&total.latency, 50.0),
            p99_ms: percentile_ms(&total.latency, 99.0),
            agents,
            agents_total,
        };
        match self.mode {
            ProgressMode::None => None,
            ProgressMode::Json => serde_json::to_string(&tick).ok(),
            ProgressMode::Plain => Some(format!(
                "[{:>4.0}s/{:.0}s] {:>8.1} req/s  ok {}  429 {} ({:.1} %)  retries {}  err {}  dropped {}  paused {:.1} s  p99 {:.1} ms  agents {}/{}",
                tick.elapsed_s,
                tick.duration_s,
                tick.rate_rps,
                tick.ok,
                tick.throttled,
                tick.throttled_ratio * 100.0,
                tick.retries,
                tick.errors,
                tick.dropped,
                tick.paused_s,
                tick.p99_ms,
                tick.agents,
                tick.agents_total,
            )),
        }
    }
}

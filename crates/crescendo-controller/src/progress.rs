//! The progress shown each second while a run goes: a live multi-line display on a
//! terminal (indicatif), one plain line a second otherwise, or one JSON object per
//! line for other programs.
//!
//! [`Progress::tick`] turns the merged result into a [`Tick`] (rates since the previous
//! tick, percentiles over the last interval and overall, the stage) and shows it; the
//! text of every form is rendered by pure functions, unit-tested without a terminal.

mod bar;

use std::time::Duration;

use crescendo_metrics::StepStats;
use crescendo_metrics::histogram::percentile_ms;
use crescendo_plan::{Load, Plan};
use hdrhistogram::Histogram;
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
    /// A live multi-line display (on a terminal; plain lines otherwise).
    Bar,
}

impl ProgressMode {
    /// The mode to use: the one asked for, else the live display on a terminal and
    /// plain lines elsewhere. `bar` also falls back to plain lines off a terminal, so
    /// that a log file still gets one line a second.
    pub fn resolve(requested: Option<Self>, stdout_is_terminal: bool) -> Self {
        match requested {
            None | Some(ProgressMode::Bar) if stdout_is_terminal => ProgressMode::Bar,
            None | Some(ProgressMode::Bar) => ProgressMode::Plain,
            Some(mode) => mode,
        }
    }
}

/// What the run loop knows at a tick.
#[derive(Debug)]
pub(crate) struct Observed<'a> {
    /// All steps merged so far.
    pub(crate) total: &'a StepStats,
    /// Iterations the schedule intended so far.
    pub(crate) offered: u64,
    pub(crate) agents: usize,
    pub(crate) agents_total: usize,
    /// The governor's fleet rate and whether the fleet is paused (coordinated policy).
    pub(crate) governor: Option<(f64, bool)>,
    /// Wall-clock time the fleet governor held the fleet paused so far.
    pub(crate) fleet_paused: Option<Duration>,
}

/// One second's progress.
#[derive(Debug, Serialize, Default, Clone, PartialEq)]
pub(crate) struct Tick {
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
    /// Time paused by backoff so far: the fleet's wall-clock pause time under the
    /// coordinated policy (a governor), else the agents' own pauses summed
    /// (agent-seconds, as `agent_paused_s`).
    paused_s: f64,
    /// Agent-seconds spent paused by backoff so far (every agent's pauses summed).
    agent_paused_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    agents: usize,
    agents_total: usize,
    /// The stage running now (1-based) of `stages`.
    stage: usize,
    stages: usize,
    /// Seconds left in this stage, and in the whole load.
    stage_left_s: f64,
    remaining_s: f64,
    /// Iterations intended per second, and successful requests per second, since the
    /// previous tick.
    offered_rps: f64,
    ok_rps: f64,
    /// Percentiles of what merged since the previous tick.
    interval_p50_ms: f64,
    interval_p99_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    governor_rate_rps: Option<f64>,
    fleet_paused: bool,
}

/// The previous tick's totals, to show rates and last-interval percentiles.
#[derive(Debug)]
pub(crate) struct Progress {
    mode: ProgressMode,
    total: Duration,
    stages: Vec<Duration>,
    last_requests: u64,
    last_ok: u64,
    last_offered: u64,
    last_latency: Option<Histogram<u64>>,
    last_at: Option<Instant>,
    bar: Option<bar::Display>,
    /// `--out json=FILE`: each tick also goes there.
    stream: Option<crate::live::JsonStream>,
}

/// The stage holding `elapsed` (1-based) and the time left in it; past the end, the
/// last stage with nothing left.
fn stage_at(stages: &[Duration], elapsed: Duration) -> (usize, Duration) {
    let mut end = Duration::ZERO;
    for (i, d) in stages.iter().enumerate() {
        end = end.saturating_add(*d);
        if elapsed < end {
            return (i + 1, end - elapsed);
        }
    }
    (stages.len(), Duration::ZERO)
}

impl Progress {
    pub(crate) fn new(mode: ProgressMode, plan: &Plan) -> Self {
        let stages = match &plan.load {
            Load::Open(open) => open.stages.iter().map(|s| s.duration).collect(),
            Load::Closed(closed) => closed.stages.iter().map(|s| s.duration).collect(),
        };
        let total = plan.duration();
        Self {
            mode,
            total,
            stages,
            last_requests: 0,
            last_ok: 0,
            last_offered: 0,
            last_latency: None,
            last_at: None,
            bar: (mode == ProgressMode::Bar).then(|| bar::Display::new(total)),
            stream: None,
        }
    }

    /// Also write each tick to `stream`.
    pub(crate) fn with_stream(mut self, stream: Option<crate::live::JsonStream>) -> Self {
        self.stream = stream;
        self
    }

    pub(crate) fn enabled(&self) -> bool {
        self.mode != ProgressMode::None || self.stream.is_some()
    }

    /// Show the progress at now: a line on stdout, or the live display redrawn.
    pub(crate) fn tick(&mut self, started: Instant, seen: &Observed<'_>) {
        if !self.enabled() {
            return;
        }
        let tick = self.measure(Instant::now(), started, seen);
        if let Some(stream) = &self.stream
            && let Ok(value) = serde_json::to_value(&tick)
        {
            stream.line("progress", value);
        }
        match self.mode {
            ProgressMode::None => {}
            ProgressMode::Plain => println!("{}", plain_line(&tick)),
            ProgressMode::Json => {
                if let Ok(line) = serde_json::to_string(&tick) {
                    println!("{line}");
                }
            }
            ProgressMode::Bar => {
                if let Some(bar) = &self.bar {
                    bar.update(&tick);
                }
            }
        }
    }

    /// The tick at `now`, remembering its totals for the next one.
    fn measure(&mut self, now: Instant, started: Instant, seen: &Observed<'_>) -> Tick {
        let c = seen.total.counters;
        let since = self.last_at.unwrap_or(started);
        let secs = now.saturating_duration_since(since).as_secs_f64().max(1e-3);
        let per_s = |now: u64, then: u64| now.saturating_sub(then) as f64 / secs;
        let elapsed = now.saturating_duration_since(started);
        let (stage, stage_left) = stage_at(&self.stages, elapsed);
        let mut interval = seen.total.latency.clone();
        if let Some(last) = &self.last_latency
            && interval.subtract(last).is_err()
        {
            interval.reset();
        }
        let tick = Tick {
            elapsed_s: elapsed.as_secs_f64(),
            duration_s: self.total.as_secs_f64(),
            rate_rps: per_s(c.requests, self.last_requests),
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
            paused_s: seen
                .fleet_paused
                .map_or(c.paused_ms as f64 / 1000.0, |d| d.as_secs_f64()),
            agent_paused_s: c.paused_ms as f64 / 1000.0,
            p50_ms: percentile_ms(&seen.total.latency, 50.0),
            p99_ms: percentile_ms(&seen.total.latency, 99.0),
            agents: seen.agents,
            agents_total: seen.agents_total,
            stage,
            stages: self.stages.len(),
            stage_left_s: stage_left.as_secs_f64(),
            remaining_s: self.total.saturating_sub(elapsed).as_secs_f64(),
            offered_rps: per_s(seen.offered, self.last_offered),
            ok_rps: per_s(c.ok, self.last_ok),
            interval_p50_ms: percentile_ms(&interval, 50.0),
            interval_p99_ms: percentile_ms(&interval, 99.0),
            governor_rate_rps: seen.governor.map(|(rate, _)| rate),
            fleet_paused: seen.governor.is_some_and(|(_, paused)| paused),
        };
        self.last_requests = c.requests;
        self.last_ok = c.ok;
        self.last_offered = seen.offered;
        self.last_latency = Some(seen.total.latency.clone());
        self.last_at = Some(now);
        tick
    }
}

/// The plain line, e.g.
/// `[   5s/20s]     14.8 req/s  ok 60  429 12 (16.7 %)  retries 3  err 0  dropped 0  paused 1.2 s  p99 12.3 ms  agents 3/3`.
pub(crate) fn plain_line(t: &Tick) -> String {
    format!(
        "[{:>4.0}s/{:.0}s] {:>8.1} req/s  ok {}  429 {} ({:.1} %)  retries {}  err {}  dropped {}  paused {:.1} {}  p99 {:.1} ms  agents {}/{}",
        t.elapsed_s,
        t.duration_s,
        t.rate_rps,
        t.ok,
        t.throttled,
        t.throttled_ratio * 100.0,
        t.retries,
        t.errors,
        t.dropped,
        t.paused_s,
        // Without a governor the agents pause on their own: their time is summed.
        if t.governor_rate_rps.is_some() {
            "s"
        } else {
            "agent-s"
        },
        t.p99_ms,
        t.agents,
        t.agents_total,
    )
}

/// The live display's text lines under the bar: stage and time, rates, counts,
/// latency and the fleet.
pub(crate) fn bar_lines(t: &Tick) -> [String; 4] {
    let governor = match (t.governor_rate_rps, t.fleet_paused) {
        (_, true) => "  fleet PAUSED".to_owned(),
        (Some(rate), false) => format!("  governor {rate:.1}/s"),
        (None, false) => String::new(),
    };
    [
        format!(
            "stage {}/{}  {:.0}s elapsed  {:.0}s left in stage  {:.0}s to go",
            t.stage, t.stages, t.elapsed_s, t.stage_left_s, t.remaining_s
        ),
        format!(
            "rate   offered {:.1}/s  sent {:.1}/s  ok {:.1}/s{governor}",
            t.offered_rps, t.rate_rps, t.ok_rps
        ),
        format!(
            "count  ok {}  throttled {} ({:.1} %)  errors {}  retries {}  dropped {}",
            t.ok,
            t.throttled,
            t.throttled_ratio * 100.0,
            t.errors,
            t.retries,
            t.dropped
        ),
        format!(
            "p50/p99  last second {:.1}/{:.1} ms  overall {:.1}/{:.1} ms  agents {}/{}",
            t.interval_p50_ms, t.interval_p99_ms, t.p50_ms, t.p99_ms, t.agents, t.agents_total
        ),
    ]
}

#[cfg(test)]
mod tests;

//! The Prometheus text exposition format (version 0.0.4) of a [`LiveSnapshot`]:
//! `# HELP` and `# TYPE` for every family, base units (seconds), label values escaped.
//!
//! Hand-written rather than through a client library: the values are already
//! aggregated (absolute counters and pre-binned histograms copied from the merged
//! HdrHistograms), which a client library's incrementing metric types do not model.

use std::fmt::Write;

use hdrhistogram::Histogram;

use super::{LiveSnapshot, RunState, StepLive};

/// Upper bounds of the latency histograms' buckets, in seconds: 1 ms to 50 s on a
/// 1-2.5-5 ladder (`+Inf` follows).
pub(crate) const BUCKETS_S: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0,
];

/// A latency histogram binned for Prometheus: cumulative counts per bucket of
/// [`BUCKETS_S`], the sum of the values in seconds and their count.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PromHistogram {
    /// Cumulative counts, one per entry of [`BUCKETS_S`].
    pub(crate) cumulative: Vec<u64>,
    pub(crate) sum_s: f64,
    pub(crate) count: u64,
}

impl Default for PromHistogram {
    fn default() -> Self {
        Self {
            cumulative: vec![0; BUCKETS_S.len()],
            sum_s: 0.0,
            count: 0,
        }
    }
}

impl PromHistogram {
    /// Bin an HdrHistogram of microseconds (one pass over its recorded values). A value
    /// counts in a bucket when the highest value equivalent to it (within the
    /// histogram's 3 significant digits) is at most the bucket's bound.
    pub(crate) fn of(hist: &Histogram<u64>) -> Self {
        let mut counts = vec![0u64; BUCKETS_S.len()];
        for v in hist.iter_recorded() {
            let seconds = v.value_iterated_to() as f64 / 1e6;
            if let Some(i) = BUCKETS_S.iter().position(|le| seconds <= *le) {
                counts[i] = counts[i].saturating_add(v.count_at_value());
            }
        }
        let mut running = 0u64;
        let cumulative = counts
            .into_iter()
            .map(|c| {
                // Saturating: counts come from agents, and garbage must not panic.
                running = running.saturating_add(c);
                running
            })
            .collect();
        let count = hist.len();
        let sum_s = if count == 0 {
            0.0
        } else {
            hist.mean() * count as f64 / 1e6
        };
        Self {
            cumulative,
            sum_s,
            count,
        }
    }
}

/// A label value escaped as the text format wants: backslash, double quote, newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value: Go-style `+Inf`, `-Inf` and `NaN` for the special values.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{v}")
    }
}

/// Writes one family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The outcome label values, each with its counter in `Counters`.
fn outcomes(c: &crescendo_metrics::Counters) -> [(&'static str, u64); 7] {
    [
        ("ok", c.ok),
        ("throttled", c.throttled),
        ("client_error", c.client_errors),
        ("server_error", c.server_errors),
        ("timeout", c.timeouts),
        ("connect_error", c.connect_errors),
        ("check_failed", c.check_failed),
    ]
}

fn histogram_family(
    out: &mut String,
    name: &str,
    help: &str,
    steps: &[(&str, &StepLive)],
    pick: fn(&StepLive) -> &PromHistogram,
) {
    family(out, name, "histogram", help);
    for (step, live) in steps {
        let h = pick(live);
        for (le, count) in BUCKETS_S.iter().zip(&h.cumulative) {
            let _ = writeln!(
                out,
                "{name}_bucket{{step=\"{step}\",le=\"{}\"}} {count}",
                number(*le)
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{step=\"{step}\",le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(out, "{name}_sum{{step=\"{step}\"}} {}", number(h.sum_s));
        let _ = writeln!(out, "{name}_count{{step=\"{step}\"}} {}", h.count);
    }
}

/// The whole exposition of one snapshot.
pub(crate) fn render(s: &LiveSnapshot) -> String {
    let mut out = String::new();
    let steps: Vec<(String, &StepLive)> = s.steps.iter().map(|(k, v)| (escape(k), v)).collect();
    let steps: Vec<(&str, &StepLive)> = steps.iter().map(|(k, v)| (k.as_str(), *v)).collect();

    family(
        &mut out,
        "crescendo_requests_total",
        "counter",
        "HTTP attempts of the current run by outcome and step.",
    );
    for (step, live) in &steps {
        for (outcome, n) in outcomes(&live.counters) {
            let _ = writeln!(
                out,
                "crescendo_requests_total{{outcome=\"{outcome}\",step=\"{step}\"}} {n}"
            );
        }
    }
    family(
        &mut out,
        "crescendo_retries_total",
        "counter",
        "Attempts that retried an earlier attempt (a subset of requests), by step.",
    );
    for (step, live) in &steps {
        let _ = writeln!(
            out,
            "crescendo_retries_total{{step=\"{step}\"}} {}",
            live.counters.retries
        );
    }
    let dropped = s
        .steps
        .values()
        .fold(0u64, |sum, l| sum.saturating_add(l.counters.dropped));
    family(
        &mut out,
        "crescendo_dropped_total",
        "counter",
        "Iterations due but never sent because the in-flight cap was reached.",
    );
    let _ = writeln!(out, "crescendo_dropped_total {dropped}");
    let missed = s
        .steps
        .values()
        .fold(0u64, |sum, l| sum.saturating_add(l.counters.missed));
    family(
        &mut out,
        "crescendo_missed_total",
        "counter",
        "Iterations due before the plan's end but never sent (an agent fell behind).",
    );
    let _ = writeln!(out, "crescendo_missed_total {missed}");
    family(
        &mut out,
        "crescendo_offered_total",
        "counter",
        "Iterations the schedule intended so far (the offered load).",
    );
    let _ = writeln!(out, "crescendo_offered_total {}", s.offered);
    if let Some(planned) = s.planned {
        family(
            &mut out,
            "crescendo_planned_total",
            "counter",
            "Iterations the plan asked for so far (open model): the demand, before the fleet governor's pauses and caps.",
        );
        let _ = writeln!(out, "crescendo_planned_total {planned}");
        family(
            &mut out,
            "crescendo_deferred_total",
            "counter",
            "Planned iterations not offered so far: held back by backoff (pauses, rate caps) or a ceiling.",
        );
        let _ = writeln!(
            out,
            "crescendo_deferred_total {}",
            planned.saturating_sub(s.offered)
        );
    }
    if let Some(paused_s) = s.fleet_paused_s {
        family(
            &mut out,
            "crescendo_fleet_paused_seconds_total",
            "counter",
            "Wall-clock seconds the fleet governor held the fleet paused (coordinated policy).",
        );
        let _ = writeln!(
            out,
            "crescendo_fleet_paused_seconds_total {}",
            number(paused_s)
        );
    }
    histogram_family(
        &mut out,
        "crescendo_request_duration_seconds",
        "Intended-time (coordinated-omission corrected) latency of successful requests, by step.",
        &steps,
        |l| &l.latency,
    );
    histogram_family(
        &mut out,
        "crescendo_service_time_seconds",
        "Service time (from the actual send) of successful requests, by step.",
        &steps,
        |l| &l.service_time,
    );
    family(
        &mut out,
        "crescendo_agents_attached",
        "gauge",
        "Agents attached to the controller (in a run: run members still attached).",
    );
    let _ = writeln!(out, "crescendo_agents_attached {}", s.agents_attached);
    if let Some(rate) = s.governor_rate_rps {
        family(
            &mut out,
            "crescendo_governor_rate_rps",
            "gauge",
            "The fleet-wide request rate the coordinated governor allows now, per second.",
        );
        let _ = writeln!(out, "crescendo_governor_rate_rps {}", number(rate));
    }
    family(
        &mut out,
        "crescendo_fleet_paused",
        "gauge",
        "1 while the governor holds the whole fleet in a pause, else 0.",
    );
    let _ = writeln!(out, "crescendo_fleet_paused {}", u8::from(s.paused));
    family(
        &mut out,
        "crescendo_run_state",
        "gauge",
        "1 for the run's current state, 0 for the others.",
    );
    for state in [RunState::Waiting, RunState::Running, RunState::Finished] {
        let _ = writeln!(
            out,
            "crescendo_run_state{{state=\"{}\"}} {}",
            state.name(),
            u8::from(s.state == state)
        );
    }
    family(
        &mut out,
        "crescendo_run_elapsed_seconds",
        "gauge",
        "Seconds since the current run's start barrier.",
    );
    let _ = writeln!(out, "crescendo_run_elapsed_seconds {}", number(s.elapsed_s));
    if !s.run_id.is_empty() {
        family(
            &mut out,
            "crescendo_run_info",
            "gauge",
            "Always 1: the current run's id and plan name as labels.",
        );
        let _ = writeln!(
            out,
            "crescendo_run_info{{run_id=\"{}\",plan=\"{}\"}} 1",
            escape(&s.run_id),
            escape(&s.plan_name)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crescendo_metrics::new_histogram;

    #[test]
    fn buckets_are_cumulative_and_end_at_the_count() {
        let mut h = new_histogram();
        for us in [500, 900, 2_000, 40_000, 70_000_000] {
            h.record(us).unwrap();
        }
        let p = PromHistogram::of(&h);
        assert_eq!(p.count, 5);
        assert_eq!(p.cumulative[0], 2, "0.5 ms and 0.9 ms are <= 1 ms");
        assert_eq!(p.cumulative[1], 3, "2 ms <= 2.5 ms");
        assert_eq!(p.cumulative[5], 4, "40 ms <= 50 ms");
        assert_eq!(
            *p.cumulative.last().unwrap(),
            4,
            "70 s is past 50 s: +Inf only"
        );
        assert!(p.cumulative.windows(2).all(|w| w[0] <= w[1]));
        assert!((p.sum_s - 70.0434).abs() < 0.1, "{}", p.sum_s);
    }

    #[test]
    fn huge_counts_from_agents_saturate_instead_of_panicking() {
        let mut h = new_histogram();
        h.record_n(500, u64::MAX / 2 + 1).unwrap();
        h.record_n(2_000, u64::MAX / 2 + 1).unwrap();
        let p = PromHistogram::of(&h);
        assert_eq!(*p.cumulative.last().unwrap(), u64::MAX);

        let mut s = LiveSnapshot::default();
        for step in ["a", "b"] {
            let mut live = StepLive::default();
            live.counters.dropped = u64::MAX;
            s.steps.insert(step.into(), live);
        }
        let text = render(&s);
        assert!(
            text.contains(&format!("crescendo_dropped_total {}", u64::MAX)),
            "{text}"
        );
    }

    #[test]
    fn special_values_and_escapes() {
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(0.0025), "0.0025");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn every_family_has_help_and_type_and_no_governor_line_without_one() {
        let mut s = LiveSnapshot::default();
        s.steps.insert("up\"date".into(), StepLive::default());
        let text = render(&s);
        for name in [
            "crescendo_requests_total",
            "crescendo_request_duration_seconds",
            "crescendo_run_state",
        ] {
            assert!(text.contains(&format!("# HELP {name} ")), "{text}");
            assert!(text.contains(&format!("# TYPE {name} ")), "{text}");
        }
        assert!(!text.contains("crescendo_governor_rate_rps"), "{text}");
        assert!(text.contains("step=\"up\\\"date\""), "{text}");
        assert!(
            text.contains("crescendo_run_state{state=\"waiting\"} 1"),
            "{text}"
        );
    }
}

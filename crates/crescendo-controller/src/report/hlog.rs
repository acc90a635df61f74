//! `latency.hlog`: the HdrHistogram interval log, one line per second and step with
//! the fleet's merged intended-time latency histogram (values in µs, max in ms).
//! Each line is tagged with its step's name; the log format forbids spaces and
//! commas in tags, so those become `_` (see [`tag`]).

use std::io::Write;
use std::time::Duration;

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

use crate::aggregate::Interval;
use crate::run::RunOutcome;

/// The step name as an interval-log tag: spaces, commas and line breaks become `_`
/// (`hdrhistogram`'s writer would otherwise drop the tag and readers would see an
/// untagged line).
pub(crate) fn tag(step: &str) -> String {
    step.replace([',', ' ', '\r', '\n', '\t'], "_")
}

/// The header line `begin_log_with` writes for the divisor alone.
const DIVISOR_HEADER: &[u8] = b"#[MaxValueDivisor: 1000.000]\n";

fn builder() -> IntervalLogWriterBuilder {
    let mut builder = IntervalLogWriterBuilder::new();
    builder.with_max_value_divisor(1000.0);
    builder
}

/// The whole log: the header, then every second's lines (see
/// [`crate::aggregate::timeline`] for the order and for late lines).
pub(crate) fn write(outcome: &RunOutcome, out: &mut impl Write) -> std::io::Result<()> {
    let mut serializer = V2DeflateSerializer::new();
    let mut builder = builder();
    builder
        .add_comment(&format!(
            "Crescendo run {} of plan {}",
            outcome.run_id, outcome.plan.name
        ))
        .add_comment("values are microseconds; Interval_Max is milliseconds")
        .with_start_time(outcome.started_at)
        .with_base_time(outcome.started_at);
    // The header is written as the log begins.
    builder.begin_log_with(out, &mut serializer)?;
    outcome.aggregate.timeline.write_hlog(out)
}

/// Append the log lines of second `t`, one per step, to `out`.
pub(crate) fn lines(t: u64, interval: &Interval, out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut serializer = V2DeflateSerializer::new();
    let start = out.len();
    let builder = builder();
    let mut writer = builder.begin_log_with(out, &mut serializer)?;
    for (step, stats) in &interval.steps {
        let tag = tag(step);
        writer
            .write_histogram(
                &stats.latency,
                Duration::from_secs(t),
                Duration::from_secs(1),
                Tag::new(&tag),
            )
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    }
    // Only the lines: drop the header the writer began with.
    if out[start..].starts_with(DIVISOR_HEADER) {
        out.drain(start..start + DIVISOR_HEADER.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::tag;

    #[test]
    fn step_names_become_valid_tags() {
        assert_eq!(tag("update"), "update");
        assert_eq!(tag("read back, twice\n"), "read_back__twice_");
        assert!(hdrhistogram::serialization::interval_log::Tag::new(&tag("a b,c")).is_some());
    }
}

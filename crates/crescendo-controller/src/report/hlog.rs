//! `latency.hlog`: the HdrHistogram interval log, one line per second and step with
//! the fleet's merged intended-time latency histogram (values in µs, max in ms).
//! Each line is tagged with its step's name; the log format forbids spaces and
//! commas in tags, so those become `_` (see [`tag`]).

use std::io::Write;
use std::time::Duration;

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

use crate::run::RunOutcome;

/// The step name as an interval-log tag: spaces, commas and line breaks become `_`
/// (`hdrhistogram`'s writer would otherwise drop the tag and readers would see an
/// untagged line).
pub(crate) fn tag(step: &str) -> String {
    step.replace([',', ' ', '\r', '\n', '\t'], "_")
}

pub(crate) fn write(outcome: &RunOutcome, out: &mut impl Write) -> std::io::Result<()> {
    let mut serializer = V2DeflateSerializer::new();
    let mut builder = IntervalLogWriterBuilder::new();
    builder
        .add_comment(&format!(
            "Crescendo run {} of plan {}",
            outcome.run_id, outcome.plan.name
        ))
        .add_comment("values are microseconds; Interval_Max is milliseconds")
        .with_start_time(outcome.started_at)
        .with_base_time(outcome.started_at)
        .with_max_value_divisor(1000.0);
    let mut writer = builder.begin_log_with(out, &mut serializer)?;
    for (second, interval) in &outcome.aggregate.intervals {
        for (step, stats) in &interval.steps {
            let tag = tag(step);
            let tag = Tag::new(&tag);
            writer
                .write_histogram(
                    &stats.latency,
                    Duration::from_secs(*second),
                    Duration::from_secs(1),
                    tag,
                )
                .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        }
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

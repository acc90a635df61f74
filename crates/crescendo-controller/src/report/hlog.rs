//! `latency.hlog`: the HdrHistogram interval log, one line per second and step with
//! the fleet's merged intended-time latency histogram (values in µs, max in ms).

use std::io::Write;
use std::time::Duration;

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

use crate::run::RunOutcome;

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
            let tag = Tag::new(step);
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

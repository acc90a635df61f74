//! Splitting a plan into agent shares that add up to the plan exactly, handing each
//! share its data rows, and each agent its part of the plan's ceilings.

use std::collections::BTreeMap;

use crate::error::PlanError;
use crate::model::{AgentCeilings, Ceilings, Data, DataSource, Load, Partition, Plan, Share};
use crate::template::Template;

/// `total / count`, plus 1 for the first `total % count` indexes, so the parts of any
/// total add up to it exactly (10 on 3 = 4 + 3 + 3). 0 for `index >= count`.
pub fn split_evenly(total: u64, count: u32, index: u32) -> u64 {
    if index >= count {
        return 0;
    }
    let count = u64::from(count);
    let index = u64::from(index);
    total / count + u64::from(index < total % count)
}

/// Splits `plan` over `agents` agents. Every agent gets an equal rate fraction (the
/// fractions sum to 1), and the closed model's peak VUs and the open model's
/// `max_in_flight` are divided with [`split_evenly`]. With the closed model each share's
/// `max_in_flight` equals its VUs, since a VU has at most one request in flight.
///
/// Errors (origin `arguments`, line 0): no agents; an open plan whose `max_in_flight` is
/// below the number of agents (each needs at least 1); per-agent data with fewer rows
/// than agents (some agent would have none).
pub fn split(plan: &Plan, agents: u32) -> Result<Vec<Share>, PlanError> {
    plan.split(agents)
}

impl Plan {
    /// See [`split`].
    pub fn split(&self, agents: u32) -> Result<Vec<Share>, PlanError> {
        if agents == 0 {
            return Err(PlanError::arguments(
                "agents",
                "expected at least 1 agent, got 0",
            ));
        }
        let (vus, max_in_flight) = match &self.load {
            Load::Open(open) => {
                if open.max_in_flight < agents {
                    return Err(PlanError::arguments(
                        "load.max_in_flight",
                        format!(
                            "expected at least 1 in flight per agent ({agents} agents), got {}",
                            open.max_in_flight
                        ),
                    ));
                }
                (0, open.max_in_flight)
            }
            Load::Closed(closed) => {
                let peak = closed.peak_vus();
                (peak, peak)
            }
        };
        if let Some(data) = &self.data {
            let sliced = matches!(data.partition, Partition::PerAgent | Partition::Unique);
            let rows = data
                .row_count()
                .filter(|rows| sliced && *rows < u64::from(agents));
            if let Some(rows) = rows {
                let key = match data.source {
                    DataSource::Inline(_) => "data.rows",
                    DataSource::Sequence { .. } => "data.sequence.count",
                    DataSource::File(_) => "data.file",
                };
                return Err(PlanError::arguments(
                    key,
                    format!(
                        "expected at least one row per agent with partition \"per-agent\" or \"unique\" \
                         ({agents} agents), got {rows} rows"
                    ),
                ));
            }
        }
        let part = |total: u32, index: u32| {
            // A part of a u32 total fits a u32.
            u32::try_from(split_evenly(u64::from(total), agents, index)).unwrap_or(total)
        };
        Ok((0..agents)
            .map(|index| Share {
                index,
                count: agents,
                rate_fraction: 1.0 / f64::from(agents),
                vus: part(vus, index),
                max_in_flight: part(max_in_flight, index),
            })
            .collect())
    }
}

/// Each agent's `max_rps` is the fleet's divided by the agents, less this fraction of
/// it, so that the parts never add up above the plan's however the sum is rounded.
const RATE_MARGIN: f64 = 1e-9;

impl Ceilings {
    /// Agent `index` of `count`'s part: [`split_evenly`] of `max_total_requests` (the
    /// parts add up to it exactly; an agent's part may be 0) and `max_rps / count`,
    /// rounded down. It depends on the index and the count alone, never on a rate
    /// fraction or an `Adjust`, so the agent computes it from the plan it validated
    /// itself. With `count` 0 every ceiling set is 0.
    pub fn for_agent(&self, index: u32, count: u32) -> AgentCeilings {
        AgentCeilings {
            max_requests: self
                .max_total_requests
                .map(|total| split_evenly(total, count, index)),
            max_rps: self.max_rps.map(|rate| {
                if count == 0 || index >= count {
                    0.0
                } else {
                    rate / f64::from(count) * (1.0 - RATE_MARGIN)
                }
            }),
        }
    }
}

impl Plan {
    /// The ceilings of the agent holding `share` (see [`Ceilings::for_agent`]).
    pub fn ceilings_for(&self, share: &Share) -> AgentCeilings {
        self.ceilings.for_agent(share.index, share.count)
    }
}

impl Data {
    /// How many rows the data has (before partitioning); `None` for a file, whose rows
    /// are only counted while the controller streams them.
    pub fn row_count(&self) -> Option<u64> {
        match &self.source {
            DataSource::Inline(rows) => Some(rows.len() as u64),
            DataSource::Sequence { count, .. } => Some(*count),
            DataSource::File(_) => None,
        }
    }

    /// The column names every row has.
    pub fn columns(&self) -> Vec<String> {
        match &self.source {
            DataSource::Inline(rows) => rows
                .first()
                .map(|row| row.keys().cloned().collect())
                .unwrap_or_default(),
            DataSource::Sequence { var, .. } => vec![var.clone()],
            DataSource::File(file) => file.columns.clone(),
        }
    }

    /// Row `i` (0-based) of the data, or `None` past the end (always `None` for a file).
    pub fn row(&self, i: u64) -> Option<BTreeMap<String, String>> {
        self.rows_from(i, 1).next()
    }

    /// Rows `start`, `start + step`, … (`step` >= 1), with a sequence's format parsed once.
    fn rows_from(
        &self,
        start: u64,
        step: u64,
    ) -> Box<dyn Iterator<Item = BTreeMap<String, String>> + '_> {
        let step = step.max(1);
        match &self.source {
            DataSource::Inline(rows) => {
                let start = usize::try_from(start).unwrap_or(usize::MAX);
                let step = usize::try_from(step).unwrap_or(usize::MAX);
                Box::new(rows.iter().skip(start).step_by(step).cloned())
            }
            DataSource::Sequence { var, format, count } => {
                let format = Template::parse(format);
                Box::new(
                    (start..*count)
                        .step_by(usize::try_from(step).unwrap_or(usize::MAX))
                        .map(move |i| {
                            let n = (i + 1).to_string();
                            let value = format.render_to_string(|name| {
                                (name == "n").then_some(n.as_str().into())
                            });
                            BTreeMap::from([(var.clone(), value)])
                        }),
                )
            }
            // A file's rows are streamed by the controller, not held in the plan.
            DataSource::File(_) => Box::new(std::iter::empty()),
        }
    }

    /// The rows `share` works on: with `per-agent` and `unique`, row `i` goes to agent
    /// `i % count` (disjoint slices); with `shared`, every agent gets all rows. The
    /// controller streams a file's rows with the same rule; for a file this is empty.
    pub fn rows_for(&self, share: &Share) -> Vec<BTreeMap<String, String>> {
        let (start, step) = match self.partition {
            Partition::PerAgent | Partition::Unique if share.count > 0 => {
                (u64::from(share.index), u64::from(share.count))
            }
            _ => (0, 1),
        };
        self.rows_from(start, step).collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::model::OnExhausted;

    fn share(index: u32, count: u32) -> Share {
        Share {
            index,
            count,
            rate_fraction: 1.0 / f64::from(count),
            vus: 0,
            max_in_flight: 1,
        }
    }

    #[test]
    fn ten_on_three() {
        let parts: Vec<u64> = (0..3).map(|i| split_evenly(10, 3, i)).collect();
        assert_eq!(parts, [4, 3, 3]);
        assert_eq!(split_evenly(10, 3, 3), 0);
        assert_eq!(split_evenly(10, 0, 0), 0);
    }

    #[test]
    fn sequence_rows_and_partitions() {
        let data = Data {
            source: DataSource::Sequence {
                var: "flowId".into(),
                format: "flow-{n}".into(),
                count: 5,
            },
            partition: Partition::PerAgent,
            on_exhausted: OnExhausted::StopAgent,
        };
        let ids = |rows: Vec<BTreeMap<String, String>>| {
            rows.into_iter()
                .map(|r| r["flowId"].clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(data.rows_for(&share(0, 2))),
            ["flow-1", "flow-3", "flow-5"]
        );
        assert_eq!(ids(data.rows_for(&share(1, 2))), ["flow-2", "flow-4"]);
        let shared = Data {
            partition: Partition::Shared,
            ..data.clone()
        };
        assert_eq!(shared.rows_for(&share(1, 2)).len(), 5);
        assert_eq!(data.columns(), ["flowId"]);
        assert_eq!(data.row(5), None);
    }

    #[test]
    fn inline_rows_partition() {
        let rows: Vec<BTreeMap<String, String>> = ["a", "b", "c"]
            .iter()
            .map(|v| BTreeMap::from([("id".to_string(), v.to_string())]))
            .collect();
        let data = Data {
            source: DataSource::Inline(rows),
            partition: Partition::PerAgent,
            on_exhausted: OnExhausted::StopAgent,
        };
        assert_eq!(data.rows_for(&share(2, 3))[0]["id"], "c");
        assert_eq!(data.rows_for(&share(0, 3)).len(), 1);
        assert_eq!(data.row_count(), Some(3));
        let unique = Data {
            partition: Partition::Unique,
            ..data.clone()
        };
        assert_eq!(unique.rows_for(&share(2, 3)), data.rows_for(&share(2, 3)));
    }

    proptest! {
        #[test]
        fn parts_sum_to_the_total(total in any::<u64>(), count in 1u32..10_000) {
            let sum: u128 = (0..count).map(|i| u128::from(split_evenly(total, count, i))).sum();
            prop_assert_eq!(sum, u128::from(total));
            let max = split_evenly(total, count, 0);
            let min = split_evenly(total, count, count - 1);
            prop_assert!(max - min <= 1);
        }

        #[test]
        fn agent_ceilings_never_add_up_above_the_plan(
            total in 1u64..=i64::MAX as u64,
            rate in prop_oneof![1e-9..1.0f64, 1.0..=crate::MAX_RATE],
            count in 1u32..5_000,
        ) {
            let plan = Ceilings { max_total_requests: Some(total), max_rps: Some(rate) };
            let parts: Vec<AgentCeilings> = (0..count).map(|i| plan.for_agent(i, count)).collect();
            let requests: u128 = parts.iter().map(|p| u128::from(p.max_requests.unwrap())).sum();
            prop_assert_eq!(requests, u128::from(total));
            let rates: f64 = parts.iter().map(|p| p.max_rps.unwrap()).sum();
            prop_assert!(rates <= rate, "{} > {}", rates, rate);
            prop_assert!(rates >= rate * (1.0 - 1e-6));
            prop_assert!(parts.iter().all(|p| p.max_rps.unwrap() > 0.0));
            prop_assert_eq!(plan.for_agent(count, count).max_requests, Some(0));
            prop_assert_eq!(Ceilings::default().for_agent(0, count), AgentCeilings::default());
        }

        #[test]
        fn per_agent_rows_are_disjoint_and_complete(count in 1u64..60, agents in 1u32..10) {
            let data = Data {
                source: DataSource::Sequence { var: "v".into(), format: "{n}".into(), count },
                partition: Partition::PerAgent,
                on_exhausted: OnExhausted::StopAgent,
            };
            let mut seen: Vec<u64> = (0..agents)
                .flat_map(|i| data.rows_for(&share(i, agents)))
                .map(|row| row["v"].parse().unwrap())
                .collect();
            seen.sort_unstable();
            prop_assert_eq!(seen, (1..=count).collect::<Vec<_>>());
        }
    }
}

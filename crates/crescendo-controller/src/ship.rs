//! Shipping a plan's files to the agents of a run.
//!
//! Body files and a data file's header line ride with `Assign` (see
//! [`crescendo_plan::Plan::bundle_files`]), so every agent validates the very plan the
//! controller validated. A data file's rows follow as `DataChunk` messages: the file is
//! read row by row and never held whole, row `i` goes to the agent with share index
//! `i % agents` (`per-agent`, `unique`) or to every agent (`shared`), and each agent
//! answers `Ready` only after its last chunk. Sends wait for room on the agent's stream,
//! so a slow agent slows the shipping down instead of growing a queue.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use crescendo_plan::{DataFile, DataSource, DirFiles, Partition, Plan};

use crate::error::{ControllerError, ShipError};
use crate::messages::{AgentTx, DataChunk, ToAgent};

/// A chunk is sent once it holds this many bytes of JSON Lines.
const CHUNK_BYTES: usize = 64 * 1024;

/// How long one chunk may wait for room on an agent's stream.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// What a run ships besides the plan text.
#[derive(Debug, Default, Clone)]
pub(crate) struct Shipment {
    /// For `Assign.files`.
    pub(crate) files: BTreeMap<String, Vec<u8>>,
    /// The data file whose rows are streamed, and the directory it is read from.
    data: Option<(DataFile, Partition, DirFiles)>,
}

impl Shipment {
    /// What `plan` needs shipped, reading from `files` (the plan's directory).
    /// A plan without `body_file` or a data file ships nothing and needs no directory.
    pub(crate) fn for_plan(plan: &Plan, files: Option<&DirFiles>) -> Result<Self, ShipError> {
        let data = plan.data.as_ref().and_then(|d| match &d.source {
            DataSource::File(file) => Some((file.clone(), d.partition)),
            _ => None,
        });
        let needs_files =
            data.is_some() || plan.scenario.steps.iter().any(|s| s.body_file.is_some());
        if !needs_files {
            return Ok(Self::default());
        }
        let Some(dir) = files else {
            return Err(ShipError::NoDirectory);
        };
        let bundle = plan.bundle_files(dir).map_err(ShipError::Bundle)?;
        Ok(Self {
            files: bundle,
            data: data.map(|(file, partition)| (file, partition, dir.clone())),
        })
    }

    /// Whether rows follow `Assign` as chunks.
    pub(crate) fn streams_rows(&self) -> bool {
        self.data.is_some()
    }
}

/// Rows waiting to be sent to one agent.
#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    rows: u64,
}

/// Whether `rows` rows feed `agents` agents: a sliced partition (`per-agent`,
/// `unique`) needs one row per agent, or some agent would run without its variables
/// (the plan's own rows are checked by `split`; a file's count is known only here).
fn enough_rows(
    path: &str,
    rows: u64,
    agents: usize,
    partition: Partition,
) -> Result<(), ShipError> {
    let needed = match partition {
        Partition::Shared => 1,
        Partition::PerAgent | Partition::Unique => agents as u64,
    };
    let path = path.to_owned();
    match rows {
        0 => Err(ShipError::NoRows { path }),
        _ if rows < needed => Err(ShipError::TooFewRows { path, agents, rows }),
        _ => Ok(()),
    }
}

/// Stream the data file's rows to `agents` (in share index order). Returns the number
/// of rows read. A bad row or an agent that cannot take its rows fails the run before
/// any load starts.
pub(crate) async fn ship_rows(
    run_id: &str,
    agents: &[(String, AgentTx)],
    shipment: &Shipment,
) -> Result<u64, ControllerError> {
    let Some((file, partition, dir)) = &shipment.data else {
        return Ok(0);
    };
    let path = dir.resolve(&file.path).display().to_string();
    let reader = dir.open(&file.path).map_err(|source| ShipError::Open {
        path: path.clone(),
        source,
    })?;
    let mut pending: Vec<Pending> = agents.iter().map(|_| Pending::default()).collect();
    let mut read = 0u64;
    for (i, row) in crescendo_plan::read_rows(file, reader).enumerate() {
        let row = row.map_err(|source| ShipError::Row {
            path: path.clone(),
            source,
        })?;
        let mut line = serde_json::to_vec(&row).expect("a map of strings serialises");
        line.push(b'\n');
        read += 1;
        let targets: Vec<usize> = match partition {
            Partition::Shared => (0..agents.len()).collect(),
            Partition::PerAgent | Partition::Unique => vec![i % agents.len()],
        };
        for t in targets {
            let p = &mut pending[t];
            p.bytes.write_all(&line).expect("writing to a Vec");
            p.rows += 1;
            if p.bytes.len() >= CHUNK_BYTES {
                let full = std::mem::take(p);
                send_chunk(run_id, &agents[t], full, false).await?;
            }
        }
    }
    enough_rows(&path, read, agents.len(), *partition)?;
    for (agent, rest) in agents.iter().zip(pending) {
        send_chunk(run_id, agent, rest, true).await?;
    }
    Ok(read)
}

/// Send one chunk, waiting up to [`SEND_TIMEOUT`] for room on the agent's stream.
async fn send_chunk(
    run_id: &str,
    (agent, tx): &(String, AgentTx),
    pending: Pending,
    last: bool,
) -> Result<(), ControllerError> {
    let chunk = DataChunk {
        run_id: run_id.to_owned(),
        rows_jsonl: pending.bytes,
        rows: pending.rows,
        last,
    };
    match tokio::time::timeout(SEND_TIMEOUT, tx.send(ToAgent::Data(chunk))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(ControllerError::DataNotTaken {
            agent: agent.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sliced_file_needs_a_row_per_agent() {
        assert!(enough_rows("f", 1, 3, Partition::Shared).is_ok());
        assert!(enough_rows("f", 3, 3, Partition::PerAgent).is_ok());
        let e = enough_rows("f", 2, 3, Partition::PerAgent)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("f: data.file: expected at least one row per agent"),
            "{e}"
        );
        assert!(e.contains("(3 agents), got 2 rows"), "{e}");
        assert!(enough_rows("f", 2, 3, Partition::Unique).is_err());
        let e = enough_rows("f", 0, 1, Partition::Shared)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no data rows after the header"), "{e}");
    }
}

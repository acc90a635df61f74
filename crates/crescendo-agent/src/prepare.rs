//! Preparing an assigned run: the plan parsed again on the agent (with the files the
//! controller shipped), the share checked, secrets resolved, and streamed data rows
//! received into the run's spool file before the agent answers `Ready`.

use crescendo_plan::{Plan, Share};
use crescendo_proto::v1 as pb;

use crate::auth::AuthConfig;
use crate::feeder::Feeder;
use crate::from_plan::{self, DataInput, DataSetup};
use crate::spool::{SpoolFile, SpoolWriter};

/// A run that was assigned and validated, waiting for its data rows (when the
/// controller streams them) and its start.
#[derive(Debug)]
pub(crate) struct PreparedRun {
    pub(crate) run_id: String,
    pub(crate) plan: Plan,
    pub(crate) share: Share,
    pub(crate) auth: AuthConfig,
    pub(crate) data: DataSetup,
    spool: Spool,
}

/// Streamed data rows on their way to the spool file.
#[derive(Debug)]
enum Spool {
    /// The plan's rows are not streamed.
    NotStreamed,
    Receiving(SpoolWriter),
    Received(SpoolFile),
}

/// Validate an assignment on agent `agent_id`: the plan must parse here too, and its
/// secrets must resolve from this agent's environment or files.
pub(crate) fn prepare_run(assign: pb::Assign, agent_id: &str) -> Result<PreparedRun, String> {
    let files = crescendo_plan::BundleFiles(assign.files.into_iter().collect());
    let plan = crescendo_plan::parse_with(&assign.plan_toml, "assigned plan", &files)
        .map_err(|e| e.to_string())?;
    let share = assign.share.ok_or("assignment without a share")?;
    if share.count == 0 || share.index >= share.count {
        return Err(format!("bad share {}/{}", share.index, share.count));
    }
    let share = Share {
        index: share.index,
        count: share.count,
        rate_fraction: share.rate_fraction,
        vus: share.vus,
        max_in_flight: share.max_in_flight.max(1),
    };
    let auth = from_plan::auth_config(&plan, &share)?;
    let data = from_plan::data_setup(&plan, &share);
    let spool = match (&data.input, assign.data_streamed) {
        (DataInput::Streamed, true) => {
            Spool::Receiving(SpoolWriter::create(&assign.run_id, agent_id)?)
        }
        (DataInput::Streamed, false) => {
            return Err("the plan reads a data file but the controller streams no rows".into());
        }
        (_, true) => return Err("data rows streamed for a plan without a data file".into()),
        (_, false) => Spool::NotStreamed,
    };
    Ok(PreparedRun {
        run_id: assign.run_id,
        plan,
        share,
        auth,
        data,
        spool,
    })
}

impl PreparedRun {
    /// Whether streamed data rows are still expected (the agent is not ready yet).
    pub(crate) fn awaiting_data(&self) -> bool {
        matches!(self.spool, Spool::Receiving(_))
    }

    /// Take one chunk of streamed rows; true once the last one has arrived. An error
    /// (a malformed chunk, a full disk) fails the preparation.
    pub(crate) fn receive(&mut self, chunk: &pb::DataChunk) -> Result<bool, String> {
        let Spool::Receiving(writer) = &mut self.spool else {
            return Err("data rows arrived that were not expected".into());
        };
        writer.append(chunk)?;
        if !chunk.last {
            return Ok(false);
        }
        let Spool::Receiving(writer) = std::mem::replace(&mut self.spool, Spool::NotStreamed)
        else {
            unreachable!("checked above");
        };
        let file = writer.finish()?;
        tracing::info!(run_id = %self.run_id, rows = file.rows(), "data rows received");
        self.spool = Spool::Received(file);
        Ok(true)
    }

    /// The run's feeder (consumes the received spool file).
    pub(crate) fn feeder(&mut self) -> Result<Feeder, String> {
        let mode = self.data.mode;
        match (
            std::mem::replace(&mut self.data.input, DataInput::None),
            std::mem::replace(&mut self.spool, Spool::NotStreamed),
        ) {
            (DataInput::None, _) => Ok(Feeder::none()),
            (DataInput::Rows(rows), _) => Ok(Feeder::memory(rows, mode)),
            (DataInput::Streamed, Spool::Received(file)) => Feeder::spool(file, mode),
            (DataInput::Streamed, _) => Err("data rows were not received".into()),
        }
    }
}

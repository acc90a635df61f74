//! Preparing an assigned run: the plan parsed again on the agent (with the files the
//! controller shipped), the share checked, secrets resolved, and streamed data rows
//! received into the run's spool file before the agent answers `Ready`.

use crescendo_plan::{Plan, PlanError, Share};

use crate::auth::AuthConfig;
use crate::feeder::Feeder;
use crate::from_plan::{self, AuthSetupError, DataInput, DataSetup};
use crate::messages::{Assign, DataChunk};
use crate::spool::{SpoolError, SpoolFile, SpoolWriter};

/// Why an assigned run cannot be prepared (the controller hears it in `Finished`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum PrepareError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Auth(#[from] AuthSetupError),
    #[error("the plan reads a data file but the controller streams no rows")]
    RowsNotStreamed,
    #[error("data rows streamed for a plan without a data file")]
    RowsUnexpected,
    #[error("data rows arrived that were not expected")]
    ChunkUnexpected,
    #[error("data rows were not received")]
    RowsMissing,
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

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
pub(crate) fn prepare_run(assign: Assign, agent_id: &str) -> Result<PreparedRun, PrepareError> {
    let Assign {
        run_id,
        plan_toml,
        share,
        files,
        data_streamed,
    } = assign;
    let files = crescendo_plan::BundleFiles(files.into_iter().collect());
    let plan = crescendo_plan::parse_with(&plan_toml, "assigned plan", &files)?;
    let auth = from_plan::auth_config(&plan, &share)?;
    let data = from_plan::data_setup(&plan, &share);
    let spool = match (&data.input, data_streamed) {
        (DataInput::Streamed, true) => Spool::Receiving(SpoolWriter::create(&run_id, agent_id)?),
        (DataInput::Streamed, false) => return Err(PrepareError::RowsNotStreamed),
        (_, true) => return Err(PrepareError::RowsUnexpected),
        (_, false) => Spool::NotStreamed,
    };
    Ok(PreparedRun {
        run_id,
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
    pub(crate) fn receive(&mut self, chunk: &DataChunk) -> Result<bool, PrepareError> {
        let Spool::Receiving(writer) = &mut self.spool else {
            return Err(PrepareError::ChunkUnexpected);
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
    pub(crate) fn feeder(&mut self) -> Result<Feeder, PrepareError> {
        let mode = self.data.mode;
        match (
            std::mem::replace(&mut self.data.input, DataInput::None),
            std::mem::replace(&mut self.spool, Spool::NotStreamed),
        ) {
            (DataInput::None, _) => Ok(Feeder::none()),
            (DataInput::Rows(rows), _) => Ok(Feeder::memory(rows, mode)),
            (DataInput::Streamed, Spool::Received(file)) => Ok(Feeder::spool(file, mode)?),
            (DataInput::Streamed, _) => Err(PrepareError::RowsMissing),
        }
    }
}

//! The bridge from the plan's model (`crescendo_plan`) to the agent's own run
//! configuration: auth with its secrets resolved, data feeding, step captures and
//! checks. Everything else in the agent programs against the agent's types.

use crescendo_plan::{Auth, DataSource, Partition, Plan, Share, Step};

use crate::auth::{AuthConfig, OAuthSettings, SecretSpec, resolve};
use crate::capture::{CaptureRule, CheckRule, Expected};
use crate::context::OnExhausted;
use crate::feeder::{Mode, Row};

/// How this agent gets its data rows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DataInput {
    /// No `[data]`.
    None,
    /// Inline rows or a sequence, materialised from the plan.
    Rows(Vec<Row>),
    /// A data file: the controller streams this agent's rows after `Assign`.
    Streamed,
}

/// This agent's data feeding.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DataSetup {
    pub(crate) input: DataInput,
    pub(crate) mode: Mode,
    pub(crate) on_exhausted: OnExhausted,
}

/// The step's captures and checks.
pub(crate) fn step_rules(step: &Step) -> (Vec<CaptureRule>, Vec<CheckRule>) {
    let captures = step
        .captures
        .iter()
        .map(|c| CaptureRule {
            var: c.var.clone(),
            pointer: c.pointer.clone(),
        })
        .collect();
    let checks = step
        .checks
        .iter()
        .map(|c| CheckRule {
            pointer: c.pointer.clone(),
            expected: Expected::from_value(c.equals.clone()),
        })
        .collect();
    (captures, checks)
}

fn secret(spec: &crescendo_plan::Secret) -> SecretSpec {
    match spec {
        crescendo_plan::Secret::Env(name) => SecretSpec::Env(name.clone()),
        crescendo_plan::Secret::File(path) => SecretSpec::File(path.clone()),
    }
}

/// The plan's auth for agent `share.index`, with secrets read from this agent's
/// environment or files.
pub(crate) fn auth_config(plan: &Plan, share: &Share) -> Result<AuthConfig, String> {
    Ok(match &plan.auth {
        Auth::None => AuthConfig::None,
        Auth::Bearer { token } => {
            AuthConfig::Bearer(resolve(&secret(token)).map_err(|e| format!("auth token: {e}"))?)
        }
        Auth::OAuth2ClientCredentials(oauth) => {
            if oauth.clients.is_empty() {
                return Err("auth: no oauth client".into());
            }
            let client = oauth.client_for(share.index);
            let client_id =
                resolve(&secret(&client.client_id)).map_err(|e| format!("auth client_id: {e}"))?;
            let client_secret = resolve(&secret(&client.client_secret))
                .map_err(|e| format!("auth client_secret: {e}"))?;
            AuthConfig::OAuth(OAuthSettings {
                token_url: oauth.token_url.clone(),
                client_id,
                client_secret,
                scope: oauth.scope.clone(),
                refresh_before: oauth.refresh_before,
                max_retry_after: plan.backoff.max_retry_after,
            })
        }
    })
}

/// This agent's data rows.
pub(crate) fn data_setup(plan: &Plan, share: &Share) -> DataSetup {
    let Some(data) = &plan.data else {
        return DataSetup {
            input: DataInput::None,
            mode: Mode::Cycle,
            on_exhausted: OnExhausted::StopAgent,
        };
    };
    let input = match &data.source {
        DataSource::File(_) => DataInput::Streamed,
        DataSource::Inline(_) | DataSource::Sequence { .. } => {
            DataInput::Rows(data.rows_for(share))
        }
    };
    DataSetup {
        input,
        mode: match data.partition {
            Partition::Unique => Mode::Once,
            Partition::PerAgent | Partition::Shared => Mode::Cycle,
        },
        on_exhausted: match data.on_exhausted {
            crescendo_plan::OnExhausted::StopAgent => OnExhausted::StopAgent,
            crescendo_plan::OnExhausted::StopRun => OnExhausted::StopRun,
        },
    }
}

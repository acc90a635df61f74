//! The bridge from the plan's model (`crescendo_plan`) to the agent's own run
//! configuration: auth with its secrets resolved, data feeding, and the retry policy. (Steps, with
//! their captures and checks, are prepared from the plan in `request`.)

use crescendo_backoff::{Policy, RetryConfig};
use crescendo_plan::{Auth, DataSource, Partition, Plan, Share};

use crate::auth::{AuthConfig, OAuthSettings, SecretError, SecretSpec, resolve};
use crate::feeder::{Mode, OnExhausted, Row};

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

fn secret(spec: &crescendo_plan::Secret) -> SecretSpec {
    match spec {
        crescendo_plan::Secret::Env(name) => SecretSpec::Env(name.clone()),
        crescendo_plan::Secret::File(path) => SecretSpec::File(path.clone()),
    }
}

/// Why the plan's auth cannot be set up on this agent.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthSetupError {
    #[error("auth {what}")]
    Secret {
        /// Which secret: `token`, `client_id` or `client_secret`.
        what: &'static str,
        #[source]
        source: SecretError,
    },
    #[error("auth: no oauth client")]
    NoClient,
}

/// The plan's auth for agent `share.index`, with secrets read from this agent's
/// environment or files.
pub(crate) fn auth_config(plan: &Plan, share: &Share) -> Result<AuthConfig, AuthSetupError> {
    let read = |what, spec| {
        resolve(&secret(spec)).map_err(|source| AuthSetupError::Secret { what, source })
    };
    Ok(match &plan.auth {
        Auth::None => AuthConfig::None,
        Auth::Bearer { token } => AuthConfig::Bearer(read("token", token)?),
        Auth::OAuth2ClientCredentials(oauth) => {
            if oauth.clients.is_empty() {
                return Err(AuthSetupError::NoClient);
            }
            let client = oauth.client_for(share.index);
            AuthConfig::OAuth(OAuthSettings {
                token_url: oauth.token_url.clone(),
                client_id: read("client_id", &client.client_id)?,
                client_secret: read("client_secret", &client.client_secret)?,
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

/// The plan's `[backoff]` as the agent's retry configuration.
pub(crate) fn retry_config(plan: &Plan) -> RetryConfig {
    let b = &plan.backoff;
    RetryConfig {
        policy: match b.policy {
            crescendo_plan::Policy::None => Policy::None,
            crescendo_plan::Policy::RetryAfter => Policy::RetryAfter,
            crescendo_plan::Policy::Exponential => Policy::Exponential,
            crescendo_plan::Policy::Coordinated => Policy::Coordinated,
        },
        max_retries: b.max_retries,
        retry_budget: b.retry_budget,
        max_retry_after: b.max_retry_after,
        base: b.base,
        cap: b.cap,
    }
}

//! Actions: what the synchronous call and the `connector.action` job share, and the job.
//!
//! [`PreparedAction`] is an action ready to run: its connector, its input check and its
//! output mapping (compiled before anything is sent), and one execution through the provider
//! call stack with the output's size cap.
//!
//! `connector.action` runs an `"async": true` action as run `run_id` of its payload, and
//! writes what it came to in `action_results` ([`super::action_results`]), which
//! `GET /v1/runs/{run_id}` shows. The input and the caller's `Idempotency-Key` travel in the
//! job's payload as plain JSON, as every job payload here does (sealed data lives in the
//! tables that own it, which a data-key rotation re-seals); the run's own payload leaves the
//! input out, as the synchronous path's does, so a run retried through `/v1/runs` has no
//! input and fails saying so.
//!
//! Retries follow the call stack's rule (`switchyard_http::retry`): an action is sent again
//! only when repeating it cannot do the work twice: its method is idempotent, its manifest
//! declares it `idempotent`, or it carries the caller's key in the provider's
//! `idempotency_header`. Any other action's job allows one attempt, and the job engine never
//! starts a job past its attempts, not even after a lost lease (a worker that died, perhaps
//! after sending): the job is dead and its run failed, without a second send.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use switchyard_connectors::manifest::ErrorKind;
use switchyard_connectors::store::Connection;
use switchyard_connectors::unified::CompiledActionMapping;
use switchyard_connectors::{CallContext, Connector, ConnectorError};
use switchyard_core::{ConnectionId, ErrorCode, TenantId};
use switchyard_http::Repeatability;
use switchyard_jobs::queue::{self, FailureClass, Job, JobError, NewJob};
use switchyard_jobs::runs::{Failure, NewRun, RunId, RunStore, RunTrigger};
use switchyard_jobs::worker::JobHandler;
use switchyard_store::Database;

use super::action_results::{ActionOutput, ActionProblem, ActionResult, ActionResults};
use super::{ConnectorService, connector_error};
use crate::error::ApiError;

/// The job kind, and the kind of every action's run (synchronous ones too).
pub const ACTION_JOB: &str = "connector.action";

/// The subject of an action's run.
pub fn subject(connection: ConnectionId, action: &str) -> String {
    format!("connection:{connection}/action:{action}")
}

/// An action of a provider, ready to run.
pub struct PreparedAction {
    name: String,
    connector: Arc<dyn Connector>,
    input_schema: Value,
    mapping: Option<CompiledActionMapping>,
    /// Sending it twice is harmless: an idempotent method, or declared `idempotent`.
    idempotent: bool,
    /// The provider reads an idempotency key from a header (`idempotency_header`).
    takes_key: bool,
}

impl PreparedAction {
    /// `provider`'s action `name`; `not_found` when either is unknown.
    pub fn new(service: &ConnectorService, provider: &str, name: &str) -> Result<Self, ApiError> {
        let connector = service.connector(provider)?;
        let info = connector
            .metadata()
            .actions
            .iter()
            .find(|a| a.name == name)
            .ok_or_else(|| ApiError::not_found(format_args!("action `{name}` of `{provider}`")))?;
        let (input_schema, mut idempotent) = (info.input_schema.clone(), info.idempotent);
        let spec = service
            .catalogue
            .registry()
            .manifest(provider)
            .and_then(|manifest| manifest.action(name).cloned());
        let mut takes_key = false;
        let mut mapping = None;
        if let Some(spec) = spec {
            idempotent |= reqwest::Method::from_bytes(spec.request.method.as_bytes())
                .is_ok_and(|method| Repeatability::of(&method).idempotent);
            takes_key = spec.idempotency_header.is_some();
            // Compiled before anything is sent: the loader has checked it, so this fails
            // only on a bug, which must not surface after the provider acted.
            mapping = spec
                .unified
                .as_ref()
                .map(CompiledActionMapping::new)
                .transpose()
                .map_err(ApiError::internal)?;
        }
        Ok(Self {
            name: name.to_owned(),
            connector,
            input_schema,
            mapping,
            idempotent,
            takes_key,
        })
    }

    /// Checks `input` against the action's schema, as the connector does before sending,
    /// so a bad input is refused before the action has a run.
    pub fn check_input(&self, input: &Value) -> Result<(), ApiError> {
        let validator = jsonschema::validator_for(&self.input_schema)
            .map_err(|error| ApiError::internal(format!("action input schema: {error}")))?;
        let problems: Vec<String> = validator
            .iter_errors(input)
            .map(|error| {
                let at = error.instance_path().to_string();
                if at.is_empty() {
                    error.to_string()
                } else {
                    format!("{at}: {error}")
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(connector_error(ConnectorError::InvalidInput(problems)))
        }
    }

    /// Whether sending it again after a failure that may have reached the provider is safe.
    pub fn repeatable(&self, idempotency_key: Option<&str>) -> bool {
        self.idempotent || (self.takes_key && idempotency_key.is_some())
    }

    /// Sends the action through the call stack; its output if it fits
    /// `connectors.max_action_output_bytes`, with the output's unified form.
    pub async fn run(
        &self,
        service: &ConnectorService,
        connection: &Connection,
        input: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<ActionOutput, ActionError> {
        let context = ConnectorService::context(connection);
        let cx = CallContext {
            calls: service.calls(),
            connection: &context,
        };
        let output = self
            .connector
            .execute_action(cx, &self.name, input, idempotency_key)
            .await
            .map_err(ActionError::Connector)?;
        let limit = service.max_action_output_bytes;
        let size = serde_json::to_vec(&output).map_or(usize::MAX, |bytes| bytes.len());
        if size > limit {
            return Err(ActionError::TooLarge { size, limit });
        }
        let (unified, mapping_error) = match self
            .mapping
            .as_ref()
            // `template` fields read the connection's settings (Jira's site for a browse link).
            .map(|mapping| {
                mapping
                    .clone()
                    .with_config(connection.config.clone())
                    .apply(&connection.provider, input, &output)
            }) {
            None => (None, None),
            Some(Ok(unified)) => (Some(unified), None),
            Some(Err(error)) => (None, Some(error.to_string())),
        };
        Ok(ActionOutput {
            output,
            unified,
            mapping_error,
        })
    }
}

/// Why an action did not give an output.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error(transparent)]
    Connector(ConnectorError),
    /// The action ran, but its output is over `connectors.max_action_output_bytes`.
    #[error("the output is {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
}

impl ActionError {
    fn class(&self) -> FailureClass {
        let error = match self {
            Self::Connector(error) => error,
            Self::TooLarge { .. } => return FailureClass::InvalidResponse,
        };
        match error {
            ConnectorError::Provider(error) => JobError::from(error).class,
            ConnectorError::ProviderStatus {
                status: 401 | 403, ..
            } => FailureClass::Auth,
            ConnectorError::ProviderStatus { status: 429, .. } => FailureClass::RateLimited,
            ConnectorError::Refused { kind, .. } => match kind {
                ErrorKind::AuthFailed | ErrorKind::PermissionDenied => FailureClass::Auth,
                ErrorKind::RateLimited => FailureClass::RateLimited,
                ErrorKind::NotFound | ErrorKind::ProviderError => FailureClass::InvalidResponse,
            },
            ConnectorError::ProviderStatus { status: 500.., .. } => {
                FailureClass::ProviderUnavailable
            }
            _ => FailureClass::InvalidResponse,
        }
    }

    /// The failure its run records.
    pub fn failure(&self) -> Failure {
        Failure {
            class: self.class(),
            message: self.to_string(),
        }
    }

    /// The job's failure: its class decides a retry, after the wait the stack knows of.
    fn job_error(&self) -> JobError {
        let error = JobError::new(self.class(), self.to_string());
        match self {
            Self::Connector(ConnectorError::Provider(provider)) => {
                match JobError::from(provider).retry_after {
                    Some(wait) => error.with_retry_after(wait),
                    None => error,
                }
            }
            _ => error,
        }
    }

    /// The problem the synchronous call answers; `run` recorded the call.
    pub fn into_problem(self, run: RunId) -> ApiError {
        match self {
            Self::Connector(error) => connector_error(error),
            Self::TooLarge { size, limit } => ApiError::new(ErrorCode::ProviderError).with_detail(format!(
                "the action ran (run {run}), but its output of {size} bytes is over connectors.max_action_output_bytes ({limit})"
            )),
        }
    }

    /// What an asynchronous action's run shows: the synchronous problem's code and reason,
    /// with the run's failure message.
    fn into_stored(self, run: RunId) -> ActionProblem {
        let message = self.to_string();
        let reason = match &self {
            Self::Connector(ConnectorError::Refused { kind, .. }) => Some(kind.code().to_owned()),
            _ => None,
        };
        ActionProblem {
            code: self.into_problem(run).code().as_str().to_owned(),
            reason,
            message,
        }
    }
}

/// An accepted `"async": true` call, to enqueue.
pub struct AcceptedAction<'a> {
    pub connection: &'a Connection,
    pub action: &'a str,
    pub input: Value,
    pub idempotency_key: Option<String>,
    /// From [`PreparedAction::repeatable`]: decides the job's attempts.
    pub repeatable: bool,
}

/// Creates the action's run (`queued`) and its `connector.action` job.
pub async fn enqueue_action(
    database: &Database,
    runs: &RunStore,
    accepted: AcceptedAction<'_>,
) -> Result<RunId, ApiError> {
    let (tenant, connection) = (accepted.connection.tenant_id, accepted.connection.id);
    let run = runs
        .create_run(NewRun {
            tenant: Some(tenant),
            subject: subject(connection, accepted.action),
            trigger: RunTrigger::Manual,
            kind: ACTION_JOB.to_owned(),
            payload: json!({"connection_id": connection.to_string(), "action": accepted.action}),
            job_id: None,
        })
        .await
        .map_err(ApiError::internal)?;
    let payload = json!({
        "connection_id": connection.to_string(),
        "action": accepted.action,
        "run_id": run.id.to_string(),
        "input": accepted.input,
        "idempotency_key": accepted.idempotency_key,
    });
    let mut job = NewJob::new(ACTION_JOB, payload)
        .tenant(tenant)
        .unique_key(format!("action:{}", run.id));
    if !accepted.repeatable {
        job = job.max_attempts(1);
    }
    let enqueued = match queue::enqueue(database, job).await {
        Ok(enqueued) => enqueued,
        Err(error) => {
            // No job will run it: the run must not wait as `queued` forever.
            if let Err(error) = runs.cancel_run(Some(tenant), run.id).await {
                tracing::warn!(%error, run_id = %run.id, "could not cancel an action's run");
            }
            return Err(ApiError::internal(error));
        }
    };
    runs.attach_job(Some(tenant), run.id, &enqueued.id.to_string())
        .await
        .map_err(ApiError::internal)?;
    Ok(run.id)
}

/// What an action job names.
struct ActionPayload {
    tenant: TenantId,
    connection: ConnectionId,
    action: String,
    run: RunId,
    /// Absent from a run retried through `/v1/runs`: runs do not keep inputs.
    input: Option<Value>,
    idempotency_key: Option<String>,
}

impl ActionPayload {
    fn parse(job: &Job) -> Result<Self, JobError> {
        let bad = |what: &str| {
            JobError::new(
                FailureClass::InvalidResponse,
                format!("action job payload: {what}"),
            )
        };
        let text = |name: &str| job.payload[name].as_str().ok_or_else(|| bad(name));
        Ok(Self {
            tenant: job.tenant.ok_or_else(|| bad("tenant"))?,
            connection: text("connection_id")?
                .parse()
                .map_err(|_| bad("connection_id"))?,
            action: text("action")?.to_owned(),
            run: text("run_id")?.parse().map_err(|_| bad("run_id"))?,
            input: job.payload.get("input").cloned(),
            idempotency_key: job.payload["idempotency_key"].as_str().map(str::to_owned),
        })
    }
}

/// Runs `connector.action` jobs.
pub struct ActionHandler {
    pub service: ConnectorService,
    pub results: ActionResults,
}

#[async_trait]
impl JobHandler for ActionHandler {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let payload = ActionPayload::parse(job)?;
        let Some(input) = &payload.input else {
            let problem = ApiError::new(ErrorCode::Conflict)
                .with_detail("runs do not keep an action's input: call the action again");
            return Err(self
                .refuse(&payload, problem, FailureClass::InvalidResponse)
                .await);
        };
        let connection = match self
            .service
            .connections
            .get(&payload.tenant, &payload.connection)
            .await
        {
            Ok(Some(connection)) => connection,
            Ok(None) => {
                let problem =
                    ApiError::not_found(format_args!("connection `{}`", payload.connection));
                return Err(self
                    .refuse(&payload, problem, FailureClass::InvalidResponse)
                    .await);
            }
            Err(error) => return Err(JobError::internal(error.code())),
        };
        if let Err(problem) = ConnectorService::usable(&connection) {
            let class = match problem.code() {
                ErrorCode::ReauthorizationRequired => FailureClass::Auth,
                _ => FailureClass::InvalidResponse,
            };
            return Err(self.refuse(&payload, problem, class).await);
        }
        let prepared =
            match PreparedAction::new(&self.service, &connection.provider, &payload.action) {
                Ok(prepared) => prepared,
                Err(problem) => {
                    let class = match problem.code() {
                        ErrorCode::Internal => FailureClass::Internal,
                        _ => FailureClass::InvalidResponse,
                    };
                    return Err(self.refuse(&payload, problem, class).await);
                }
            };
        let outcome = prepared
            .run(
                &self.service,
                &connection,
                input,
                payload.idempotency_key.as_deref(),
            )
            .await;
        match outcome {
            Ok(output) => self
                .results
                .save(
                    payload.tenant,
                    payload.run,
                    &ActionResult::Succeeded(output),
                )
                .await
                .map_err(|error| {
                    JobError::internal(format!(
                        "the action ran, but its output could not be stored: {error}"
                    ))
                }),
            Err(error) => {
                let job_error = error.job_error();
                self.record_failure(&payload, error.into_stored(payload.run))
                    .await;
                Err(job_error)
            }
        }
    }
}

impl ActionHandler {
    /// Records why the action was not sent; the job's failure of class `class`.
    async fn refuse(
        &self,
        payload: &ActionPayload,
        problem: ApiError,
        class: FailureClass,
    ) -> JobError {
        let message = problem
            .detail()
            .unwrap_or_else(|| problem.code().title())
            .to_owned();
        self.record_failure(
            payload,
            ActionProblem {
                code: problem.code().as_str().to_owned(),
                reason: None,
                message: message.clone(),
            },
        )
        .await;
        JobError::new(class, message)
    }

    /// Best effort: the run records the failure either way.
    async fn record_failure(&self, payload: &ActionPayload, error: ActionProblem) {
        if let Err(failure) = self
            .results
            .save(payload.tenant, payload.run, &ActionResult::Failed { error })
            .await
        {
            tracing::warn!(error = %failure, run_id = %payload.run, "could not record an action's failure");
        }
    }
}

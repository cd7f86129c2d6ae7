//! `/v1/connections/{id}/actions/{name}`: writing to the provider through a connection
//! (create a ticket, post a message). The input is checked against the action's schema
//! before anything else (a bad one never becomes a run). A call is a run with one attempt
//! that answers the output; with `"async": true` it is a queued run (`202`, a
//! `connector.action` job) whose output `GET /v1/runs/{run_id}` shows once it ran. An
//! `Idempotency-Key` replays the first answer (the API's own idempotency: the same output, or
//! the same `run_id`) and is passed to providers that honour one.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchyard_audit::Action;
use switchyard_core::{ConnectionId, Role, TenantId};
use switchyard_jobs::runs::{AttemptResult, NewRun, RunStatus, RunTrigger};
use utoipa::ToSchema;

use super::connections::owned_connection;
use super::sources::TenantLookup;
use crate::{
    AppState, audit_trail,
    auth::Principal,
    connectors::{
        ConnectorService,
        action_job::{self, ACTION_JOB, AcceptedAction, PreparedAction, enqueue_action},
        action_results::ActionOutput,
    },
    error::{ApiError, Problem},
    extract::{ApiJson, ApiPath, ApiQuery},
};

/// The kind of every action's run.
pub const ACTION_RUN_KIND: &str = ACTION_JOB;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunActionRequest {
    /// Checked against the action's `input_schema` (`GET /v1/providers/{id}`).
    #[serde(default = "empty")]
    #[schema(value_type = Object)]
    pub input: Value,
    /// Queue the action instead of waiting for it: the answer is `202` with the run to poll.
    #[serde(default, rename = "async")]
    pub run_async: bool,
}

fn empty() -> Value {
    json!({})
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunActionResponse {
    /// The run recording this call (`GET /v1/runs/{run_id}`).
    pub run_id: String,
    /// What the provider answered, as the action's `output` selects it.
    #[schema(value_type = Object)]
    pub output: Value,
    /// The output in the unified model the action maps it to (a created issue as a
    /// `ticket`); `null` when the action declares no mapping or the output does not map.
    #[schema(value_type = Option<Object>)]
    pub unified: Option<Value>,
    /// Why the output has no unified form although the action declares one (the action
    /// ran all the same).
    pub mapping_error: Option<String>,
}

/// A queued action (`"async": true`).
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedActionResponse {
    /// The run to poll: `GET /v1/runs/{run_id}` (also the `Location` header).
    pub run_id: String,
    /// `queued`.
    pub status: String,
}

/// Runs an action now and returns its output; with `"async": true`, queues it as a run.
#[utoipa::path(
    post, path = "/v1/connections/{connection_id}/actions/{action}", tag = "connections",
    params(
        ("connection_id" = String, Path), ("action" = String, Path), TenantLookup,
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer (the same `run_id`); passed to providers that declare an `idempotency_header`"),
    ),
    request_body = RunActionRequest,
    responses(
        (status = 200, body = RunActionResponse, description = "The action ran"),
        (status = 202, body = QueuedActionResponse,
            description = "With `\"async\": true`: the action is queued as run `run_id`; `GET /v1/runs/{run_id}` shows its `action` result once it ran",
            headers(("Location" = String, description = "The run: `/v1/runs/{run_id}`"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
        (status = "5XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn run_action(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiPath((id, action)): ApiPath<(ConnectionId, String)>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
    ApiJson(request): ApiJson<RunActionRequest>,
) -> Result<Response, ApiError> {
    let connection =
        owned_connection(&state, &principal, lookup.tenant_id, id, Role::Write).await?;
    ConnectorService::usable(&connection)?;
    let prepared = PreparedAction::new(&state.connectors, &connection.provider, &action)?;
    // Checked before the run exists: a bad input is no work done.
    prepared.check_input(&request.input)?;
    let tenant = connection.tenant_id;
    // The idempotency middleware has vetted the header's form already.
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if request.run_async {
        let run = enqueue_action(
            state.store.database(),
            &state.runs,
            AcceptedAction {
                connection: &connection,
                action: &action,
                repeatable: prepared.repeatable(key.as_deref()),
                input: request.input,
                idempotency_key: key,
            },
        )
        .await?;
        audit(&state, &principal, tenant, id, &action).await;
        let location = match principal {
            Principal::PlatformAdmin => format!("/v1/runs/{run}?tenant_id={tenant}"),
            Principal::TenantKey(_) => format!("/v1/runs/{run}"),
        };
        let accepted = QueuedActionResponse {
            run_id: run.to_string(),
            status: RunStatus::Queued.as_str().to_owned(),
        };
        return Ok((
            StatusCode::ACCEPTED,
            [(header::LOCATION, location)],
            axum::Json(accepted),
        )
            .into_response());
    }
    let run = state
        .runs
        .create_run(NewRun {
            tenant: Some(tenant),
            subject: action_job::subject(id, &action),
            trigger: RunTrigger::Manual,
            kind: ACTION_JOB.to_owned(),
            // The input stays out of the run: it can carry what the provider should see only.
            payload: json!({"connection_id": id.to_string(), "action": action}),
            job_id: None,
        })
        .await
        .map_err(ApiError::internal)?;
    let attempt = state
        .runs
        .start_attempt(Some(tenant), run.id)
        .await
        .map_err(ApiError::internal)?;
    let outcome = prepared
        .run(
            &state.connectors,
            &connection,
            &request.input,
            key.as_deref(),
        )
        .await;
    let result = match &outcome {
        Ok(_) => AttemptResult::Succeeded,
        Err(error) => AttemptResult::Failed {
            failure: error.failure(),
            will_retry: false,
        },
    };
    if let Err(error) = state
        .runs
        .finish_attempt(
            Some(tenant),
            run.id,
            attempt.attempt,
            result,
            Default::default(),
        )
        .await
    {
        tracing::warn!(%error, run_id = %run.id, "could not record an action's attempt");
    }
    audit(&state, &principal, tenant, id, &action).await;
    match outcome {
        Ok(ActionOutput {
            output,
            unified,
            mapping_error,
        }) => Ok(axum::Json(RunActionResponse {
            run_id: run.id.to_string(),
            output,
            unified,
            mapping_error,
        })
        .into_response()),
        Err(error) => Err(error.into_problem(run.id)),
    }
}

async fn audit(
    state: &AppState,
    principal: &Principal,
    tenant: TenantId,
    id: ConnectionId,
    action: &str,
) {
    audit_trail::record_change(
        state,
        principal,
        tenant,
        Action::CONNECTION_ACTION,
        action_job::subject(id, action),
    )
    .await;
}

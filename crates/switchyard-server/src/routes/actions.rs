//! `/v1/connections/{id}/actions/{name}`: writing to the provider through a connection
//! (create a ticket, post a message). Each call is a run with one attempt; the input is
//! checked against the action's schema before anything is sent; an `Idempotency-Key` replays
//! the first answer (the API's own idempotency) and is passed to providers that honour one.

use axum::{extract::State, http::HeaderMap};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchyard_audit::Action;
use switchyard_connectors::manifest::ErrorKind;
use switchyard_connectors::unified::CompiledActionMapping;
use switchyard_connectors::{CallContext, ConnectorError};
use switchyard_core::{ConnectionId, ErrorCode, Role};
use switchyard_jobs::queue::FailureClass;
use switchyard_jobs::runs::{AttemptResult, Failure, NewRun, RunTrigger};
use utoipa::ToSchema;

use super::connections::owned_connection;
use super::sources::TenantLookup;
use crate::{
    AppState, audit_trail,
    auth::Principal,
    connectors::{ConnectorService, connector_error},
    error::{ApiError, Problem},
    extract::{ApiJson, ApiPath, ApiQuery},
};

pub const ACTION_RUN_KIND: &str = "connector.action";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunActionRequest {
    /// Checked against the action's `input_schema` (`GET /v1/providers/{id}`).
    #[serde(default = "empty")]
    #[schema(value_type = Object)]
    pub input: Value,
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

fn failure_class(error: &ConnectorError) -> FailureClass {
    match error {
        ConnectorError::Provider(error) => switchyard_jobs::queue::JobError::from(error).class,
        ConnectorError::ProviderStatus {
            status: 401 | 403, ..
        } => FailureClass::Auth,
        ConnectorError::ProviderStatus { status: 429, .. } => FailureClass::RateLimited,
        ConnectorError::Refused { kind, .. } => match kind {
            ErrorKind::AuthFailed | ErrorKind::PermissionDenied => FailureClass::Auth,
            ErrorKind::RateLimited => FailureClass::RateLimited,
            ErrorKind::NotFound | ErrorKind::ProviderError => FailureClass::InvalidResponse,
        },
        ConnectorError::ProviderStatus { status: 500.., .. } => FailureClass::ProviderUnavailable,
        _ => FailureClass::InvalidResponse,
    }
}

/// Runs an action now and returns its output.
#[utoipa::path(
    post, path = "/v1/connections/{connection_id}/actions/{action}", tag = "connections",
    params(("connection_id" = String, Path), ("action" = String, Path), TenantLookup),
    request_body = RunActionRequest,
    responses(
        (status = 200, body = RunActionResponse),
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
) -> Result<axum::Json<RunActionResponse>, ApiError> {
    let connection =
        owned_connection(&state, &principal, lookup.tenant_id, id, Role::Write).await?;
    crate::connectors::ConnectorService::usable(&connection)?;
    let connector = state.connectors.connector(&connection.provider)?;
    if !connector
        .metadata()
        .actions
        .iter()
        .any(|a| a.name == action)
    {
        return Err(ApiError::not_found(format_args!(
            "action `{action}` of `{}`",
            connection.provider
        )));
    }
    // Compiled before anything is sent: the loader has checked it, so this fails only on a
    // bug, which must not surface after the provider acted.
    let mapping = state
        .connectors
        .catalogue
        .registry()
        .manifest(&connection.provider)
        .and_then(|manifest| manifest.action(&action).and_then(|a| a.unified.clone()))
        .map(|spec| CompiledActionMapping::new(&spec))
        .transpose()
        .map_err(ApiError::internal)?;
    let tenant = connection.tenant_id;
    // The idempotency middleware has vetted the header's form already.
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let run = state
        .runs
        .create_run(NewRun {
            tenant: Some(tenant),
            subject: format!("connection:{id}/action:{action}"),
            trigger: RunTrigger::Manual,
            kind: ACTION_RUN_KIND.to_owned(),
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
    let context = ConnectorService::context(&connection);
    let outcome = connector
        .execute_action(
            CallContext {
                calls: state.connectors.calls(),
                connection: &context,
            },
            &action,
            &request.input,
            key.as_deref(),
        )
        .await;
    let limit = state.connectors.max_action_output_bytes;
    let outcome = outcome.map_err(Err).and_then(|output| {
        let size = serde_json::to_vec(&output).map_or(usize::MAX, |b| b.len());
        if size > limit {
            Err(Ok(size))
        } else {
            Ok(output)
        }
    });
    let result = match &outcome {
        Ok(_) => AttemptResult::Succeeded,
        Err(Err(error)) => AttemptResult::Failed {
            failure: Failure {
                class: failure_class(error),
                message: error.to_string(),
            },
            will_retry: false,
        },
        Err(Ok(size)) => AttemptResult::Failed {
            failure: Failure {
                class: FailureClass::InvalidResponse,
                message: format!("the output is {size} bytes, over the limit of {limit}"),
            },
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
    audit_trail::record_change(
        &state,
        &principal,
        tenant,
        Action::CONNECTION_ACTION,
        format!("connection:{id}/action:{action}"),
    )
    .await;
    match outcome {
        Ok(output) => {
            let (unified, mapping_error) = match mapping
                .as_ref()
                .map(|m| m.apply(&connection.provider, &request.input, &output))
            {
                None => (None, None),
                Some(Ok(unified)) => (Some(unified), None),
                Some(Err(error)) => (None, Some(error.to_string())),
            };
            Ok(axum::Json(RunActionResponse {
                run_id: run.id.to_string(),
                output,
                unified,
                mapping_error,
            }))
        }
        Err(Err(error)) => Err(connector_error(error)),
        Err(Ok(size)) => Err(ApiError::new(ErrorCode::ProviderError).with_detail(format!(
            "the action ran (run {}), but its output of {size} bytes is over connectors.max_action_output_bytes ({limit})",
            run.id
        ))),
    }
}

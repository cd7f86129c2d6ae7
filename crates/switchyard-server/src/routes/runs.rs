//! `/v1/runs`: the record of work (sync runs, key rotations, …) with its attempts.

use std::collections::BTreeMap;

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use switchyard_core::{ErrorCode, Role, TenantId};
use switchyard_jobs::{
    queue::{self, NewJob},
    runs::{Failure, Run, RunAttempt, RunError, RunFilter, RunId, RunStatus},
};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::{
    AppState,
    auth::Principal,
    connectors::{
        action_job::ACTION_JOB,
        action_results::{ActionResult, ActionResults},
    },
    error::{ApiError, Problem},
    extract::{ApiPath, ApiQuery},
    pagination::{ListParams, ListResponse, encode_cursor},
};

/// Filters of the run list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    /// Platform admin only: whose runs (without it: the platform's own runs).
    pub tenant_id: Option<TenantId>,
    /// Exactly this subject, such as `vault:data-key:2`.
    pub subject: Option<String>,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub status: Option<String>,
    /// Created at or after (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<OffsetDateTime>,
    /// Created before (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<OffsetDateTime>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Whose run a single-run route addresses.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunLookup {
    /// Platform admin only: the run's tenant (without it: a platform run).
    pub tenant_id: Option<TenantId>,
}

/// Why a run or an attempt failed.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailureResponse {
    /// `auth`, `rate_limited`, `provider_unavailable`, `timeout`, `invalid_response` or
    /// `internal`.
    pub class: String,
    pub message: String,
}

impl From<Failure> for FailureResponse {
    fn from(failure: Failure) -> Self {
        Self {
            class: failure.class.as_str().to_owned(),
            message: failure.message,
        }
    }
}

/// One try of a run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunAttemptResponse {
    pub attempt: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// `succeeded`, `failed`, `cancelled` or `abandoned`; absent while running.
    pub outcome: Option<String>,
    pub error: Option<FailureResponse>,
    pub duration_ms: Option<i64>,
    pub counters: BTreeMap<String, i64>,
}

impl From<RunAttempt> for RunAttemptResponse {
    fn from(attempt: RunAttempt) -> Self {
        Self {
            attempt: attempt.attempt,
            started_at: attempt.started_at,
            finished_at: attempt.finished_at,
            outcome: attempt.outcome.map(|outcome| outcome.as_str().to_owned()),
            error: attempt.error.map(FailureResponse::from),
            duration_ms: attempt.duration_ms,
            counters: attempt.counters,
        }
    }
}

/// A run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunResponse {
    #[schema(example = "run_01JD2S5W8X3Q4R5T6V7W8X9Y0Z")]
    pub id: String,
    pub tenant_id: Option<TenantId>,
    pub subject: String,
    /// `schedule`, `manual`, `webhook` or `retry`.
    pub trigger: String,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    pub kind: String,
    pub counters: BTreeMap<String, i64>,
    pub error: Option<FailureResponse>,
    pub retry_of: Option<String>,
    pub retried_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// Present on `GET /v1/runs/{run_id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Vec<RunAttemptResponse>>,
    /// On `GET /v1/runs/{run_id}` of an `"async": true` action (kind `connector.action`),
    /// once an attempt ended: `{output, unified, mapping_error}` as the synchronous call
    /// answers them, or `{error: {code, reason, message}}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<ActionResult>,
}

impl From<Run> for RunResponse {
    fn from(run: Run) -> Self {
        Self {
            id: run.id.to_string(),
            tenant_id: run.tenant,
            subject: run.subject,
            trigger: run.trigger.as_str().to_owned(),
            status: run.status.as_str().to_owned(),
            kind: run.kind,
            counters: run.counters,
            error: run.error.map(FailureResponse::from),
            retry_of: run.retry_of.map(|id| id.to_string()),
            retried_by: run.retried_by.map(|id| id.to_string()),
            created_at: run.created_at,
            started_at: run.started_at,
            finished_at: run.finished_at,
            attempts: None,
            action: None,
        }
    }
}

/// Lists runs, newest first (any key of the tenant, or the platform admin).
#[utoipa::path(
    get, path = "/v1/runs", tag = "runs",
    params(RunQuery),
    responses(
        (status = 200, body = ListResponse<RunResponse>),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_runs(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<RunQuery>,
) -> Result<axum::Json<ListResponse<RunResponse>>, ApiError> {
    let tenant = scope(&principal, query.tenant_id, Role::Read)?;
    let page = ListParams {
        limit: query.limit,
        cursor: query.cursor,
    }
    .page::<RunId>(&state.api)?;
    let status = query
        .status
        .map(|status| {
            status.parse::<RunStatus>().map_err(|_| {
                ApiError::new(ErrorCode::InvalidQuery)
                    .with_detail("`status` must be queued, running, succeeded, failed or cancelled")
            })
        })
        .transpose()?;
    let filter = RunFilter {
        subject: query.subject,
        status,
        created_since: query.since,
        created_until: query.until,
        ..RunFilter::default()
    };
    let runs = state
        .runs
        .list_runs(tenant, &filter, page.after, page.limit)
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(ListResponse {
        next_cursor: runs.next_after.map(|id| encode_cursor(&id)),
        data: runs.items.into_iter().map(RunResponse::from).collect(),
    }))
}

/// Reads a run with its attempts.
#[utoipa::path(
    get, path = "/v1/runs/{run_id}", tag = "runs",
    params(("run_id" = String, Path, example = "run_01JD2S5W8X3Q4R5T6V7W8X9Y0Z"), RunLookup),
    responses(
        (status = 200, body = RunResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_run(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(run_id): ApiPath<RunId>,
    ApiQuery(lookup): ApiQuery<RunLookup>,
) -> Result<axum::Json<RunResponse>, ApiError> {
    let tenant = scope(&principal, lookup.tenant_id, Role::Read)?;
    let found = state
        .runs
        .get_run(tenant, run_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format_args!("run `{run_id}`")))?;
    let action = match found.run.tenant {
        Some(tenant) if found.run.kind == ACTION_JOB => {
            ActionResults::new(state.store.database().clone())
                .get(tenant, run_id)
                .await
                .map_err(ApiError::internal)?
        }
        _ => None,
    };
    let mut response = RunResponse::from(found.run);
    response.action = action;
    response.attempts = Some(
        found
            .attempts
            .into_iter()
            .map(RunAttemptResponse::from)
            .collect(),
    );
    Ok(axum::Json(response))
}

/// Retries a failed or cancelled run as a new run (trigger `retry`); a run is retried once.
#[utoipa::path(
    post, path = "/v1/runs/{run_id}/retry", tag = "runs",
    params(("run_id" = String, Path, example = "run_01JD2S5W8X3Q4R5T6V7W8X9Y0Z"), RunLookup),
    responses(
        (status = 202, body = RunResponse, description = "The new run"),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn retry_run(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(run_id): ApiPath<RunId>,
    ApiQuery(lookup): ApiQuery<RunLookup>,
) -> Result<(StatusCode, axum::Json<RunResponse>), ApiError> {
    // Another tenant's run is not found, whatever the key's role: look it up first.
    let tenant = scope(&principal, lookup.tenant_id, Role::Read)?;
    let existing = state
        .runs
        .get_run(tenant, run_id)
        .await
        .map_err(ApiError::internal)?;
    if existing.is_none() {
        return Err(ApiError::not_found(format_args!("run `{run_id}`")));
    }
    if let Some(tenant) = tenant {
        principal.require_tenant(tenant, Role::Write)?;
    }
    let retry = state
        .runs
        .retry_run(tenant, run_id)
        .await
        .map_err(|error| match error {
            RunError::RunNotFound => ApiError::not_found(format_args!("run `{run_id}`")),
            RunError::NotRetryable { .. } | RunError::AlreadyRetried { .. } => {
                ApiError::new(ErrorCode::Conflict).with_detail(error.to_string())
            }
            other => ApiError::internal(other),
        })?;
    let mut payload = retry.retry.payload.clone();
    payload["run_id"] = serde_json::json!(retry.retry.id.to_string());
    let mut job = NewJob::new(retry.retry.kind.clone(), payload);
    if let Some(tenant) = retry.retry.tenant {
        job = job.tenant(tenant);
    }
    let enqueued = queue::enqueue(state.store.database(), job)
        .await
        .map_err(ApiError::internal)?;
    let run = state
        .runs
        .attach_job(retry.retry.tenant, retry.retry.id, &enqueued.id.to_string())
        .await
        .map_err(ApiError::internal)?;
    Ok((StatusCode::ACCEPTED, axum::Json(run.into())))
}

/// The tenant whose runs a route addresses: a key's own tenant (another tenant's is
/// `not_found`); for the platform admin the `tenant_id` asked for, or the platform's runs.
fn scope(
    principal: &Principal,
    requested: Option<TenantId>,
    role: Role,
) -> Result<Option<TenantId>, ApiError> {
    match (principal, requested) {
        (Principal::PlatformAdmin, requested) => Ok(requested),
        (Principal::TenantKey(key), requested) => {
            let tenant = requested.unwrap_or(key.tenant_id);
            principal.require_tenant(tenant, role)?;
            Ok(Some(tenant))
        }
    }
}

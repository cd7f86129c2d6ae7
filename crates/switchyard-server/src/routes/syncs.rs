//! `/v1/connections/{id}/syncs`: each stream's schedule, running a sync now, and resetting
//! a stream's checkpoint. A sync is a job and a run (`GET /v1/runs/{id}` shows its counters:
//! pages, records added/updated/deleted/unchanged, 304s).

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchyard_connectors::store::Connection;
use switchyard_core::{ConnectionId, ErrorCode, Role};
use switchyard_jobs::runs::RunTrigger;
use switchyard_jobs::schedule::{
    CatchUp, NewSchedule, Schedule, ScheduleError, ScheduleSpec, ScheduleStore, ScheduleUpdate,
};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::connections::owned_connection;
use super::sources::TenantLookup;
use crate::{
    AppState,
    auth::Principal,
    connectors::sync_job::{SYNC_TICK_JOB, enqueue_sync},
    error::{ApiError, Problem},
    extract::{ApiJson, ApiPath, ApiQuery},
};

/// A stream's schedule.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetSyncRequest {
    /// `{"type": "interval", "every_seconds": 3600, "jitter_percent": 10}` or
    /// `{"type": "cron", "expression": "0 */6 * * *", "time_zone": "UTC"}`.
    #[schema(value_type = Object, example = json!({"type": "interval", "every_seconds": 3600}))]
    pub schedule: ScheduleSpec,
    /// Default `true`.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// A stream of a connection: its schedule (if any) and where its last sync stopped.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncResponse {
    pub stream: String,
    #[schema(value_type = Option<Object>)]
    pub schedule: Option<Value>,
    pub enabled: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_run_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_scheduled_at: Option<OffsetDateTime>,
    /// When the stream's checkpoint was last saved (after a stored page).
    #[serde(with = "time::serde::rfc3339::option")]
    pub checkpoint_at: Option<OffsetDateTime>,
}

/// A sync started now.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncRunResponse {
    /// Follow it with `GET /v1/runs/{run_id}`.
    pub run_id: String,
}

fn subject(connection: &ConnectionId, stream: &str) -> String {
    format!("connection:{connection}/stream:{stream}")
}

fn schedule_error(error: ScheduleError) -> ApiError {
    match error {
        ScheduleError::Contended => ApiError::new(ErrorCode::Conflict)
            .with_detail("the schedule changed meanwhile; try again"),
        ScheduleError::InvalidCron { .. }
        | ScheduleError::UnknownTimeZone { .. }
        | ScheduleError::InvalidInterval { .. }
        | ScheduleError::NoUpcomingTick { .. } => {
            ApiError::new(ErrorCode::ValidationFailed).with_detail(format!("`schedule`: {error}"))
        }
        other => ApiError::internal(other),
    }
}

/// The stream, if the connection's connector has it.
fn stream_of(state: &AppState, connection: &Connection, stream: &str) -> Result<(), ApiError> {
    let connector = state.connectors.connector(&connection.provider)?;
    if connector
        .metadata()
        .streams
        .iter()
        .any(|s| s.name == stream)
    {
        Ok(())
    } else {
        Err(ApiError::not_found(format_args!(
            "stream `{stream}` of `{}`",
            connection.provider
        )))
    }
}

async fn find_schedule(
    schedules: &ScheduleStore,
    connection: &Connection,
    stream: &str,
) -> Result<Option<Schedule>, ApiError> {
    let page = schedules
        .list(
            Some(connection.tenant_id),
            Some(&subject(&connection.id, stream)),
            None,
            1,
        )
        .await
        .map_err(schedule_error)?;
    Ok(page.items.into_iter().next())
}

async fn response(
    state: &AppState,
    connection: &Connection,
    stream: &str,
    schedule: Option<Schedule>,
) -> Result<SyncResponse, ApiError> {
    let checkpoint = state
        .connectors
        .records
        .checkpoint(&connection.tenant_id, &connection.id, stream)
        .await
        .map_err(crate::connectors::store_error)?;
    Ok(SyncResponse {
        stream: stream.to_owned(),
        enabled: schedule.as_ref().is_some_and(|s| s.enabled),
        next_run_at: schedule.as_ref().filter(|s| s.enabled).map(|s| s.next_tick),
        last_scheduled_at: schedule.as_ref().and_then(|s| s.last_tick),
        schedule: schedule.map(|s| serde_json::to_value(&s.spec).unwrap_or_default()),
        checkpoint_at: checkpoint.map(|c| c.updated_at),
    })
}

/// Sets a stream's schedule (creating or replacing it) and enables or disables it.
#[utoipa::path(
    put, path = "/v1/connections/{connection_id}/syncs/{stream}", tag = "connections",
    params(("connection_id" = String, Path), ("stream" = String, Path), TenantLookup),
    request_body = SetSyncRequest,
    responses(
        (status = 200, body = SyncResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn set_sync(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((id, stream)): ApiPath<(ConnectionId, String)>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
    ApiJson(request): ApiJson<SetSyncRequest>,
) -> Result<axum::Json<SyncResponse>, ApiError> {
    let connection =
        owned_connection(&state, &principal, lookup.tenant_id, id, Role::Write).await?;
    stream_of(&state, &connection, &stream)?;
    let schedules = ScheduleStore::new(state.store.database());
    let schedule = match find_schedule(&schedules, &connection, &stream).await? {
        Some(existing) => schedules
            .update(
                Some(connection.tenant_id),
                existing.id,
                ScheduleUpdate {
                    spec: Some(request.schedule),
                    enabled: Some(request.enabled),
                    ..ScheduleUpdate::default()
                },
            )
            .await
            .map_err(schedule_error)?,
        None => Some(
            schedules
                .create(NewSchedule {
                    tenant: Some(connection.tenant_id),
                    subject: subject(&connection.id, &stream),
                    kind: SYNC_TICK_JOB.to_owned(),
                    payload: json!({
                        "tenant": connection.tenant_id.to_string(),
                        "connection_id": connection.id.to_string(),
                        "stream": stream,
                    }),
                    spec: request.schedule,
                    // A sync reads everything that changed since the last: one run catches up.
                    catch_up: CatchUp::RunOnce,
                    enabled: request.enabled,
                })
                .await
                .map_err(schedule_error)?,
        ),
    };
    Ok(axum::Json(
        response(&state, &connection, &stream, schedule).await?,
    ))
}

/// Every stream of the connection's connector, with its schedule.
#[utoipa::path(
    get, path = "/v1/connections/{connection_id}/syncs", tag = "connections",
    params(("connection_id" = String, Path), TenantLookup),
    responses(
        (status = 200, body = Vec<SyncResponse>),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_syncs(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConnectionId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
) -> Result<axum::Json<Vec<SyncResponse>>, ApiError> {
    let connection = owned_connection(&state, &principal, lookup.tenant_id, id, Role::Read).await?;
    let connector = state.connectors.connector(&connection.provider)?;
    let schedules = ScheduleStore::new(state.store.database());
    let mut syncs = Vec::new();
    for stream in &connector.metadata().streams {
        let schedule = find_schedule(&schedules, &connection, &stream.name).await?;
        syncs.push(response(&state, &connection, &stream.name, schedule).await?);
    }
    Ok(axum::Json(syncs))
}

/// Removes a stream's schedule (its records stay).
#[utoipa::path(
    delete, path = "/v1/connections/{connection_id}/syncs/{stream}", tag = "connections",
    params(("connection_id" = String, Path), ("stream" = String, Path), TenantLookup),
    responses(
        (status = 204),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_sync(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((id, stream)): ApiPath<(ConnectionId, String)>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
) -> Result<StatusCode, ApiError> {
    let connection =
        owned_connection(&state, &principal, lookup.tenant_id, id, Role::Write).await?;
    let schedules = ScheduleStore::new(state.store.database());
    let schedule = find_schedule(&schedules, &connection, &stream)
        .await?
        .ok_or_else(|| ApiError::not_found(format_args!("a schedule of stream `{stream}`")))?;
    schedules
        .delete(Some(connection.tenant_id), schedule.id)
        .await
        .map_err(schedule_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes every schedule of a connection (it is being deleted).
pub(crate) async fn delete_schedules(
    state: &AppState,
    connection: &Connection,
) -> Result<(), ApiError> {
    let Some(connector) = state.connectors.catalogue.connector(&connection.provider) else {
        return Ok(());
    };
    let schedules = ScheduleStore::new(state.store.database());
    for stream in &connector.metadata().streams {
        if let Some(schedule) = find_schedule(&schedules, connection, &stream.name).await? {
            schedules
                .delete(Some(connection.tenant_id), schedule.id)
                .await
                .map_err(schedule_error)?;
        }
    }
    Ok(())
}

/// Runs a sync of the stream now, from its checkpoint. Answers at once with the run to
/// follow; a sync already running makes this one wait its turn.
#[utoipa::path(
    post, path = "/v1/connections/{connection_id}/syncs/{stream}/run", tag = "connections",
    params(("connection_id" = String, Path), ("stream" = String, Path), TenantLookup),
    responses(
        (status = 202, body = SyncRunResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn run_sync(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((id, stream)): ApiPath<(ConnectionId, String)>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
) -> Result<(StatusCode, axum::Json<SyncRunResponse>), ApiError> {
    let connection =
        owned_connection(&state, &principal, lookup.tenant_id, id, Role::Write).await?;
    stream_of(&state, &connection, &stream)?;
    crate::connectors::ConnectorService::usable(&connection)?;
    let run = enqueue_sync(
        state.store.database(),
        &state.runs,
        connection.tenant_id,
        connection.id,
        &stream,
        RunTrigger::Manual,
        None,
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(SyncRunResponse {
            run_id: run.to_string(),
        }),
    ))
}

/// Forgets where the stream's syncs got to: the next sync reads everything (records not
/// listed any more are then deleted, where the stream's mode detects deletions).
#[utoipa::path(
    post, path = "/v1/connections/{connection_id}/syncs/{stream}/reset", tag = "connections",
    params(("connection_id" = String, Path), ("stream" = String, Path), TenantLookup),
    responses(
        (status = 204),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn reset_sync(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((id, stream)): ApiPath<(ConnectionId, String)>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
) -> Result<StatusCode, ApiError> {
    let connection =
        owned_connection(&state, &principal, lookup.tenant_id, id, Role::Write).await?;
    stream_of(&state, &connection, &stream)?;
    state
        .connectors
        .records
        .reset_checkpoint(&connection.tenant_id, &connection.id, &stream)
        .await
        .map_err(crate::connectors::store_error)?;
    Ok(StatusCode::NO_CONTENT)
}

//! `GET /v1/audit-events`: the caller's tenant audit chain, newest last.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use switchyard_audit::{Action, AuditEvent, AuditFilter, Chain, Outcome};
use switchyard_core::{ErrorCode, Role, TenantId};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::{
    AppState,
    auth::Principal,
    error::{ApiError, Problem},
    extract::ApiQuery,
    pagination::{ListParams, ListResponse, encode_cursor},
};

/// Filters of the audit event list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditEventQuery {
    /// Platform admin only: whose chain to read. Without it the platform admin reads the
    /// platform chain; a tenant key always reads its own tenant's chain.
    pub tenant_id: Option<TenantId>,
    /// Exactly this action, such as `api_key.create`.
    pub action: Option<String>,
    /// Exactly this target, such as `api_key:key_…`.
    pub target: Option<String>,
    /// Recorded at or after this time (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<OffsetDateTime>,
    /// Recorded before this time (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<OffsetDateTime>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Who performed an audited action.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditActorResponse {
    /// `api_key`, `platform_admin` or `internal`.
    pub kind: &'static str,
    /// The API key id or the internal component.
    pub id: Option<String>,
    /// The run an internal component acted for.
    pub run_id: Option<String>,
}

/// One entry of a tenant's hash-chained audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventResponse {
    #[schema(example = "aud_01JD2S5W8X3Q4R5T6V7W8X9Y0Z")]
    pub id: String,
    /// Position in the chain, from 1 with no gaps.
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub actor: AuditActorResponse,
    #[schema(example = "api_key.create")]
    pub action: String,
    #[schema(example = "api_key:key_01JD2S5W8X3Q4R5T6V7W8X9Y0Z")]
    pub target: String,
    /// `success` or `failure`.
    pub outcome: &'static str,
    /// Why it failed, as a short code.
    pub reason: Option<String>,
    pub request_id: Option<String>,
    /// Hex SHA-256 of the previous entry; 64 zeros for the first.
    pub prev_hash: String,
    /// Hex SHA-256 of this entry (see `switchyard audit verify`).
    pub hash: String,
}

impl From<AuditEvent> for AuditEventResponse {
    fn from(event: AuditEvent) -> Self {
        let (kind, id, run_id) = event.actor.columns();
        let (outcome, reason) = match event.outcome {
            Outcome::Success => ("success", None),
            Outcome::Failure { reason } => ("failure", reason),
        };
        Self {
            id: event.id.to_string(),
            seq: event.seq,
            occurred_at: event.occurred_at,
            actor: AuditActorResponse { kind, id, run_id },
            action: event.action.to_string(),
            target: event.target,
            outcome,
            reason,
            request_id: event.request_id,
            prev_hash: event.prev_hash,
            hash: event.hash,
        }
    }
}

/// Lists audit events (tenant `admin` keys, or the platform admin).
#[utoipa::path(
    get, path = "/v1/audit-events", tag = "audit",
    params(AuditEventQuery),
    responses(
        (status = 200, body = ListResponse<AuditEventResponse>),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_audit_events(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<AuditEventQuery>,
) -> Result<axum::Json<ListResponse<AuditEventResponse>>, ApiError> {
    let chain = match (&principal, query.tenant_id) {
        (Principal::PlatformAdmin, Some(tenant)) => Chain::Tenant(tenant),
        (Principal::PlatformAdmin, None) => Chain::Platform,
        (Principal::TenantKey(key), requested) => {
            let tenant = requested.unwrap_or(key.tenant_id);
            principal.require_tenant(tenant, Role::Admin)?;
            Chain::Tenant(tenant)
        }
    };
    let page = ListParams {
        limit: query.limit,
        cursor: query.cursor,
    }
    .page::<u64>(&state.api)?;
    let action = query
        .action
        .map(|action| {
            Action::new(action).map_err(|_| {
                ApiError::new(ErrorCode::InvalidQuery)
                    .with_detail("`action` must look like `noun.verb`, such as `api_key.create`")
            })
        })
        .transpose()?;
    let filter = AuditFilter {
        action,
        target: query.target,
        since: query.since,
        until: query.until,
    };
    let events = state
        .audit_reader
        .list(chain, &filter, page.after, page.limit)
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(ListResponse {
        next_cursor: events.next_after.map(|seq| encode_cursor(&seq)),
        data: events
            .items
            .into_iter()
            .map(AuditEventResponse::from)
            .collect(),
    }))
}

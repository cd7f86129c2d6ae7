//! `/v1/connections/{id}/records/{stream}`: the stream's ordered change stream (`added`,
//! `updated`, `deleted`, each with the full record), as stored by its syncs, optionally in a
//! unified model's form.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_connectors::store::RecordChange;
use switchyard_connectors::unified::{CompiledMapping, RelatedMatches, UnifiedModel, lookup_page};
use switchyard_core::{ConnectionId, ErrorCode, Role, TenantId};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::connections::owned_connection;
use crate::{
    AppState,
    auth::Principal,
    connectors::store_error,
    error::{ApiError, Problem},
    extract::{ApiPath, ApiQuery},
    pagination::{ListParams, encode_cursor},
};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecordsQuery {
    /// Platform admin only: the tenant to act for.
    pub tenant_id: Option<TenantId>,
    /// Changes to return (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of an earlier answer: changes after it. Absent: from the first change.
    pub cursor: Option<String>,
    /// A unified model (`identity`, `group`, `repository`, `ticket`, …) the stream maps to:
    /// `record` is then in that model's form.
    pub model: Option<String>,
}

/// One change of a record.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordChangeResponse {
    /// The change's position in the stream: 1, 2, 3… in the order the changes were stored.
    pub seq: u64,
    /// `added`, `updated` or `deleted`.
    #[schema(example = "added")]
    pub change: &'static str,
    pub primary_key: String,
    /// The record as of the change (for a deletion: as last seen), in the unified form when
    /// `model` was asked for. A unified field the mapping reads from another stream
    /// (`related`) is null until that stream has completed a sync.
    #[schema(value_type = Object)]
    pub record: Value,
    /// With `model`: why this record has no unified form (the record is then `null`).
    pub mapping_error: Option<String>,
    /// The sync run that stored the change (`null` for webhook upserts).
    pub run_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A page of changes. `next_cursor` is always set: pass it back to continue, now or later
/// (then it returns what syncs stored since).
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordChangesResponse {
    pub data: Vec<RecordChangeResponse>,
    pub next_cursor: String,
    /// More changes are stored after this page already.
    pub has_more: bool,
}

/// A change-stream cursor after `seq`.
pub fn cursor_after(seq: u64) -> String {
    encode_cursor(&seq)
}

/// Reads a stream's changes in order.
#[utoipa::path(
    get, path = "/v1/connections/{connection_id}/records/{stream}", tag = "connections",
    params(("connection_id" = String, Path), ("stream" = String, Path), RecordsQuery),
    responses(
        (status = 200, body = RecordChangesResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_records(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((id, stream)): ApiPath<(ConnectionId, String)>,
    ApiQuery(query): ApiQuery<RecordsQuery>,
) -> Result<axum::Json<RecordChangesResponse>, ApiError> {
    let connection = owned_connection(&state, &principal, query.tenant_id, id, Role::Read).await?;
    let manifest = state
        .connectors
        .catalogue
        .registry()
        .manifest(&connection.provider);
    let spec = manifest.as_ref().and_then(|m| m.stream(&stream));
    // Stored records stay readable when their connector has left the catalogue; a stream
    // the connector does not have is not found.
    let has_stream = state
        .connectors
        .catalogue
        .connector(&connection.provider)
        .map(|c| c.metadata().streams.iter().any(|s| s.name == stream));
    if has_stream == Some(false) {
        return Err(ApiError::not_found(format_args!(
            "stream `{stream}` of `{}`",
            connection.provider
        )));
    }
    let mapping = match &query.model {
        None => None,
        Some(model) => {
            let wanted = UnifiedModel::from_name(model).ok_or_else(|| {
                let models: Vec<&str> = UnifiedModel::ALL.iter().map(|m| m.name()).collect();
                ApiError::new(ErrorCode::InvalidQuery)
                    .with_detail(format!("`model`: `{model}` is not one of {models:?}"))
            })?;
            let unified = spec
                .and_then(|s| s.unified.as_ref())
                .filter(|u| u.model == wanted)
                .ok_or_else(|| {
                    ApiError::new(ErrorCode::InvalidQuery)
                        .with_detail(format!("stream `{stream}` does not map to `{model}`"))
                })?;
            // `template` fields read the connection's settings (Jira's site for a browse link).
            Some(
                CompiledMapping::new(unified)
                    .map_err(ApiError::internal)?
                    .with_config(connection.config.clone()),
            )
        }
    };
    let page = ListParams {
        limit: query.limit,
        cursor: query.cursor.clone(),
    }
    .page::<u64>(&state.api)?;
    let changes = state
        .connectors
        .records
        .changes(
            &connection.tenant_id,
            &connection.id,
            &stream,
            page.after,
            page.limit,
        )
        .await
        .map_err(store_error)?;
    let has_more = changes.next_after.is_some();
    let last = changes
        .items
        .last()
        .map(|c| c.seq)
        .or(page.after)
        .unwrap_or(0);
    // `related` fields: one query per field for the whole page.
    let related = match &mapping {
        Some(mapping) if !mapping.related().is_empty() => {
            let records: Vec<&Value> = changes.items.iter().map(|c| &c.data).collect();
            lookup_page(
                mapping,
                &records,
                &state.connectors.records,
                &connection.tenant_id,
                &connection.id,
            )
            .await
            .map_err(store_error)?
        }
        _ => RelatedMatches::default(),
    };
    let data = changes
        .items
        .into_iter()
        .map(|change| respond(change, mapping.as_ref(), &related, &connection.provider))
        .collect();
    Ok(axum::Json(RecordChangesResponse {
        data,
        next_cursor: cursor_after(last),
        has_more,
    }))
}

fn respond(
    change: RecordChange,
    mapping: Option<&CompiledMapping>,
    related: &RelatedMatches,
    provider: &str,
) -> RecordChangeResponse {
    let (record, mapping_error) = match mapping {
        None => (change.data, None),
        Some(mapping) => match mapping.apply_with(provider, &change.data, related) {
            Ok(unified) => (unified, None),
            Err(error) => (Value::Null, Some(error.to_string())),
        },
    };
    RecordChangeResponse {
        seq: change.seq,
        change: change.kind.as_str(),
        primary_key: change.primary_key,
        record,
        mapping_error,
        run_id: change.run.map(|r| r.to_string()),
        at: change.at,
    }
}

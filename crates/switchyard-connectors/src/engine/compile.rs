//! A manifest's streams made ready to run (paths parsed once), and its catalogue entry.

use serde_json_path::JsonPath;

use super::rules::{self, CompiledRule};
use super::select;
use crate::connector::{ActionInfo, AuthModeInfo, ConnectorError, ConnectorMetadata, StreamInfo};
use crate::manifest::{ErrorRule, Incremental, Manifest, Pagination, StreamSpec};

pub(super) struct CompiledStream {
    pub(super) records: JsonPath,
    pub(super) primary_key: Vec<JsonPath>,
    pub(super) cursor_field: Option<JsonPath>,
    pub(super) removed: Option<JsonPath>,
    pub(super) delta_link: Option<JsonPath>,
    pub(super) next_url: Option<JsonPath>,
    pub(super) cursor: Option<JsonPath>,
    pub(super) total: Option<JsonPath>,
    pub(super) page_info: Option<JsonPath>,
    /// A boolean in the body that ends the partition (`$.isLast`).
    pub(super) stop: Option<JsonPath>,
    /// The stream's error rules, then the manifest-wide ones.
    pub(super) errors: Vec<CompiledRule>,
}

pub(super) fn compile(
    stream: &StreamSpec,
    manifest_errors: &[ErrorRule],
) -> Result<CompiledStream, ConnectorError> {
    let opt = |text: Option<&String>| text.map(|t| select::path(t)).transpose();
    let (cursor_field, removed, delta_link) = match &stream.incremental {
        Incremental::UpdatedSince { cursor_field, .. } => {
            (Some(select::path(cursor_field)?), None, None)
        }
        Incremental::DeltaToken {
            delta_link_path,
            removed_path,
        } => (
            None,
            opt(removed_path.as_ref())?,
            Some(select::path(delta_link_path)?),
        ),
        _ => (None, None, None),
    };
    let (next_url, cursor, total, page_info) = match &stream.pagination {
        Pagination::NextUrl { next_url_path } => {
            (Some(select::path(next_url_path)?), None, None, None)
        }
        Pagination::Cursor { cursor_path, .. } => {
            (None, Some(select::path(cursor_path)?), None, None)
        }
        Pagination::Offset { total_path, .. } => (None, None, opt(total_path.as_ref())?, None),
        Pagination::Page {
            total_pages_path, ..
        } => (None, None, opt(total_pages_path.as_ref())?, None),
        Pagination::GraphqlRelay { page_info_path, .. } => {
            (None, None, None, Some(select::path(page_info_path)?))
        }
        _ => (None, None, None, None),
    };
    let stop = match &stream.pagination {
        Pagination::Cursor { stop_path, .. }
        | Pagination::Offset { stop_path, .. }
        | Pagination::Page { stop_path, .. } => opt(stop_path.as_ref())?,
        _ => None,
    };
    Ok(CompiledStream {
        records: select::path(&stream.records)?,
        primary_key: stream
            .primary_key
            .iter()
            .map(|k| select::path(k))
            .collect::<Result<_, _>>()?,
        cursor_field,
        removed,
        delta_link,
        next_url,
        cursor,
        total,
        page_info,
        stop,
        errors: rules::compile(stream.errors.iter().chain(manifest_errors))?,
    })
}

pub(super) fn metadata(manifest: &Manifest) -> ConnectorMetadata {
    ConnectorMetadata {
        id: manifest.id.clone(),
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        categories: manifest.categories.clone(),
        docs_url: manifest.docs_url.clone(),
        auth_modes: manifest
            .auth
            .iter()
            .map(|mode| AuthModeInfo {
                kind: mode.kind().to_owned(),
                credential_fields: mode.credential_fields(),
            })
            .collect(),
        config_schema: manifest.config.clone(),
        streams: manifest
            .streams
            .iter()
            .map(|s| StreamInfo {
                name: s.name.clone(),
                description: s.description.clone(),
                incremental: match s.incremental {
                    Incremental::FullRefresh => "full_refresh",
                    Incremental::UpdatedSince { .. } => "updated_since",
                    Incremental::Etag => "etag",
                    Incremental::DeltaToken { .. } => "delta_token",
                }
                .to_owned(),
                unified_model: s.unified.as_ref().map(|m| m.model.name().to_owned()),
            })
            .collect(),
        actions: manifest
            .actions
            .iter()
            .map(|a| ActionInfo {
                name: a.name.clone(),
                description: a.description.clone(),
                input_schema: a.input.clone(),
                idempotent: a.idempotent,
            })
            .collect(),
        webhook_events: manifest
            .webhooks
            .iter()
            .flat_map(|w| w.events.iter().map(|e| e.event_type.clone()))
            .collect(),
    }
}

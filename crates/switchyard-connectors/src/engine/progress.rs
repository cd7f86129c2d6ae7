//! Moving a read on: to the next partition, or to its end, keeping what the next read
//! starts from.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::checkpoint::{PageState, Progress, StreamCheckpoint};
use crate::connector::{Page, Record};
use crate::manifest::{Incremental, StreamSpec};

/// This partition is done: on to the next, or finish the read.
#[allow(clippy::too_many_arguments)]
pub(super) fn next_partition(
    mut saved: StreamCheckpoint,
    mut progress: Progress,
    spec: &StreamSpec,
    full_read: bool,
    records: Vec<Record>,
    deletions: Vec<String>,
    unchanged: Vec<String>,
    not_modified: bool,
) -> Page {
    let count = progress.partitions.as_ref().map_or(1, Vec::len);
    if progress.partition + 1 < count {
        progress.partition += 1;
        progress.page = PageState::First;
        saved.progress = Some(progress);
        return Page {
            records,
            deletions,
            unchanged,
            not_modified,
            checkpoint: saved.to_value(),
            done: false,
            full_read: None,
        };
    }
    finish(
        saved,
        progress,
        spec,
        full_read,
        records,
        deletions,
        unchanged,
        not_modified,
    )
}

/// The read is complete: keep what the next read starts from.
#[allow(clippy::too_many_arguments)]
pub(super) fn finish(
    mut saved: StreamCheckpoint,
    progress: Progress,
    spec: &StreamSpec,
    full_read: bool,
    records: Vec<Record>,
    deletions: Vec<String>,
    unchanged: Vec<String>,
    not_modified: bool,
) -> Page {
    if matches!(spec.incremental, Incremental::UpdatedSince { .. }) {
        saved.since = later(saved.since.as_deref(), progress.high_water.as_deref());
    }
    if matches!(spec.incremental, Incremental::Etag) {
        saved.pages = progress.pages;
    }
    saved.progress = None;
    Page {
        records,
        deletions,
        unchanged,
        not_modified,
        checkpoint: saved.to_value(),
        done: true,
        full_read: full_read.then_some(progress.read),
    }
}

/// A record's update time: RFC 3339 text or epoch seconds.
pub(super) fn timestamp(value: &Value) -> Option<OffsetDateTime> {
    match value {
        Value::String(text) => OffsetDateTime::parse(text, &Rfc3339).ok(),
        Value::Number(n) => n
            .as_i64()
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok()),
        _ => None,
    }
}

pub(super) fn later(a: Option<&str>, b: Option<&str>) -> Option<String> {
    let parse = |t: Option<&str>| t.and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => Some(if x >= y { x } else { y }),
        (x, y) => x.or(y),
    }
    .and_then(|t| t.format(&Rfc3339).ok())
}

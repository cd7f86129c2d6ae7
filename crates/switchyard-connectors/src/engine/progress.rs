//! Moving a read on: to the next partition, or to its end, keeping what the next read
//! starts from.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::checkpoint::{PageState, Progress, StreamCheckpoint};
use super::parent;
use crate::connector::{Page, Record};
use crate::manifest::{Incremental, StreamSpec};

/// What a page read brought.
#[derive(Default)]
pub(super) struct Contents {
    pub(super) records: Vec<Record>,
    pub(super) deletions: Vec<String>,
    /// Keys of a `304 Not Modified` page.
    pub(super) unchanged: Vec<String>,
    pub(super) not_modified: bool,
}

impl Contents {
    fn into_page(
        self,
        checkpoint: &StreamCheckpoint,
        done: bool,
        full_read: Option<String>,
    ) -> Page {
        Page {
            records: self.records,
            deletions: self.deletions,
            unchanged: self.unchanged,
            not_modified: self.not_modified,
            checkpoint: checkpoint.to_value(),
            done,
            full_read,
        }
    }
}

/// The page, with the read moved on: to `next` in this partition, else to the next
/// partition, else to its end.
pub(super) fn advance(
    mut saved: StreamCheckpoint,
    mut progress: Progress,
    spec: &StreamSpec,
    full_read: bool,
    next: Option<PageState>,
    contents: Contents,
) -> Page {
    let next = next.or_else(|| {
        let count = progress.partitions.as_ref().map_or(1, Vec::len);
        (progress.partition + 1 < count).then(|| {
            progress.partition += 1;
            PageState::First
        })
    });
    match next {
        Some(next) => {
            progress.page = next;
            saved.progress = Some(progress);
            contents.into_page(&saved, false, None)
        }
        None => finish(saved, progress, spec, full_read, contents),
    }
}

/// The read is complete: keep what the next read starts from.
pub(super) fn finish(
    mut saved: StreamCheckpoint,
    progress: Progress,
    spec: &StreamSpec,
    full_read: bool,
    contents: Contents,
) -> Page {
    if matches!(spec.incremental, Incremental::UpdatedSince { .. }) {
        saved.since = later(saved.since.as_deref(), progress.high_water.as_deref());
    }
    if matches!(spec.incremental, Incremental::Etag) {
        saved.pages = progress.pages;
    }
    // The parent list this read's partitions came from, for the next read to revalidate.
    saved.parent = progress
        .parent
        .and_then(|listing| parent::keep(listing, progress.partitions));
    saved.progress = None;
    contents.into_page(&saved, true, full_read.then_some(progress.read))
}

/// A read started over (an expired delta token): no records, the new read's position.
pub(super) fn restarted(saved: &StreamCheckpoint) -> Page {
    Contents::default().into_page(saved, false, None)
}

/// ISO 8601 with a colon-less offset, as Jira writes times (`2024-05-01T13:07:09.123+0200`).
const BASIC_OFFSET: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]][offset_hour sign:mandatory][offset_minute]"
);

/// A record's update time: RFC 3339 text (or ISO 8601 with a `+hhmm` offset) or epoch
/// seconds.
pub(super) fn timestamp(value: &Value) -> Option<OffsetDateTime> {
    match value {
        Value::String(text) => OffsetDateTime::parse(text, &Rfc3339)
            .or_else(|_| OffsetDateTime::parse(text, BASIC_OFFSET))
            .ok(),
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn update_times_come_in_several_notations() {
        let utc = |v: Value| timestamp(&v).map(|t| t.unix_timestamp());
        let expected = Some(1_714_561_629);
        assert_eq!(utc(json!("2024-05-01T11:07:09Z")), expected);
        assert_eq!(utc(json!("2024-05-01T13:07:09.123+02:00")), expected);
        assert_eq!(utc(json!("2024-05-01T13:07:09.123+0200")), expected);
        assert_eq!(utc(json!("2024-05-01T13:07:09+0200")), expected);
        assert_eq!(utc(json!(1_714_561_629)), expected);
        assert_eq!(utc(json!("yesterday")), None);
    }
}

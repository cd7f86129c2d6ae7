//! What a stream's checkpoint holds: what the last complete read left for the next one
//! (the `since` cursor, the delta link, each page's ETag, the parent list of partitions) and,
//! while a read is under way, exactly where it is, so a run killed after any page resumes at
//! the next one.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::connector::ConnectorError;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamCheckpoint {
    /// `updated_since`: the newest update time a complete read saw (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// `delta_token`: the link that returns the changes since the last complete read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_link: Option<String>,
    /// `etag`: each page of the last complete read, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pages: Vec<PageMemo>,
    /// Partitions from an `etag` parent stream: the parent's pages and the partition values
    /// of the last complete read, so the next one can revalidate the parent with
    /// `If-None-Match` instead of listing it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentListing>,
    /// The read under way, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
}

/// A parent stream's list as partitions: each page as asked and answered, and the values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParentListing {
    /// What the values were made by; a listing made otherwise (the manifest changed) is not
    /// reused.
    pub source: ParentSource,
    pub pages: Vec<ParentPage>,
    /// The partition values, page after page. Empty in a read's progress, whose own
    /// `partitions` hold them until the read completes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<Value>,
}

/// How a parent's records became partition values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParentSource {
    pub stream: String,
    /// The JSONPath of `partition.value`.
    pub value: String,
    /// The top-level record fields kept as `partition.record`; `None`: the whole record.
    pub record_fields: Option<Vec<String>>,
}

/// One page of a parent list: asked as `state`, answered with `etag` (when the provider sent
/// one), led to `next`, gave `count` partition values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParentPage {
    pub state: PageState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<PageState>,
    pub count: usize,
}

/// One page of an `etag` read: asked as `state`, answered with `etag`, led to `next`, held
/// `keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageMemo {
    pub partition: usize,
    pub state: PageState,
    pub etag: String,
    pub next: Option<PageState>,
    pub keys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    /// Identifies this read across the runs that resume it: full reads mark what they saw
    /// with it, so records seen before a crash are not taken for deleted after it.
    pub read: String,
    /// The partition values, resolved when the read started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<Vec<Value>>,
    /// Index into `partitions` (0 without partitions).
    pub partition: usize,
    /// The next request to make.
    pub page: PageState,
    /// `updated_since`: the newest update time seen by this read so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_water: Option<String>,
    /// `delta_token`: this read follows a delta link (changes only), not a full listing.
    #[serde(default)]
    pub delta: bool,
    /// `etag`: the pages of this read so far.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pages: Vec<PageMemo>,
    /// The `etag` parent's pages this read's `partitions` came from (kept in
    /// [`StreamCheckpoint::parent`] when the read completes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentListing>,
}

/// Where the next request of a read goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "snake_case", deny_unknown_fields)]
pub enum PageState {
    /// The stream's request as the manifest writes it.
    First,
    /// A URL the provider gave (a `Link` header, a body link, a delta link).
    Url {
        url: String,
    },
    Cursor {
        cursor: String,
    },
    Offset {
        offset: u64,
    },
    Page {
        page: u64,
    },
}

impl StreamCheckpoint {
    pub fn parse(value: Option<&Value>) -> Result<Self, ConnectorError> {
        match value {
            None | Some(Value::Null) => Ok(Self::default()),
            Some(value) => serde_json::from_value(value.clone())
                .map_err(|e| ConnectorError::Checkpoint(e.to_string())),
        }
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

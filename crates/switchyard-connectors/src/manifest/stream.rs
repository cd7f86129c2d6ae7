//! Streams: what to request, how to page through it, where the records are, and how to read
//! only what changed.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::ManifestDuration;
use crate::unified::MappingSpec;

/// One list the connector reads (`users`, `repositories`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    #[schemars(regex(pattern = r"^[a-z][a-z0-9_]{0,62}$"))]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub request: RequestSpec,
    /// JSONPath (RFC 9535) selecting the records in a response body (`$.items[*]`; `$[*]`
    /// for a top-level array).
    pub records: String,
    /// JSONPath of the primary key inside a record; several make a composite key.
    pub primary_key: Vec<String>,
    #[serde(default)]
    pub pagination: Pagination,
    #[serde(default)]
    pub incremental: Incremental,
    /// Iterate the stream once per value of a parent stream's records or of a config list.
    #[serde(default)]
    pub partitions: Option<PartitionSpec>,
    /// What some answers mean, checked in order before the manifest-wide `errors` and the
    /// default (2xx is data, anything else fails the run).
    #[serde(default)]
    pub errors: Vec<ErrorRule>,
    /// The stream's records as a unified model.
    #[serde(default)]
    pub unified: Option<MappingSpec>,
    /// The endpoint class the provider limits this stream's requests under; a key template
    /// over `config` and `partition.value` limits each partition apart.
    #[serde(default)]
    pub endpoint_class: Option<EndpointClass>,
    /// A JSON Schema each record must satisfy (checked by the conformance kit).
    #[serde(default)]
    pub schema: Option<Value>,
}

/// The endpoint class of `limits.endpoint_rates` a stream's or an action's requests count
/// under: a name (`users_list`), or a name and a key template whose every rendering has a
/// budget of its own at the class's rate (`{name: post_message, key: "{{ input.channel }}"}`,
/// Slack's one post a second per channel).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum EndpointClass {
    Name(String),
    Keyed {
        name: String,
        /// A template over `input` and `config` (actions) or `config` and `partition.value`
        /// (streams); the class needs a rate in `limits.endpoint_rates`.
        key: String,
    },
}

impl EndpointClass {
    pub fn name(&self) -> &str {
        match self {
            Self::Name(name) | Self::Keyed { name, .. } => name,
        }
    }

    /// The key template, for a keyed class.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Name(_) => None,
            Self::Keyed { key, .. } => Some(key),
        }
    }
}

/// A templated request. Templates read `config.*`, `partition.*`, `checkpoint.*` and, in
/// actions, `input.*`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    #[serde(default = "get")]
    pub method: String,
    /// Path under the base URL (`/orgs/{{ config.org }}/members`).
    pub path: String,
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body; strings in it are templates, and a string that is exactly one
    /// `{{ expression }}` becomes that value with its type.
    #[serde(default)]
    pub body: Option<Value>,
    /// Leave out the body's top-level members that render to null, for optional inputs an
    /// API wants absent rather than `null` (`thread_ts: "{{ input.thread_ts | default(none) }}"`).
    #[serde(default)]
    pub omit_null_members: bool,
}

fn get() -> String {
    "GET".into()
}

/// How to get the next page.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// One request is everything.
    #[default]
    None,
    /// RFC 8288 `Link` header, `rel="next"` (GitHub, Okta).
    LinkHeader {
        /// A page-size parameter to send on the first request (`per_page`).
        #[serde(default)]
        page_size_param: Option<String>,
        #[serde(default)]
        page_size: Option<u32>,
        /// An empty page ends the stream even when it links to a next one (Okta's System
        /// Log always links onwards).
        #[serde(default)]
        stop_on_empty: bool,
    },
    /// A cursor read from the body into a query parameter (Slack's `next_cursor`) or a key
    /// of the JSON request body (Jira's `nextPageToken`). An empty or missing cursor, an
    /// empty page or `stop_path` being `true` ends the stream.
    Cursor {
        cursor_path: String,
        param: String,
        #[serde(default)]
        page_size_param: Option<String>,
        #[serde(default)]
        page_size: Option<u32>,
        /// Where `param` and `page_size_param` go.
        #[serde(default)]
        location: CursorLocation,
        /// JSONPath of a boolean in the body; `true` ends the stream (`$.isLast`).
        #[serde(default)]
        stop_path: Option<String>,
    },
    /// The next page's full URL in the body (`$.next`, `$["@odata.nextLink"]`).
    NextUrl { next_url_path: String },
    /// `offset` and `limit` parameters; stops on an empty page, on a short page or at
    /// `total`, unless `stop_path` says.
    Offset {
        #[serde(default = "offset_param")]
        offset_param: String,
        #[serde(default = "limit_param")]
        limit_param: String,
        page_size: u32,
        #[serde(default)]
        total_path: Option<String>,
        /// JSONPath of a boolean in the body (`$.isLast`): `true` ends the stream, `false`
        /// goes on after a non-empty page even if it is short or `total` is reached.
        #[serde(default)]
        stop_path: Option<String>,
    },
    /// Page numbers; stops on an empty or short page or at `total_pages`, unless
    /// `stop_path` says.
    Page {
        #[serde(default = "page_param")]
        page_param: String,
        #[serde(default = "one")]
        start_page: u64,
        #[serde(default)]
        page_size_param: Option<String>,
        page_size: u32,
        #[serde(default)]
        total_pages_path: Option<String>,
        /// JSONPath of a boolean in the body: `true` ends the stream, `false` goes on after
        /// a non-empty page.
        #[serde(default)]
        stop_path: Option<String>,
    },
    /// GraphQL Relay connections: `pageInfo.hasNextPage` / `endCursor` into a variable.
    GraphqlRelay {
        /// JSONPath of the `pageInfo` object.
        page_info_path: String,
        /// The variable the cursor goes into (`after`).
        #[serde(default = "after")]
        cursor_variable: String,
    },
}

/// Where a cursor and page size are sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CursorLocation {
    /// Query parameters.
    #[default]
    Query,
    /// Top-level keys of the request's JSON body (a `POST` search).
    Body,
}

fn offset_param() -> String {
    "offset".into()
}
fn limit_param() -> String {
    "limit".into()
}
fn page_param() -> String {
    "page".into()
}
fn one() -> u64 {
    1
}
fn after() -> String {
    "after".into()
}

/// How a stream reads only what changed since the last complete run.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Incremental {
    /// Read everything every run; records no longer listed are deleted.
    #[default]
    FullRefresh,
    /// Ask for records updated since the newest `cursor_field` seen, minus `lookback`.
    UpdatedSince {
        /// The query parameter (`updated_since`, or a filter built in `request.query` from
        /// `{{ checkpoint.since }}` when the provider wants an expression).
        #[serde(default)]
        param: Option<String>,
        /// JSONPath of the record's update time (RFC 3339 or epoch seconds).
        cursor_field: String,
        /// Re-read this much before the cursor: clocks and commit order are not exact.
        #[serde(default)]
        lookback: Option<ManifestDuration>,
        /// The first run's start (RFC 3339); without it the first run reads everything.
        #[serde(default)]
        start: Option<String>,
    },
    /// Full reads made cheap: every page is asked `If-None-Match` its last ETag, and a 304
    /// means that page did not change. Records no longer listed are deleted.
    Etag,
    /// Delta links (Microsoft Graph): the last page carries a link that returns only changes;
    /// removed records come as `removed_path` markers.
    DeltaToken {
        /// JSONPath of the delta link on the last page (`$["@odata.deltaLink"]`).
        delta_link_path: String,
        /// A record holding this path is a deletion (`$["@removed"]`).
        #[serde(default)]
        removed_path: Option<String>,
    },
}

/// A stream iterated once per value.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PartitionSpec {
    /// Each record of `stream` (read in full first); `value` (JSONPath) becomes
    /// `{{ partition.value }}` and the whole record `{{ partition.record }}`.
    Stream {
        stream: String,
        value: String,
        /// A top-level key set to the partition's value in every record read for it
        /// (`group_id`), before primary keys, unified mapping and storage.
        #[serde(default)]
        field: Option<String>,
    },
    /// Each item of a config list (`config.repositories`).
    Config {
        config: String,
        /// A top-level key set to the item in every record read for it.
        #[serde(default)]
        field: Option<String>,
    },
}

impl PartitionSpec {
    /// The record key the partition's value is written to, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Stream { field, .. } | Self::Config { field, .. } => field.as_deref(),
        }
    }
}

/// A rule for answers that are not plain data. Without `when` a rule looks at non-2xx
/// answers only; with `when` also at 2xx ones (Slack's `{"ok": false}` on HTTP 200).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorRule {
    /// Statuses the rule applies to; empty = any.
    #[serde(default)]
    pub status: Vec<u16>,
    /// The body must contain this text.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// The JSON body must hold `equals` at `path`.
    #[serde(default)]
    pub when: Option<BodyCondition>,
    pub action: ErrorAction,
    /// What a `fail` reports; without it a 401 or 403 is `auth_failed` and anything else
    /// `provider_error`.
    #[serde(default)]
    pub error: Option<ErrorKind>,
    /// A message for the run record.
    #[serde(default)]
    pub message: Option<String>,
    /// JSONPath of the provider's own code or message, added to the reported message
    /// (`$.error` → `slack: missing_scope`).
    #[serde(default)]
    pub message_path: Option<String>,
}

/// A value the body must hold.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BodyCondition {
    /// JSONPath into the body; its first value is compared.
    pub path: String,
    /// The JSON value it must equal (`false`, `invalid_auth`, `429`).
    pub equals: Value,
}

/// The typed failure an error rule reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The credential is not accepted (revoked, expired, wrong).
    AuthFailed,
    /// The credential works but lacks a scope or role.
    PermissionDenied,
    /// What was asked for does not exist.
    NotFound,
    /// The provider's rate limit.
    RateLimited,
    /// Any other refusal.
    ProviderError,
}

impl ErrorKind {
    /// The stable code (`auth_failed`).
    pub fn code(self) -> &'static str {
        match self {
            Self::AuthFailed => "auth_failed",
            Self::PermissionDenied => "permission_denied",
            Self::NotFound => "not_found",
            Self::RateLimited => "rate_limited",
            Self::ProviderError => "provider_error",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorAction {
    /// Retry the request (through the call stack's backoff).
    Retry,
    /// Treat as an empty page (a repository without a default branch's protection: 404);
    /// in a check or an action, accept the answer as a success.
    Ignore,
    /// Fail the run with the message.
    Fail,
}

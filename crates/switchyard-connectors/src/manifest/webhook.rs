//! Webhooks: how the provider's pushes are verified, named, deduplicated and routed to the
//! connection they concern.

use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    /// A verification scheme of the inbound gateway (`github`, `slack`, `standard_webhooks`…).
    pub scheme: String,
    /// The event type: a header, a body path, or both joined with `.` (`member.added`).
    pub event_type: Vec<ValueSource>,
    #[serde(default)]
    pub delivery_id: Option<ValueSource>,
    /// JSONPath of every event type one delivery carries, for providers that batch events
    /// (Okta event hooks: `$.data.events[*].eventType`). Each is matched against `events`
    /// besides the delivery's own type, so a batch syncs every stream its events concern.
    #[serde(default)]
    pub event_types_path: Option<String>,
    /// Which connection an event concerns: the payload value at `source` must equal the
    /// connection config field `config_field` (a GitHub installation id, an Okta org).
    #[serde(default)]
    pub routing: Option<Routing>,
    /// What event types do.
    #[serde(default)]
    pub events: Vec<WebhookEventRule>,
}

/// Where a value is read from in a webhook request. `strip_prefix` drops a fixed prefix
/// from the value when it has it (Jira's `jira:issue_updated` → `issue_updated`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ValueSource {
    Header {
        header: String,
        #[serde(default)]
        strip_prefix: Option<String>,
    },
    Body {
        path: String,
        #[serde(default)]
        strip_prefix: Option<String>,
    },
}

impl ValueSource {
    /// The prefix to drop from the value, if any.
    pub fn strip_prefix(&self) -> Option<&str> {
        match self {
            Self::Header { strip_prefix, .. } | Self::Body { strip_prefix, .. } => {
                strip_prefix.as_deref()
            }
        }
    }
}

/// One routing rule, or several: a connection is judged by the first rule whose
/// `config_field` it has set (a GitHub App connection by its installation id, a token
/// connection by its organization).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Routing {
    One(WebhookRouting),
    Several(Vec<WebhookRouting>),
}

impl Routing {
    pub fn rules(&self) -> &[WebhookRouting] {
        match self {
            Self::One(rule) => std::slice::from_ref(rule),
            Self::Several(rules) => rules,
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookRouting {
    pub source: ValueSource,
    pub config_field: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEventRule {
    /// An event type, or a prefix ending in `*` (`member*`).
    #[serde(rename = "type")]
    pub event_type: String,
    /// Streams whose incremental sync the event triggers.
    #[serde(default)]
    pub sync: Vec<String>,
    /// Answered at once without processing (`ping`).
    #[serde(default)]
    pub acknowledge_only: bool,
    /// Records the payload carries whole, stored into a stream as a sync page stores them.
    #[serde(default)]
    pub upsert: Option<RecordsRule>,
    /// Records the payload says are gone, marked deleted in a stream.
    #[serde(default)]
    pub delete: Option<RecordsRule>,
    /// An outbound event to publish.
    #[serde(default)]
    pub emit: Option<EmitRule>,
}

/// Records of a webhook payload, for one stream of the connection.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordsRule {
    /// The stream; its `primary_key` keys the records and its `schema` (if any) checks them.
    pub stream: String,
    /// JSONPath into the payload selecting one record or several (`$.event.user`).
    pub records: String,
}

/// An outbound event a webhook publishes to the tenant's subscribed endpoints.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmitRule {
    /// The event's type: literal, or a template over `event.type` (the matched webhook's
    /// type) and `config` (`slack.user.updated`, `github.{{ event.type }}`).
    #[serde(rename = "type")]
    pub event_type: String,
    /// JSONPath of the event's data in the payload (the first value it selects); default
    /// the whole payload.
    #[serde(default)]
    pub data: Option<String>,
}

//! Actions: requests that write to the provider (create a ticket, post a message).

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::{EndpointClass, RequestSpec};
use crate::unified::ActionMapping;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    #[schemars(regex(pattern = r"^[a-z][a-z0-9_]{0,62}$"))]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The request; templates read `input.*` and `config.*`.
    pub request: RequestSpec,
    /// A JSON Schema the input must satisfy before anything is sent.
    #[serde(default = "any_object")]
    pub input: Value,
    /// JSONPath of the output in the response body; the whole body without it.
    #[serde(default)]
    pub output: Option<String>,
    /// Whether repeating the request is harmless (then the call stack retries it).
    #[serde(default)]
    pub idempotent: bool,
    /// The header the provider reads an idempotency key from; a caller's key is passed on
    /// in it, which makes the request safe to retry.
    #[serde(default)]
    pub idempotency_header: Option<String>,
    /// The endpoint class the provider limits this action's requests under; a key template
    /// over `input` and `config` limits each key apart (Slack's per-channel posts).
    #[serde(default)]
    pub endpoint_class: Option<EndpointClass>,
    /// The output as a unified model (`ticket` for a created issue): the action's answer then
    /// carries it beside `output`. The same mapping forms as a stream's, except `related`;
    /// `from: exchange` makes the paths read `{"input": …, "output": …}`.
    #[serde(default)]
    pub unified: Option<ActionMapping>,
}

fn any_object() -> Value {
    serde_json::json!({"type": "object"})
}

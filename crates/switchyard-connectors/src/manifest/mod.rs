//! The declarative connector manifest: what a provider is, how to authenticate to it, how to
//! prove a credential works, how to read its streams and run its actions, and how its
//! webhooks reach a connection.
//!
//! A manifest is YAML ([`load`]) deserialized into these types, which refuse unknown fields
//! so a typo is an error with its line and column, then checked for what serde cannot see
//! ([`check`]): templates that parse, JSONPaths that parse, streams that exist. The published
//! JSON Schema (`schemas/manifest.schema.json`) is generated from the same types
//! ([`json_schema`]), so the schema and the loader never disagree. The normative description
//! of every field is `docs/specs/manifest.md`.

mod action;
mod auth;
pub mod check;

mod duration;
mod load;
mod locate;
mod stream;
mod webhook;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

pub use action::ActionSpec;
pub use auth::{
    ApiKeyLocation, AuthMode, AwsSigV4Spec, JwtAlgorithm, JwtBearerSpec, OAuth2Spec, OAuthGrant,
    TokenAuthMethod, TokenExchange,
};
pub use check::CheckSpec;
pub use duration::ManifestDuration;
pub use load::{ManifestError, ManifestProblem, json_schema, load};
pub use stream::{
    BodyCondition, CursorLocation, EndpointClass, ErrorAction, ErrorKind, ErrorRule, Incremental,
    Pagination, PartitionSpec, RequestSpec, StreamSpec,
};
pub use webhook::{
    EmitRule, RecordsRule, Routing, ValueSource, WebhookEventRule, WebhookRouting, WebhookSpec,
};

/// A connector manifest (one provider).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Stable connector id (`github`, `okta`): lowercase letters, digits and dashes.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]{0,62}$"))]
    pub id: String,
    /// The name people read.
    pub name: String,
    /// The manifest's own version (semver).
    pub version: String,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub docs_url: Option<String>,
    /// The API's base URL, a template over the connection's config
    /// (`https://{{ config.domain }}`); a connection's `base_url` overrides it.
    pub base_url: String,
    /// Headers sent with every request (templates; `{{ secrets.NAME }}` reads a credential
    /// field).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The connection config form: a JSON Schema object (type, title, description, pattern,
    /// and `secret: true` on fields that belong in the vault).
    #[serde(default = "empty_object_schema")]
    pub config: Value,
    /// How to authenticate; a connection chooses one mode by its `type`.
    pub auth: Vec<AuthMode>,
    /// The request that proves a credential works.
    #[serde(default)]
    pub check: Option<CheckSpec>,
    /// Error rules for every answer: the check's, every stream's (after the stream's own
    /// rules) and every action's.
    #[serde(default)]
    pub errors: Vec<ErrorRule>,
    /// Rate limits, signals, retries and capture, as the provider call stack reads them
    /// (`switchyard_http::ProviderPolicy::from_manifest`).
    #[serde(default)]
    pub limits: Option<Value>,
    #[serde(default)]
    pub streams: Vec<StreamSpec>,
    #[serde(default)]
    pub actions: Vec<ActionSpec>,
    #[serde(default)]
    pub webhooks: Option<WebhookSpec>,
}

fn empty_object_schema() -> Value {
    serde_json::json!({"type": "object", "properties": {}})
}

impl Manifest {
    pub fn stream(&self, name: &str) -> Option<&StreamSpec> {
        self.streams.iter().find(|s| s.name == name)
    }

    pub fn action(&self, name: &str) -> Option<&ActionSpec> {
        self.actions.iter().find(|a| a.name == name)
    }

    /// The auth mode named `kind` (`bearer`, `api_key`…), or the only one.
    pub fn auth_mode(&self, kind: Option<&str>) -> Option<&AuthMode> {
        match kind {
            Some(kind) => self.auth.iter().find(|mode| mode.kind() == kind),
            None if self.auth.len() == 1 => self.auth.first(),
            None => None,
        }
    }
}

//! The `Connector` trait every connector implements (the manifest engine and code
//! connectors alike), and the values that cross it.

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;
use switchyard_core::{ConnectionId, TenantId};
use switchyard_http::{
    CallScope, CredentialSource, ProviderClient, ProviderError, ProviderPolicy, ProviderRequest,
    ProviderResponse, RateLimitBackend,
};

use crate::manifest::ErrorKind;
use crate::template::TemplateError;

/// The provider call stack, as connectors see it: object-safe, so a connector does not
/// depend on which rate-limit backend or credential source the process runs with.
#[async_trait]
pub trait ProviderCalls: Send + Sync {
    async fn call(
        &self,
        policy: &ProviderPolicy,
        request: ProviderRequest,
    ) -> Result<ProviderResponse, ProviderError>;

    /// What the token endpoint granted the token `scope`'s calls carry, when the credential
    /// is a token minted with such an answer (see [`CredentialSource::granted_scopes`]).
    async fn granted_scopes(&self, scope: &CallScope) -> Option<Vec<String>> {
        let _ = scope;
        None
    }
}

#[async_trait]
impl<B, C> ProviderCalls for ProviderClient<B, C>
where
    B: RateLimitBackend + 'static,
    C: CredentialSource + 'static,
{
    async fn call(
        &self,
        policy: &ProviderPolicy,
        request: ProviderRequest,
    ) -> Result<ProviderResponse, ProviderError> {
        ProviderClient::call(self, policy, request).await
    }

    async fn granted_scopes(&self, scope: &CallScope) -> Option<Vec<String>> {
        ProviderClient::granted_scopes(self, scope).await
    }
}

/// The connection a call is made for. Holds no secret: credentials are placed on each
/// request by the call stack's credential source.
#[derive(Debug, Clone)]
pub struct ConnectionContext {
    pub tenant: TenantId,
    pub connection: ConnectionId,
    /// The connection's non-secret settings, validated against the connector's config form.
    pub config: Value,
    /// Overrides the manifest's base URL (self-hosted editions, tests).
    pub base_url: Option<String>,
    /// The `type` of the auth mode the connection's credential is for (`bearer`,
    /// `jwt_bearer`…): the check reports permissions the way that mode can.
    pub auth_mode: Option<String>,
}

/// What one call needs.
#[derive(Clone, Copy)]
pub struct CallContext<'a> {
    pub calls: &'a dyn ProviderCalls,
    pub connection: &'a ConnectionContext,
}

/// What a connector is, for the catalogue (`GET /v1/providers`).
#[derive(Debug, Clone, Serialize)]
pub struct ConnectorMetadata {
    pub id: String,
    pub name: String,
    pub version: String,
    pub categories: Vec<String>,
    pub docs_url: Option<String>,
    pub auth_modes: Vec<AuthModeInfo>,
    /// The connection config form (JSON Schema).
    pub config_schema: Value,
    pub streams: Vec<StreamInfo>,
    pub actions: Vec<ActionInfo>,
    pub webhook_events: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuthModeInfo {
    #[serde(rename = "type")]
    pub kind: String,
    /// The fields a connection's `credentials` must hold for this mode.
    pub credential_fields: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StreamInfo {
    pub name: String,
    pub description: Option<String>,
    /// `full_refresh`, `updated_since`, `etag` or `delta_token`.
    pub incremental: String,
    pub unified_model: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionInfo {
    pub name: String,
    pub description: Option<String>,
    pub input_schema: Value,
    pub idempotent: bool,
}

/// The outcome of a credential check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub success: bool,
    pub latency_ms: u64,
    pub permissions_verified: Vec<String>,
    pub permissions_missing: Vec<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// One record as read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    pub primary_key: String,
    pub data: Value,
}

/// One page of a stream and where to go on from.
#[derive(Debug, Clone)]
pub struct Page {
    pub records: Vec<Record>,
    /// Primary keys the provider reported deleted (delta links).
    pub deletions: Vec<String>,
    /// Keys of a page the provider answered `304 Not Modified` for: still there, unchanged.
    pub unchanged: Vec<String>,
    /// The page was a 304.
    pub not_modified: bool,
    /// Save this with the page; pass it back to get the next one.
    pub checkpoint: Value,
    /// The read is complete.
    pub done: bool,
    /// The read listed everything (not only changes): once it is done, records it did not
    /// see are deleted. Stable across resumed runs of one read.
    pub full_read: Option<String>,
}

/// A verified webhook, as the gateway passes it to the connector of its connection.
#[derive(Debug, Clone, Default)]
pub struct WebhookEvent {
    /// The gateway's event type without its provider namespace (`member.added`). A manifest
    /// names events by its own `event_type` parts; this is the fallback when they find none.
    pub event_type: Option<String>,
    /// The request's headers, names in lower case (empty when the caller has none).
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl WebhookEvent {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// What a webhook asks for.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WebhookOutcome {
    /// Streams to sync incrementally now.
    pub sync: Vec<String>,
    /// Nothing to do (a ping).
    pub acknowledged_only: bool,
    /// Records to store, per stream, as a sync page stores them.
    pub records: Vec<WebhookRecords>,
    /// Records the payload carried that cannot be stored (no primary key, or not valid
    /// against the stream's `schema`). Their stream is also in `sync`, so a sync stores what
    /// the provider lists instead.
    pub refused: Vec<RefusedRecord>,
    /// Outbound events to publish.
    pub emit: Vec<EmittedEvent>,
}

/// A webhook's records for one stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WebhookRecords {
    pub stream: String,
    pub upserts: Vec<Record>,
    /// Primary keys of records the payload says are gone.
    pub deletions: Vec<String>,
}

/// A record refused, and why: JSON pointers and schema keywords, never the record's values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefusedRecord {
    pub stream: String,
    /// `None` when the key itself could not be read.
    pub primary_key: Option<String>,
    pub problems: Vec<String>,
}

/// An outbound event a webhook publishes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmittedEvent {
    pub event_type: String,
    pub data: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("{connector} does not support {what}")]
    Unsupported {
        connector: String,
        what: &'static str,
    },
    #[error("invalid connection config: {}", .0.join("; "))]
    InvalidConfig(Vec<String>),
    #[error("no stream `{0}`")]
    UnknownStream(String),
    #[error("no action `{0}`")]
    UnknownAction(String),
    #[error("invalid action input: {}", .0.join("; "))]
    InvalidInput(Vec<String>),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The provider answered with a status the stream's rules make a failure.
    #[error("the provider answered {status}: {message}")]
    ProviderStatus { status: u16, message: String },
    /// An answer an error rule (`errors: [{…, error: auth_failed}]`) makes a typed failure,
    /// whatever its status (Slack's `{"ok": false, "error": "invalid_auth"}` on HTTP 200).
    #[error("the provider refused ({}, HTTP {status}): {message}", kind.code())]
    Refused {
        kind: ErrorKind,
        status: u16,
        message: String,
    },
    #[error("the provider's answer cannot be read: {0}")]
    InvalidResponse(String),
    #[error("the saved checkpoint cannot be used: {0}")]
    Checkpoint(String),
    /// A link or URL from the provider points at another origin than the connection's base:
    /// following it would send the credential elsewhere.
    #[error("refusing to follow `{0}`: another origin than the connection's")]
    ForeignUrl(String),
}

impl ConnectorError {
    /// A stable code for API errors and run records.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unsupported { .. } => "unsupported",
            Self::InvalidConfig(_) => "invalid_config",
            Self::UnknownStream(_) => "unknown_stream",
            Self::UnknownAction(_) => "unknown_action",
            Self::InvalidInput(_) => "invalid_input",
            Self::Template(_) => "template_error",
            Self::Provider(error) => error.code(),
            Self::ProviderStatus {
                status: 401 | 403, ..
            } => "auth_failed",
            Self::ProviderStatus { .. } => "provider_error",
            Self::Refused { kind, .. } => kind.code(),
            Self::InvalidResponse(_) => "invalid_response",
            Self::Checkpoint(_) => "invalid_checkpoint",
            Self::ForeignUrl(_) => "foreign_url",
        }
    }
}

/// A connector. Methods a connector does not support answer [`ConnectorError::Unsupported`].
#[async_trait]
pub trait Connector: Send + Sync {
    fn metadata(&self) -> &ConnectorMetadata;

    /// Checks a connection's config against the connector's form, before any I/O.
    fn validate_config(&self, config: &Value) -> Result<(), ConnectorError>;

    /// Proves the credential works and reports the permissions it has.
    async fn test_connection(&self, cx: CallContext<'_>) -> Result<CheckReport, ConnectorError>;

    /// Reads the next page of `stream` from `checkpoint` (`None`: the first read ever).
    async fn collect(
        &self,
        cx: CallContext<'_>,
        stream: &str,
        checkpoint: Option<&Value>,
    ) -> Result<Page, ConnectorError>;

    async fn handle_webhook(
        &self,
        cx: CallContext<'_>,
        event: &WebhookEvent,
    ) -> Result<WebhookOutcome, ConnectorError> {
        let _ = (cx, event);
        Err(ConnectorError::Unsupported {
            connector: self.metadata().id.clone(),
            what: "webhooks",
        })
    }

    /// Runs an action; `idempotency_key` is the caller's, passed to providers that honour one.
    async fn execute_action(
        &self,
        cx: CallContext<'_>,
        action: &str,
        input: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<Value, ConnectorError> {
        let _ = (cx, action, input, idempotency_key);
        Err(ConnectorError::Unsupported {
            connector: self.metadata().id.clone(),
            what: "actions",
        })
    }
}

/// How long a connector call may take, waits and retries included, by default.
pub const DEFAULT_CALL_DEADLINE: Duration = Duration::from_secs(120);

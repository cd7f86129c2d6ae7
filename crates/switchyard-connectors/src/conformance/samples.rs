//! The inputs a connector's tests hand the kit: actions to run and webhooks to deliver, each
//! with what it must lead to.

use serde_json::Value;

/// One action call.
#[derive(Debug, Clone)]
pub struct ActionSample {
    pub action: String,
    pub input: Value,
    pub idempotency_key: Option<String>,
    /// `None`: the action must succeed. `Some(code)`: it must fail with this
    /// [`ConnectorError::code`](crate::ConnectorError::code) (`invalid_input`).
    pub expect_error: Option<String>,
}

impl ActionSample {
    /// A call that must succeed.
    pub fn new(action: impl Into<String>, input: Value) -> Self {
        Self {
            action: action.into(),
            input,
            idempotency_key: None,
            expect_error: None,
        }
    }

    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// The call must fail with `code`.
    pub fn failing_with(mut self, code: impl Into<String>) -> Self {
        self.expect_error = Some(code.into());
        self
    }
}

/// One verified webhook, as the gateway would pass it on.
#[derive(Debug, Clone)]
pub struct WebhookSample {
    /// The gateway's type without its provider namespace.
    pub event_type: Option<String>,
    /// Request headers (a manifest's `event_type` may read them).
    pub headers: Vec<(String, String)>,
    pub body: Value,
    /// The streams it must ask to sync, in any order.
    pub expect_sync: Vec<String>,
    /// Whether it must be answered without processing (a ping).
    pub expect_acknowledged_only: bool,
    /// When set, the primary keys it must store, per stream (in any order).
    pub expect_stored: Option<Vec<(String, Vec<String>)>>,
    /// When set, the types of the events it must emit, in order.
    pub expect_emitted: Option<Vec<String>>,
}

impl WebhookSample {
    /// An event that must ask for nothing, until [`syncs`](Self::syncs) or
    /// [`acknowledged_only`](Self::acknowledged_only) says otherwise.
    pub fn new(event_type: impl Into<String>, body: Value) -> Self {
        Self {
            event_type: Some(event_type.into()),
            headers: Vec::new(),
            body,
            expect_sync: Vec::new(),
            expect_acknowledged_only: false,
            expect_stored: None,
            expect_emitted: None,
        }
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// It must store the records keyed `keys` into `stream` (each call adds a stream).
    pub fn stores<S: Into<String>>(
        mut self,
        stream: impl Into<String>,
        keys: impl IntoIterator<Item = S>,
    ) -> Self {
        self.expect_stored
            .get_or_insert_with(Vec::new)
            .push((stream.into(), keys.into_iter().map(Into::into).collect()));
        self
    }

    /// It must emit events of these types, in this order.
    pub fn emits<S: Into<String>>(mut self, types: impl IntoIterator<Item = S>) -> Self {
        self.expect_emitted = Some(types.into_iter().map(Into::into).collect());
        self
    }

    pub fn syncs<S: Into<String>>(mut self, streams: impl IntoIterator<Item = S>) -> Self {
        self.expect_sync = streams.into_iter().map(Into::into).collect();
        self
    }

    pub fn acknowledged_only(mut self) -> Self {
        self.expect_acknowledged_only = true;
        self
    }

    /// Whether this sample exercises the declared event type `declared` (an exact type or a
    /// prefix ending in `*`).
    pub(super) fn covers(&self, declared: &str) -> bool {
        let Some(event_type) = self.event_type.as_deref() else {
            return false;
        };
        match declared.strip_suffix('*') {
            Some(prefix) => event_type.starts_with(prefix),
            None => event_type == declared,
        }
    }
}

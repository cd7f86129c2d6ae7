//! Optional capture of provider calls for diagnostics and replay, redacted before anything
//! leaves the call.
//!
//! What is captured is the request as the caller built it, before the stack injects the
//! credential: the plaintext secret is never in a capture to begin with. On top of that,
//! authorization-like headers, every header marked sensitive, the configured headers and the
//! configured body fields (JSON pointers like `/user/email`, or key names like `password`
//! matched at any depth; also keys of form-encoded bodies) are replaced with
//! [`REDACTED`]. A body that cannot be redacted field by field (not JSON, not a form) while
//! fields are configured is left out rather than stored whole.

use std::time::SystemTime;

use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What replaces a redacted value.
pub const REDACTED: &str = "[redacted]";

/// Headers redacted in every capture, whatever the configuration.
const ALWAYS_REDACTED: [&str; 6] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
];

/// What a provider (or an operator) asks to capture and to hide.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureSpec {
    /// Capture this provider's calls at all.
    #[serde(default)]
    pub enabled: bool,
    /// More header names to redact (case-insensitive).
    #[serde(default)]
    pub redact_headers: Vec<String>,
    /// Body fields to redact: a JSON pointer (`/user/email`) or a key name (`ssn`).
    #[serde(default)]
    pub redact_fields: Vec<String>,
    /// More query parameters to redact.
    #[serde(default)]
    pub redact_query: Vec<String>,
}

/// One captured attempt, already redacted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capture {
    pub tenant: String,
    pub provider: String,
    pub connection: Option<String>,
    pub route: String,
    pub attempt: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub at: time::OffsetDateTime,
    pub request: CapturedMessage,
    /// `None` when no answer came (timeout, connection error).
    pub response: Option<CapturedResponse>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapturedMessage {
    pub method: String,
    /// Path and query (redacted); the host is the provider's.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: CapturedBody,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapturedResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: CapturedBody,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CapturedBody {
    Empty,
    Json {
        value: Value,
    },
    Text {
        text: String,
    },
    /// Kept out: binary, or not redactable field by field while fields are configured.
    Omitted {
        bytes: usize,
        reason: &'static str,
    },
}

/// Where captures go (the blob store, sealed with the tenant's key, in the server). Called
/// on the call's task: implementations enqueue and return.
pub trait CaptureSink: Send + Sync {
    fn capture(&self, capture: Capture);
}

impl CaptureSpec {
    fn header_redacted(&self, name: &str) -> bool {
        ALWAYS_REDACTED.iter().any(|h| h.eq_ignore_ascii_case(name))
            || self
                .redact_headers
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name))
    }

    /// Headers as strings, redacted. A value marked sensitive is redacted whatever its name.
    pub fn headers(&self, headers: &HeaderMap) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(name, value)| {
                let shown = if value.is_sensitive() || self.header_redacted(name.as_str()) {
                    REDACTED.to_owned()
                } else {
                    String::from_utf8_lossy(value.as_bytes()).into_owned()
                };
                (name.as_str().to_owned(), shown)
            })
            .collect()
    }

    /// Path and query of `url`, with configured query parameters redacted.
    pub fn url(&self, url: &url::Url) -> String {
        let mut out = url.path().to_owned();
        if url.query().is_none() {
            return out;
        }
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let hidden = self.redact_query.iter().any(|q| q == &k) || self.field_named(&k);
                let v = if hidden { REDACTED.into() } else { v };
                (k.into_owned(), v.into_owned())
            })
            .collect();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        out.push('?');
        out.push_str(&query);
        out
    }

    fn field_named(&self, key: &str) -> bool {
        self.redact_fields
            .iter()
            .any(|f| !f.starts_with('/') && f == key)
    }

    /// A body, redacted per the configured fields.
    pub fn body(&self, content_type: Option<&str>, bytes: &[u8]) -> CapturedBody {
        if bytes.is_empty() {
            return CapturedBody::Empty;
        }
        if let Ok(mut value) = serde_json::from_slice::<Value>(bytes) {
            self.redact_json(&mut value);
            return CapturedBody::Json { value };
        }
        let is_form =
            content_type.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            let pairs: Vec<(String, String)> = url::form_urlencoded::parse(bytes)
                .map(|(k, v)| {
                    let v = if self.field_named(&k) {
                        REDACTED.into()
                    } else {
                        v
                    };
                    (k.into_owned(), v.into_owned())
                })
                .collect();
            let text = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish();
            return CapturedBody::Text { text };
        }
        if !self.redact_fields.is_empty() {
            return CapturedBody::Omitted {
                bytes: bytes.len(),
                reason: "not_redactable",
            };
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => CapturedBody::Text {
                text: text.to_owned(),
            },
            Err(_) => CapturedBody::Omitted {
                bytes: bytes.len(),
                reason: "binary",
            },
        }
    }

    fn redact_json(&self, value: &mut Value) {
        for field in &self.redact_fields {
            if field.starts_with('/')
                && let Some(target) = value.pointer_mut(field)
            {
                *target = Value::String(REDACTED.to_owned());
            }
        }
        redact_keys(value, &|key| self.field_named(key));
    }
}

/// Replaces the value of every key `hidden` names, at any depth.
fn redact_keys(value: &mut Value, hidden: &dyn Fn(&str) -> bool) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if hidden(key) {
                    *child = Value::String(REDACTED.to_owned());
                } else {
                    redact_keys(child, hidden);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact_keys(v, hidden)),
        _ => {}
    }
}

/// The capture's timestamp type from a wall-clock time.
pub(crate) fn timestamp(at: SystemTime) -> time::OffsetDateTime {
    time::OffsetDateTime::from(at)
}

#[cfg(test)]
mod tests;

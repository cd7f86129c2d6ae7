//! The raw inbound request, exactly as received, and read-only helpers over it.

use http::{HeaderMap, Method};
use serde_json::Value;
use time::OffsetDateTime;
use url::Url;

use crate::error::Rejection;

/// What the server received, untouched. `url` is the full *public* URL the provider was given
/// (scheme, host, path and query), not the internal one behind a proxy: Twilio signs it.
#[derive(Debug, Clone, Copy)]
pub struct InboundRequest<'a> {
    pub method: &'a Method,
    pub url: &'a Url,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub received_at: OffsetDateTime,
}

impl InboundRequest<'_> {
    /// A header as text; absent, repeated-but-first, or non-visible-ASCII values are `None`.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn require_header(&self, name: &str) -> Result<&str, Rejection> {
        match self.headers.get(name) {
            None => Err(Rejection::MissingHeader(name.to_ascii_lowercase())),
            Some(value) => value
                .to_str()
                .map_err(|_| Rejection::MalformedHeader(name.to_ascii_lowercase())),
        }
    }

    pub(crate) fn query(&self, name: &str) -> Option<String> {
        self.url
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    /// The body as JSON, if it is JSON.
    pub(crate) fn json(&self) -> Option<Value> {
        serde_json::from_slice(self.body).ok()
    }

    pub(crate) fn content_type_is(&self, essence: &str) -> bool {
        self.header("content-type").is_some_and(|value| {
            value
                .split(';')
                .next()
                .is_some_and(|v| v.trim().eq_ignore_ascii_case(essence))
        })
    }

    pub(crate) fn form_params(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.body)
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect()
    }
}

/// A string field at a JSON pointer (`/message/messageId`).
pub(crate) fn json_str<'v>(value: &'v Value, pointer: &str) -> Option<&'v str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// Parse a Unix timestamp in seconds (digits only, as every signing provider sends).
pub(crate) fn parse_unix_seconds(text: &str) -> Result<i64, Rejection> {
    let text = text.trim();
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejection::MalformedTimestamp(
            "not a unix timestamp in seconds",
        ));
    }
    text.parse::<i64>()
        .map_err(|_| Rejection::MalformedTimestamp("not a unix timestamp in seconds"))
}

/// Both directions: a stale timestamp is a replay, a future one is a replay prepared in advance.
pub(crate) fn check_tolerance(
    signed_unix_millis: i128,
    received_at: OffsetDateTime,
    tolerance_seconds: u64,
) -> Result<OffsetDateTime, Rejection> {
    let received_millis = received_at.unix_timestamp_nanos() / 1_000_000;
    let skew = (received_millis - signed_unix_millis).unsigned_abs();
    if skew > u128::from(tolerance_seconds) * 1000 {
        return Err(Rejection::TimestampOutOfTolerance);
    }
    OffsetDateTime::from_unix_timestamp_nanos(signed_unix_millis * 1_000_000)
        .map_err(|_| Rejection::MalformedTimestamp("out of range"))
}

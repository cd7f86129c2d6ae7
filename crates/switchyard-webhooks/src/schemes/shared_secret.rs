//! Providers that send a shared secret itself (a token, a password, a client state) rather
//! than a signature. Compared by digest, so neither content nor length leaks through timing.

use crate::config::SchemeOptions;
use crate::crypto;
use crate::error::Rejection;
use crate::request::InboundRequest;
use crate::schemes::Outcome;
use crate::secret::Secret;

fn match_secret(secrets: &[Secret], provided: &[u8]) -> Result<usize, Rejection> {
    if secrets.is_empty() {
        return Err(Rejection::NoSecretConfigured);
    }
    if provided.is_empty() {
        return Err(Rejection::CredentialMismatch);
    }
    secrets
        .iter()
        .position(|secret| crypto::ct_eq_secret(provided, secret.bytes()))
        .ok_or(Rejection::CredentialMismatch)
}

/// Raw header bytes: a token need not be visible ASCII to be compared.
fn header_bytes<'r>(req: &'r InboundRequest<'_>, name: &str) -> Result<&'r [u8], Rejection> {
    req.headers
        .get(name)
        .map(http::HeaderValue::as_bytes)
        .ok_or_else(|| Rejection::MissingHeader(name.to_ascii_lowercase()))
}

fn strip_prefix<'a>(value: &'a [u8], prefix: Option<&str>) -> Result<&'a [u8], Rejection> {
    match prefix {
        None => Ok(value),
        Some(prefix) => {
            let prefix = prefix.as_bytes();
            // Auth schemes such as `Bearer ` are case-insensitive.
            if value.len() >= prefix.len() && value[..prefix.len()].eq_ignore_ascii_case(prefix) {
                Ok(&value[prefix.len()..])
            } else {
                Err(Rejection::CredentialMismatch)
            }
        }
    }
}

/// `X-Gitlab-Token` carries the secret token verbatim.
pub(super) fn gitlab(secrets: &[Secret], req: &InboundRequest<'_>) -> Result<Outcome, Rejection> {
    let token = header_bytes(req, "x-gitlab-token")?;
    match_secret(secrets, token).map(Outcome::secret)
}

/// Okta event hooks send the configured secret in the configured header (`Authorization` by
/// default), including on the one-time verification request.
pub(super) fn okta(
    options: &SchemeOptions,
    secrets: &[Secret],
    req: &InboundRequest<'_>,
) -> Result<Outcome, Rejection> {
    let name = options.header.as_deref().unwrap_or("authorization");
    let value = strip_prefix(header_bytes(req, name)?, options.prefix.as_deref())?;
    match_secret(secrets, value).map(Outcome::secret)
}

/// A configured header carries an API key, optionally after a prefix such as `Bearer `.
pub(super) fn api_key(
    options: &SchemeOptions,
    secrets: &[Secret],
    req: &InboundRequest<'_>,
) -> Result<Outcome, Rejection> {
    let name = options
        .header
        .as_deref()
        .ok_or(Rejection::Misconfigured("api_key_header needs a header"))?;
    let value = strip_prefix(header_bytes(req, name)?, options.prefix.as_deref())?;
    match_secret(secrets, value).map(Outcome::secret)
}

/// `Authorization: Basic base64(user:password)`; each secret is `user:password`.
pub(super) fn basic(secrets: &[Secret], req: &InboundRequest<'_>) -> Result<Outcome, Rejection> {
    let value = req.require_header("authorization")?;
    let (kind, encoded) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| Rejection::MalformedHeader("authorization".into()))?;
    if !kind.eq_ignore_ascii_case("basic") {
        return Err(Rejection::MalformedHeader("authorization".into()));
    }
    let decoded = crypto::decode_base64(encoded.trim())
        .ok_or_else(|| Rejection::MalformedHeader("authorization".into()))?;
    match_secret(secrets, &decoded).map(Outcome::secret)
}

/// Microsoft Graph has no signature: every notification in `value[]` carries the `clientState`
/// set on the subscription, and all of them must match.
pub(super) fn graph(secrets: &[Secret], req: &InboundRequest<'_>) -> Result<Outcome, Rejection> {
    if secrets.is_empty() {
        return Err(Rejection::NoSecretConfigured);
    }
    let body = req.json().ok_or(Rejection::MalformedBody(
        "expected a JSON notification collection",
    ))?;
    let notifications = body
        .get("value")
        .and_then(serde_json::Value::as_array)
        .filter(|value| !value.is_empty())
        .ok_or(Rejection::MalformedBody("expected a non-empty value[]"))?;
    let mut first = None;
    for notification in notifications {
        let state = notification
            .get("clientState")
            .and_then(serde_json::Value::as_str)
            .ok_or(Rejection::CredentialMismatch)?;
        let index = match_secret(secrets, state.as_bytes())?;
        first.get_or_insert(index);
    }
    first
        .map(Outcome::secret)
        .ok_or(Rejection::CredentialMismatch)
}

//! Providers that sign with an HMAC keyed by a shared secret.

use crate::config::{HmacAlgorithm, SchemeOptions, SignatureEncoding};
use crate::crypto::{self, Mac};
use crate::error::Rejection;
use crate::request::{InboundRequest, check_tolerance, parse_unix_seconds};
use crate::schemes::Outcome;
use crate::secret::Secret;

/// Decode one signature and check its length before any comparison.
fn decode(text: &str, encoding: SignatureEncoding, mac: Mac) -> Result<Vec<u8>, Rejection> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Rejection::MalformedSignature("empty"));
    }
    let bytes = match encoding {
        SignatureEncoding::Hex => {
            crypto::decode_hex(text).ok_or(Rejection::MalformedSignature("not hex"))?
        }
        SignatureEncoding::Base64 => {
            crypto::decode_base64(text).ok_or(Rejection::MalformedSignature("not base64"))?
        }
    };
    if bytes.len() != mac.len() {
        return Err(Rejection::MalformedSignature("wrong length"));
    }
    Ok(bytes)
}

/// The first secret whose MAC over `parts` equals one of `candidates`. Every secret is tried, so
/// deliveries signed with the previous secret keep working during a rotation.
fn match_secrets(
    mac: Mac,
    secrets: &[Secret],
    candidates: &[Vec<u8>],
    parts: &[&[u8]],
) -> Result<usize, Rejection> {
    if secrets.is_empty() {
        return Err(Rejection::NoSecretConfigured);
    }
    for (index, secret) in secrets.iter().enumerate() {
        let expected = crypto::mac(mac, secret.bytes(), parts);
        if candidates.iter().any(|c| crypto::ct_eq(c, &expected)) {
            return Ok(index);
        }
    }
    Err(Rejection::SignatureMismatch)
}

fn strip<'a>(value: &'a str, prefix: &str) -> Result<&'a str, Rejection> {
    value
        .trim()
        .strip_prefix(prefix)
        .ok_or(Rejection::MalformedSignature("unexpected prefix"))
}

/// `X-Hub-Signature-256: sha256={hex HMAC-SHA256(body)}`.
pub(super) fn github(secrets: &[Secret], req: &InboundRequest<'_>) -> Result<Outcome, Rejection> {
    hub_signature("x-hub-signature-256", secrets, req)
}

/// Jira admin webhooks: the same format in `X-Hub-Signature`.
pub(super) fn jira(secrets: &[Secret], req: &InboundRequest<'_>) -> Result<Outcome, Rejection> {
    hub_signature("x-hub-signature", secrets, req)
}

fn hub_signature(
    header: &str,
    secrets: &[Secret],
    req: &InboundRequest<'_>,
) -> Result<Outcome, Rejection> {
    let value = req.require_header(header)?;
    let sig = decode(
        strip(value, "sha256=")?,
        SignatureEncoding::Hex,
        Mac::Sha256,
    )?;
    match_secrets(Mac::Sha256, secrets, &[sig], &[req.body]).map(Outcome::secret)
}

/// `X-Shopify-Hmac-Sha256: {base64 HMAC-SHA256(body)}`.
pub(super) fn shopify(secrets: &[Secret], req: &InboundRequest<'_>) -> Result<Outcome, Rejection> {
    let value = req.require_header("x-shopify-hmac-sha256")?;
    let sig = decode(value, SignatureEncoding::Base64, Mac::Sha256)?;
    match_secrets(Mac::Sha256, secrets, &[sig], &[req.body]).map(Outcome::secret)
}

/// `X-Slack-Signature: v0={hex HMAC-SHA256("v0:{timestamp}:{body}")}`.
pub(super) fn slack(
    secrets: &[Secret],
    req: &InboundRequest<'_>,
    tolerance: u64,
) -> Result<Outcome, Rejection> {
    let timestamp = req.require_header("x-slack-request-timestamp")?;
    let value = req.require_header("x-slack-signature")?;
    let unix = parse_unix_seconds(timestamp)?;
    let signed_at = check_tolerance(i128::from(unix) * 1000, req.received_at, tolerance)?;
    let sig = decode(strip(value, "v0=")?, SignatureEncoding::Hex, Mac::Sha256)?;
    let parts: [&[u8]; 4] = [b"v0:", timestamp.as_bytes(), b":", req.body];
    let index = match_secrets(Mac::Sha256, secrets, &[sig], &parts)?;
    Ok(Outcome::signed(index, signed_at))
}

/// `Stripe-Signature: t={unix},v1={hex},v1={hex}` over `{t}.{body}`. Other schemes (`v0`, test
/// mode) are ignored, as Stripe's libraries do.
pub(super) fn stripe(
    secrets: &[Secret],
    req: &InboundRequest<'_>,
    tolerance: u64,
) -> Result<Outcome, Rejection> {
    let value = req.require_header("stripe-signature")?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    let mut malformed = None;
    for item in value.split(',') {
        let Some((key, val)) = item.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" if timestamp.is_none() => timestamp = Some(val),
            "v1" => match decode(val, SignatureEncoding::Hex, Mac::Sha256) {
                Ok(sig) => candidates.push(sig),
                Err(e) => malformed = Some(e),
            },
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(Rejection::MalformedTimestamp("no t= in the header"))?;
    let unix = parse_unix_seconds(timestamp)?;
    let signed_at = check_tolerance(i128::from(unix) * 1000, req.received_at, tolerance)?;
    if candidates.is_empty() {
        return Err(malformed.unwrap_or(Rejection::MalformedSignature("no v1 signature")));
    }
    let parts: [&[u8]; 3] = [timestamp.as_bytes(), b".", req.body];
    let index = match_secrets(Mac::Sha256, secrets, &candidates, &parts)?;
    Ok(Outcome::signed(index, signed_at))
}

/// `Linear-Signature: {hex HMAC-SHA256(body)}`, then the signed body's `webhookTimestamp`
/// (milliseconds) must be recent.
pub(super) fn linear(
    secrets: &[Secret],
    req: &InboundRequest<'_>,
    tolerance: u64,
) -> Result<Outcome, Rejection> {
    let value = req.require_header("linear-signature")?;
    let sig = decode(value, SignatureEncoding::Hex, Mac::Sha256)?;
    let index = match_secrets(Mac::Sha256, secrets, &[sig], &[req.body])?;
    // Only read the body once it is known to be authentic.
    let millis = req
        .json()
        .as_ref()
        .and_then(|body| body.get("webhookTimestamp"))
        .and_then(serde_json::Value::as_i64)
        .ok_or(Rejection::MalformedTimestamp(
            "no webhookTimestamp in the body",
        ))?;
    let signed_at = check_tolerance(i128::from(millis), req.received_at, tolerance)?;
    Ok(Outcome::signed(index, signed_at))
}

/// A configurable HMAC: header, prefix, algorithm, encoding, optional timestamp header and a
/// signed-content template.
pub(super) fn generic(
    options: &SchemeOptions,
    secrets: &[Secret],
    req: &InboundRequest<'_>,
    tolerance: u64,
) -> Result<Outcome, Rejection> {
    let header = options
        .header
        .as_deref()
        .ok_or(Rejection::Misconfigured("generic_hmac needs a header"))?;
    let mac = match options.algorithm.unwrap_or_default() {
        HmacAlgorithm::Sha1 => Mac::Sha1,
        HmacAlgorithm::Sha256 => Mac::Sha256,
        HmacAlgorithm::Sha512 => Mac::Sha512,
    };
    let encoding = options.encoding.unwrap_or_default();
    let value = req.require_header(header)?;

    let mut signed_at = None;
    let mut timestamp = "";
    if let Some(name) = options.timestamp_header.as_deref() {
        timestamp = req.require_header(name)?;
        let unix = parse_unix_seconds(timestamp)?;
        signed_at = Some(check_tolerance(
            i128::from(unix) * 1000,
            req.received_at,
            tolerance,
        )?);
    }
    let id = match options.id_header.as_deref() {
        Some(name) => req.header(name).unwrap_or(""),
        None => "",
    };

    // Several signatures may be sent, separated by spaces.
    let prefix = options.prefix.as_deref().unwrap_or("");
    let mut candidates = Vec::new();
    let mut malformed = None;
    for token in value.split_ascii_whitespace() {
        match strip(token, prefix).and_then(|sig| decode(sig, encoding, mac)) {
            Ok(sig) => candidates.push(sig),
            Err(e) => malformed = Some(e),
        }
    }
    if candidates.is_empty() {
        return Err(malformed.unwrap_or(Rejection::MalformedSignature("empty")));
    }

    let template = options.signed_content.as_deref().unwrap_or("{body}");
    let url = req.url.as_str();
    let parts = template_parts(template, timestamp, id, url, req.body);
    let index = match_secrets(mac, secrets, &candidates, &parts)?;
    Ok(Outcome {
        secret_index: Some(index),
        signed_at,
        principal: None,
    })
}

/// Split `{timestamp}.{body}` into the byte slices to feed the MAC, body included by reference.
fn template_parts<'a>(
    template: &'a str,
    timestamp: &'a str,
    id: &'a str,
    url: &'a str,
    body: &'a [u8],
) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let (literal, tail) = rest.split_at(start);
        let replacement: Option<&'a [u8]> = if tail.starts_with("{body}") {
            Some(body)
        } else if tail.starts_with("{timestamp}") {
            Some(timestamp.as_bytes())
        } else if tail.starts_with("{id}") {
            Some(id.as_bytes())
        } else if tail.starts_with("{url}") {
            Some(url.as_bytes())
        } else {
            None
        };
        parts.push(literal.as_bytes());
        match (replacement, tail.find('}')) {
            (Some(value), Some(end)) => {
                parts.push(value);
                rest = &tail[end + 1..];
            }
            _ => {
                parts.push(&tail.as_bytes()[..1]);
                rest = &tail[1..];
            }
        }
    }
    parts.push(rest.as_bytes());
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_expand() {
        let parts = template_parts("{timestamp}.{body}", "12", "", "", b"B");
        assert_eq!(parts.concat(), b"12.B");
        let parts = template_parts("v0:{timestamp}:{body}{x}", "1", "", "", b"B");
        assert_eq!(parts.concat(), b"v0:1:B{x}");
        let parts = template_parts("{id}|{url}|{body}", "", "i", "u", b"");
        assert_eq!(parts.concat(), b"i|u|");
    }
}

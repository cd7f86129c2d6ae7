//! Google Cloud Pub/Sub push with OIDC authentication: `Authorization: Bearer {JWT}` signed by
//! Google (RS256), whose issuer, audience and (optionally) service-account email are checked.

use serde_json::Value;
use time::OffsetDateTime;
use url::Url;

use crate::config::SchemeOptions;
use crate::error::Rejection;
use crate::keys::KeyCache;
use crate::request::InboundRequest;
use crate::schemes::Outcome;
use crate::schemes::jwt;

pub(crate) const DEFAULT_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";
const DEFAULT_ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];
/// Clock skew allowed on `exp`, `nbf` and `iat`.
const LEEWAY_SECONDS: i64 = 60;

pub(super) async fn verify(
    options: &SchemeOptions,
    req: &InboundRequest<'_>,
    keys: &KeyCache,
) -> Result<Outcome, Rejection> {
    let audience = options
        .audience
        .as_deref()
        .ok_or(Rejection::Misconfigured("google_pubsub needs an audience"))?;
    let value = req.require_header("authorization")?;
    let token = value
        .split_once(' ')
        .filter(|(kind, _)| kind.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or(Rejection::InvalidToken("expected a bearer token"))?;
    let token = jwt::decode(token)?;

    let jwks_url = match &options.jwks_url {
        Some(url) => url.clone(),
        None => Url::parse(DEFAULT_JWKS_URL).map_err(|_| Rejection::KeyFetchFailed)?,
    };
    let kid = token.kid.as_deref();
    let mut jwks = keys.jwks(&jwks_url, false).await?;
    if !jwks.has_kid(kid) {
        // Google rotates keys; a new kid means fetching the set again (rate-limited).
        jwks = keys.jwks(&jwks_url, true).await?;
    }
    if !jwks.verify(kid, token.signing_input.as_bytes(), &token.signature) {
        return Err(Rejection::InvalidToken("signature does not verify"));
    }

    let claims = &token.claims;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let issuer_ok = match text("iss") {
        Some(iss) if options.issuers.is_empty() => DEFAULT_ISSUERS.contains(&iss),
        Some(iss) => options.issuers.iter().any(|allowed| allowed == iss),
        None => false,
    };
    if !issuer_ok {
        return Err(Rejection::InvalidToken("issuer"));
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == audience,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
        _ => false,
    };
    if !audience_ok {
        return Err(Rejection::InvalidToken("audience"));
    }
    let now = req.received_at.unix_timestamp();
    let number = |name: &str| claims.get(name).and_then(Value::as_i64);
    match number("exp") {
        Some(exp) if now <= exp.saturating_add(LEEWAY_SECONDS) => {}
        _ => return Err(Rejection::InvalidToken("expired or no exp")),
    }
    if number("nbf").is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_SECONDS))
        || number("iat").is_some_and(|iat| iat > now.saturating_add(LEEWAY_SECONDS))
    {
        return Err(Rejection::InvalidToken("not yet valid"));
    }
    if let Some(email) = options.email.as_deref() {
        let verified = match claims.get("email_verified") {
            Some(Value::Bool(v)) => *v,
            Some(Value::String(v)) => v == "true",
            _ => false,
        };
        if text("email") != Some(email) || !verified {
            return Err(Rejection::InvalidToken("email"));
        }
    }
    Ok(Outcome {
        secret_index: None,
        signed_at: number("iat").and_then(|iat| OffsetDateTime::from_unix_timestamp(iat).ok()),
        principal: text("email").or(text("sub")).map(str::to_owned),
    })
}

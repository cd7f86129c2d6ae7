//! Twilio: `X-Twilio-Signature` = base64 HMAC-SHA1 (auth token; HMAC-SHA256 with a SharedKey) over the full URL followed by
//! the form parameters sorted by name, each as `name` + `value`. JSON bodies are not in the
//! signature; instead the URL carries `bodySHA256`, the hex SHA-256 of the body.

use std::collections::BTreeMap;

use url::Url;

use crate::config::SchemeOptions;
use crate::crypto::{self, Mac};
use crate::error::Rejection;
use crate::request::InboundRequest;
use crate::schemes::Outcome;
use crate::secret::Secret;

pub(super) fn verify(
    options: &SchemeOptions,
    secrets: &[Secret],
    req: &InboundRequest<'_>,
) -> Result<Outcome, Rejection> {
    let value = req.require_header("x-twilio-signature")?;
    let mac = algorithm(req)?;
    let provided = crypto::decode_base64(value.trim())
        .filter(|sig| sig.len() == mac.len())
        .ok_or(Rejection::MalformedSignature("expected a base64 HMAC"))?;
    if secrets.is_empty() {
        return Err(Rejection::NoSecretConfigured);
    }
    let url = signed_url(options.public_url.as_ref(), req.url)?;

    let params = match req.query("bodySHA256") {
        Some(expected) => {
            // The body hash is what binds a JSON body; check it before the URL signature.
            if !crypto::ct_eq(
                expected.to_ascii_lowercase().as_bytes(),
                crypto::sha256_hex(req.body).as_bytes(),
            ) {
                return Err(Rejection::SignatureMismatch);
            }
            String::new()
        }
        None if req.content_type_is("application/x-www-form-urlencoded") => {
            sorted_params(req.form_params())
        }
        None if req.body.is_empty() => String::new(),
        // A body that is neither signed as form parameters nor bound by bodySHA256 could be
        // swapped freely: refuse it.
        None => {
            return Err(Rejection::MalformedBody(
                "a non-form body needs bodySHA256 in the URL",
            ));
        }
    };

    // Twilio may sign the URL with or without the default port; its libraries accept both.
    let variants = url_variants(&url);
    for (index, secret) in secrets.iter().enumerate() {
        for candidate in &variants {
            let expected = crypto::mac(
                mac,
                secret.bytes(),
                &[candidate.as_bytes(), params.as_bytes()],
            );
            if crypto::ct_eq(&provided, &expected) {
                return Ok(Outcome::secret(index));
            }
        }
    }
    Err(Rejection::SignatureMismatch)
}

/// HMAC-SHA1 with the auth token, unless `X-Twilio-Webhooks-Signature-Settings` names
/// `algorithm=HMAC_SHA256` (requests signed with a SharedKey secret).
fn algorithm(req: &InboundRequest<'_>) -> Result<Mac, Rejection> {
    let Some(settings) = req.headers.get("x-twilio-webhooks-signature-settings") else {
        return Ok(Mac::Sha1);
    };
    let settings = settings
        .to_str()
        .map_err(|_| Rejection::MalformedHeader("x-twilio-webhooks-signature-settings".into()))?;
    let named = settings.split(',').find_map(|part| {
        let (name, value) = part.split_once('=')?;
        (name.trim() == "algorithm" && !value.trim().is_empty()).then(|| value.trim())
    });
    match named.map(str::to_ascii_uppercase).as_deref() {
        None | Some("HMAC_SHA1") => Ok(Mac::Sha1),
        Some("HMAC_SHA256") => Ok(Mac::Sha256),
        Some(_) => Err(Rejection::UnsupportedSignatureVersion),
    }
}

/// The configured public URL (if any) with the request's query, else the request URL.
fn signed_url(public: Option<&Url>, request: &Url) -> Result<Url, Rejection> {
    let mut url = public.cloned().unwrap_or_else(|| request.clone());
    if public.is_some() && request.query().is_some() {
        url.set_query(request.query());
    }
    if url.cannot_be_a_base() || url.host_str().is_none() {
        return Err(Rejection::InvalidUrl("twilio needs an absolute public URL"));
    }
    Ok(url)
}

fn sorted_params(params: Vec<(String, String)>) -> String {
    // Same canonical form as Twilio's helpers: names sorted, each name's distinct values sorted.
    let mut grouped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in params {
        grouped.entry(name).or_default().push(value);
    }
    let mut out = String::new();
    for (name, mut values) in grouped {
        values.sort();
        values.dedup();
        for value in values {
            out.push_str(&name);
            out.push_str(&value);
        }
    }
    out
}

fn url_variants(url: &Url) -> Vec<String> {
    let as_given = url.as_str().to_owned();
    let mut variants = vec![as_given];
    // `Url` drops a default port when parsing, so add the explicit-port spelling by hand.
    if url.port().is_none()
        && let (Some(port), Some(host)) = (url.port_or_known_default(), url.host_str())
    {
        let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
        let user = match (url.username(), url.password()) {
            ("", None) => String::new(),
            (user, None) => format!("{user}@"),
            (user, Some(password)) => format!("{user}:{password}@"),
        };
        variants.push(format!(
            "{}://{user}{host}:{port}{}{query}",
            url.scheme(),
            url.path()
        ));
    }
    variants
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_sorted_and_concatenated() {
        let params = vec![
            ("To".to_owned(), "+1".to_owned()),
            ("Body".to_owned(), "b".to_owned()),
            ("Body".to_owned(), "a".to_owned()),
        ];
        assert_eq!(sorted_params(params), "BodyaBodybTo+1");
    }

    #[test]
    fn variants_include_explicit_port() {
        let url = Url::parse("https://example.com/sms?x=1").unwrap();
        assert_eq!(
            url_variants(&url),
            vec![
                "https://example.com/sms?x=1".to_owned(),
                "https://example.com:443/sms?x=1".to_owned()
            ]
        );
    }
}

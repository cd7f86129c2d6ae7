//! AWS Signature Version 4: a credential that is a signature over the request, not a value
//! copied onto it. The signing itself is the `aws-sigv4` crate's; this module decides what
//! it signs (the request exactly as it will be sent) and puts the result on the request.
//!
//! Each attempt is signed anew at its own time: a signature is only accepted for about five
//! minutes, and retries can wait longer than that.

use std::borrow::Cow;
use std::fmt;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use reqwest::Request;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

/// What SigV4 leaves unescaped in a query: RFC 3986's unreserved characters.
const QUERY_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Headers the signature (re)writes; a copy of the request never carries old ones.
const SIGNATURE_HEADERS: [&str; 4] = [
    "authorization",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

/// Headers left out of the signature besides those `aws-sigv4` leaves out (`Authorization`,
/// `User-Agent`, `Transfer-Encoding`, `X-Amzn-Trace-Id`): hop-by-hop headers a proxy may
/// change, and trace context, which tracing proxies rewrite. The same list as the AWS SDK for
/// Python's, so both sign the same headers.
const UNSIGNED_HEADERS: [&str; 11] = [
    "baggage",
    "connection",
    "expect",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "traceparent",
    "tracestate",
    "trailer",
    "upgrade",
];

/// Access keys of an AWS principal, and the service and region requests are signed for.
pub struct AwsSigV4 {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    /// A temporary credential's token (STS), signed into the request.
    pub session_token: Option<SecretString>,
    /// The region signed for (`eu-west-1`; `us-east-1` for global services such as IAM).
    pub region: String,
    /// The signing name (`iam`, `sts`, `s3`…), which is not always the endpoint's host prefix.
    pub service: String,
}

impl fmt::Debug for AwsSigV4 {
    /// The access key id is an identifier, not a secret (it appears in every signed request);
    /// the secret key and session token are never shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsSigV4")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .field("service", &self.service)
            .field("session_token", &self.session_token.is_some())
            .finish_non_exhaustive()
    }
}

/// Why a request could not be signed. Names what is wrong, never a value.
#[derive(Debug, thiserror::Error)]
pub enum SigV4Error {
    /// Only a body whose bytes are at hand can be hashed; an unsigned payload is not offered.
    #[error("the request body is a stream; SigV4 signs the hash of the whole body")]
    StreamingBody,
    #[error("header `{0}` is not text and cannot be signed")]
    HeaderNotText(HeaderName),
    #[error("the signing region or service is empty")]
    MissingScope,
    /// The signer refused the request (an unparsable URL, a bad header); its message holds
    /// no value.
    #[error("the request cannot be signed: {0}")]
    Signer(String),
}

impl AwsSigV4 {
    /// Signs `request` as of `at`: the query is first written in SigV4's encoding (so the
    /// bytes sent are the bytes signed), then `X-Amz-Date`, `Authorization` and, with a
    /// session token, `X-Amz-Security-Token` are set (and `X-Amz-Content-Sha256` for S3).
    /// Every other header present is signed, except those proxies may change
    /// ([`UNSIGNED_HEADERS`]).
    pub fn sign(&self, request: &mut Request, at: SystemTime) -> Result<(), SigV4Error> {
        if self.region.is_empty() || self.service.is_empty() {
            return Err(SigV4Error::MissingScope);
        }
        canonicalize_query(request.url_mut());
        for name in SIGNATURE_HEADERS {
            request.headers_mut().remove(name);
        }
        let body = match request.body() {
            None => &[][..],
            Some(body) => body.as_bytes().ok_or(SigV4Error::StreamingBody)?,
        };
        let mut headers = Vec::with_capacity(request.headers().len());
        for (name, value) in request.headers() {
            let value = value
                .to_str()
                .map_err(|_| SigV4Error::HeaderNotText(name.clone()))?;
            headers.push((name.as_str(), value));
        }
        let signable = SignableRequest::new(
            request.method().as_str(),
            request.url().as_str(),
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| SigV4Error::Signer(e.to_string()))?;
        let identity: Identity = Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.expose_secret(),
            self.session_token
                .as_ref()
                .map(|token| token.expose_secret().to_owned()),
            None,
            "switchyard",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.service)
            .time(at)
            .settings(self.settings())
            .build()
            .map_err(|e| SigV4Error::Signer(e.to_string()))?
            .into();
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| SigV4Error::Signer(e.to_string()))?
            .into_parts();
        let (signed_headers, _query) = instructions.into_parts();
        for header in signed_headers {
            let unplaceable = || SigV4Error::Signer(format!("`{}` is not a header", header.name()));
            let name =
                HeaderName::from_bytes(header.name().as_bytes()).map_err(|_| unplaceable())?;
            let mut value = HeaderValue::from_str(header.value()).map_err(|_| unplaceable())?;
            value.set_sensitive(header.sensitive() || name == AUTHORIZATION);
            request.headers_mut().insert(name, value);
        }
        Ok(())
    }

    /// S3 signs its path as sent and the body's hash in `X-Amz-Content-Sha256`; every other
    /// service signs a normalized, doubly encoded path (as the AWS SDKs do).
    fn settings(&self) -> SigningSettings {
        let mut settings = SigningSettings::default();
        let excluded = settings.excluded_headers.get_or_insert_with(Vec::new);
        excluded.extend(UNSIGNED_HEADERS.iter().map(|name| Cow::Borrowed(*name)));
        if matches!(
            self.service.as_str(),
            "s3" | "s3-object-lambda" | "s3express"
        ) {
            settings.percent_encoding_mode = PercentEncodingMode::Single;
            settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        settings
    }
}

/// Rewrites the query in RFC 3986 encoding, order kept. reqwest writes a space as `+`, which
/// SigV4 signs as `%20`; a server reading the `+` literally would reject the signature.
fn canonicalize_query(url: &mut url::Url) {
    let Some(query) = url.query().filter(|q| !q.is_empty()) else {
        return;
    };
    let encode = |part: &str| {
        let spaced = part.replace('+', " ");
        let decoded = percent_decode_str(&spaced).decode_utf8_lossy();
        utf8_percent_encode(&decoded, QUERY_COMPONENT).to_string()
    };
    let rewritten: Vec<String> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) => format!("{}={}", encode(name), encode(value)),
            None => encode(pair),
        })
        .collect();
    let rewritten = rewritten.join("&");
    if rewritten != query {
        url.set_query(Some(&rewritten));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> url::Url {
        let mut url = url::Url::parse(text).unwrap();
        canonicalize_query(&mut url);
        url
    }

    #[test]
    fn queries_are_sent_as_they_are_signed() {
        assert_eq!(
            url("https://iam.amazonaws.com/?Action=ListUsers&PathPrefix=/a+b/%7Ec*").as_str(),
            "https://iam.amazonaws.com/?Action=ListUsers&PathPrefix=%2Fa%20b%2F~c%2A"
        );
        // A flag without a value stays one (S3's `?versioning`).
        assert_eq!(
            url("https://b.s3.amazonaws.com/?versioning").query(),
            Some("versioning")
        );
        assert_eq!(url("https://x.amazonaws.com/").query(), None);
    }

    #[test]
    fn debug_never_shows_the_secret_key_or_token() {
        let credential = AwsSigV4 {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: SecretString::from("wJalrXUtnFEMI"),
            session_token: Some(SecretString::from("session-token-value")),
            region: "us-east-1".into(),
            service: "iam".into(),
        };
        let shown = format!("{credential:?}");
        assert!(shown.contains("AKIDEXAMPLE"), "{shown}");
        assert!(!shown.contains("wJalrXUtnFEMI") && !shown.contains("session-token-value"));
    }
}

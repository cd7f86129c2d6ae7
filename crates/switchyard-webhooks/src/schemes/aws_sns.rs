//! Amazon SNS HTTP(S) subscriptions: an RSA signature (SHA1 for `SignatureVersion` 1, SHA256
//! for 2) over a canonical string of the message's fields, made with the key of a certificate
//! whose URL is in the message. The URL must be https on an allowed host, or anyone could
//! sign with their own certificate.

use ring::signature::{
    RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey,
};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;
use x509_cert::Certificate;
use x509_cert::der::DecodePem as _;
use x509_cert::spki::ObjectIdentifier;

use crate::config::{DEFAULT_SNS_CERT_HOST, SchemeOptions};
use crate::crypto;
use crate::error::Rejection;
use crate::keys::KeyCache;
use crate::request::InboundRequest;
use crate::schemes::Outcome;

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// The public key and validity of a signing certificate, parsed once and cached.
#[derive(Debug)]
pub(crate) struct SnsCertificate {
    rsa_public_key: Vec<u8>,
    not_before: i64,
    not_after: i64,
}

impl SnsCertificate {
    pub(crate) fn parse(pem: &[u8]) -> Result<Self, Rejection> {
        let cert = Certificate::from_pem(pem)
            .map_err(|_| Rejection::InvalidCertificate("not a PEM X.509 certificate"))?;
        let tbs = &cert.tbs_certificate;
        let spki = &tbs.subject_public_key_info;
        if spki.algorithm.oid != RSA_ENCRYPTION {
            return Err(Rejection::InvalidCertificate("not an RSA key"));
        }
        let unix = |time: x509_cert::time::Time| {
            i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
        };
        Ok(Self {
            // The BIT STRING of an RSA SubjectPublicKeyInfo is the PKCS#1 RSAPublicKey ring wants.
            rsa_public_key: spki.subject_public_key.raw_bytes().to_vec(),
            not_before: unix(tbs.validity.not_before),
            not_after: unix(tbs.validity.not_after),
        })
    }
}

/// The message, if the body is an SNS JSON message.
pub(crate) fn sns_message(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice(body).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// https, default port, no credentials, host matching one of the patterns, a `.pem` path.
fn cert_host_allowed(url: &Url, options: &SchemeOptions, pem: bool) -> bool {
    let defaults = [DEFAULT_SNS_CERT_HOST.to_owned()];
    let patterns: &[String] = if options.cert_hosts.is_empty() {
        &defaults
    } else {
        &options.cert_hosts
    };
    let Some(url::Host::Domain(host)) = url.host() else {
        return false;
    };
    url.scheme() == "https"
        && url.port().is_none()
        && url.username().is_empty()
        && url.password().is_none()
        && (!pem || url.path().ends_with(".pem"))
        && patterns.iter().any(|pattern| host_matches(pattern, host))
}

fn host_matches(pattern: &str, host: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('.').collect();
    let host: Vec<&str> = host.split('.').collect();
    pattern.len() == host.len()
        && pattern
            .iter()
            .zip(&host)
            .all(|(p, h)| !h.is_empty() && (*p == "*" || p.eq_ignore_ascii_case(h)))
}

fn field<'m>(message: &'m Map<String, Value>, key: &'static str) -> Result<&'m str, Rejection> {
    message
        .get(key)
        .and_then(Value::as_str)
        .ok_or(Rejection::MalformedBody("an SNS field is missing"))
}

/// The string SNS signs: selected fields, in this order, as `Name\nvalue\n`.
fn canonical(message: &Map<String, Value>, kind: &str) -> Result<String, Rejection> {
    let keys: &[&'static str] = match kind {
        "Notification" => &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ],
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ],
        _ => return Err(Rejection::MalformedBody("unknown SNS message Type")),
    };
    let mut out = String::new();
    for key in keys {
        // Subject is optional on notifications and then left out entirely.
        if *key == "Subject" && !message.contains_key("Subject") {
            continue;
        }
        out.push_str(key);
        out.push('\n');
        out.push_str(field(message, key)?);
        out.push('\n');
    }
    Ok(out)
}

pub(super) async fn verify(
    options: &SchemeOptions,
    req: &InboundRequest<'_>,
    keys: &KeyCache,
) -> Result<Outcome, Rejection> {
    let message =
        sns_message(req.body).ok_or(Rejection::MalformedBody("expected an SNS message"))?;
    let kind = field(&message, "Type")?;
    if let Some(header) = req.header("x-amz-sns-message-type")
        && header != kind
    {
        return Err(Rejection::MalformedBody(
            "message type header and body disagree",
        ));
    }
    let topic = field(&message, "TopicArn")?;
    if !options.topic_arns.is_empty() && !options.topic_arns.iter().any(|t| t == topic) {
        return Err(Rejection::TopicNotAllowed);
    }
    let algorithm = match field(&message, "SignatureVersion")? {
        "1" => &RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        "2" => &RSA_PKCS1_2048_8192_SHA256,
        _ => return Err(Rejection::UnsupportedSignatureVersion),
    };
    let cert_url = Url::parse(field(&message, "SigningCertURL")?)
        .map_err(|_| Rejection::CertificateHostNotAllowed)?;
    if !cert_host_allowed(&cert_url, options, true) {
        return Err(Rejection::CertificateHostNotAllowed);
    }
    if kind == "SubscriptionConfirmation" {
        // The caller will GET this URL: it must be SNS's, not an address of the sender's choice.
        let subscribe = Url::parse(field(&message, "SubscribeURL")?)
            .map_err(|_| Rejection::InvalidUrl("SubscribeURL"))?;
        if !cert_host_allowed(&subscribe, options, false) {
            return Err(Rejection::InvalidUrl("SubscribeURL host is not allowed"));
        }
    }
    let content = canonical(&message, kind)?;
    let signature = crypto::decode_base64(field(&message, "Signature")?)
        .filter(|sig| !sig.is_empty())
        .ok_or(Rejection::MalformedSignature("not base64"))?;

    let cert = keys.certificate(&cert_url).await?;
    let now = req.received_at.unix_timestamp();
    if now < cert.not_before || now > cert.not_after {
        return Err(Rejection::InvalidCertificate("outside its validity period"));
    }
    UnparsedPublicKey::new(algorithm, &cert.rsa_public_key)
        .verify(content.as_bytes(), &signature)
        .map_err(|_| Rejection::SignatureMismatch)?;

    Ok(Outcome {
        secret_index: None,
        signed_at: field(&message, "Timestamp")
            .ok()
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok()),
        principal: Some(topic.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(url: &str) -> bool {
        cert_host_allowed(&Url::parse(url).unwrap(), &SchemeOptions::default(), true)
    }

    #[test]
    fn certificate_hosts_are_restricted() {
        assert!(allowed(
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem"
        ));
        assert!(!allowed("http://sns.us-east-1.amazonaws.com/a.pem"));
        assert!(!allowed("https://sns.us-east-1.amazonaws.com:8443/a.pem"));
        assert!(!allowed(
            "https://sns.evil.com.amazonaws.com.evil.org/a.pem"
        ));
        assert!(!allowed("https://sns.a.b.amazonaws.com/a.pem"));
        assert!(!allowed("https://user@sns.us-east-1.amazonaws.com/a.pem"));
        assert!(!allowed("https://sns.us-east-1.amazonaws.com/a.txt"));
        assert!(!allowed("https://127.0.0.1/a.pem"));
        assert!(!allowed("https://s3.amazonaws.com/a.pem"));
    }
}

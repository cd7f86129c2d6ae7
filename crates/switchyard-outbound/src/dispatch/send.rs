//! One HTTP attempt: the signed request, and what came back, classified.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use switchyard_http::GuardedClient;
use switchyard_webhooks::standard_webhooks::{ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// The User-Agent of every delivery.
pub const USER_AGENT: &str = concat!("Switchyard-Webhooks/", env!("CARGO_PKG_VERSION"));

/// What an attempt produced.
#[derive(Debug)]
pub(crate) struct SendResult {
    pub status: Option<u16>,
    pub headers: HeaderMap,
    /// The first `max_body` bytes of the response body.
    pub body: Bytes,
    /// `None` on success; see [`error_class`].
    pub error_class: Option<&'static str>,
    pub error: Option<String>,
    pub duration: Duration,
}

impl SendResult {
    /// Any 2xx. Redirects are not followed and count as failures.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// Whether the circuit breaker should count this against the endpoint: it did not answer,
    /// or answered that it is unwell or overloaded. Other 4xx are about the request.
    pub fn unhealthy(&self) -> bool {
        match self.status {
            None => true,
            Some(status) => status >= 500 || status == 429,
        }
    }

    pub fn headers_map(&self) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        for (name, value) in &self.headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            map.entry(name.as_str().to_owned())
                .and_modify(|existing: &mut String| {
                    existing.push_str(", ");
                    existing.push_str(&value);
                })
                .or_insert(value);
        }
        map
    }
}

/// The class of a non-2xx status.
fn status_class(status: u16) -> &'static str {
    match status {
        300..=399 => "redirect",
        410 => "gone",
        429 => "throttled",
        500..=599 => "server_error",
        _ => "http_status",
    }
}

fn error_class(error: &switchyard_http::OutboundError) -> &'static str {
    match error.code() {
        "upstream_timeout" => "timeout",
        "upstream_connect_failed" => "connect",
        "ssrf_denied" => "ssrf_denied",
        "scheme_not_allowed" => "scheme_not_allowed",
        "invalid_url" => "invalid_url",
        _ => "request",
    }
}

/// The error and its causes on one line. The client strips URLs from its errors.
fn describe(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub(crate) struct Request<'a> {
    pub url: &'a str,
    pub webhook_id: &'a str,
    pub timestamp: i64,
    pub signature: String,
    /// The endpoint's own headers, resolved from the vault.
    pub custom_headers: &'a HeaderMap,
    pub body: Bytes,
    pub max_body: usize,
}

fn failed(class: &'static str, error: String, started: Instant) -> SendResult {
    SendResult {
        status: None,
        headers: HeaderMap::new(),
        body: Bytes::new(),
        error_class: Some(class),
        error: Some(error),
        duration: started.elapsed(),
    }
}

pub(crate) async fn send(client: &GuardedClient, request: Request<'_>) -> SendResult {
    let started = Instant::now();
    let url = match url::Url::parse(request.url) {
        Ok(url) => url,
        Err(e) => return failed("invalid_url", e.to_string(), started),
    };
    let builder = match client.post(url) {
        Ok(builder) => builder,
        Err(denied) => {
            let class = match denied.code() {
                "ssrf_denied" => "ssrf_denied",
                "scheme_not_allowed" => "scheme_not_allowed",
                _ => "invalid_url",
            };
            return failed(class, denied.to_string(), started);
        }
    };
    // Custom headers first: the fixed ones below overwrite any clash (validated at save time
    // anyway).
    let mut headers = request.custom_headers.clone();
    let fixed = [
        (ID_HEADER, request.webhook_id.to_owned()),
        (TIMESTAMP_HEADER, request.timestamp.to_string()),
        (SIGNATURE_HEADER, request.signature),
    ];
    for (name, value) in fixed {
        match HeaderValue::from_str(&value) {
            Ok(value) => {
                headers.insert(name, value);
            }
            Err(_) => return failed("request", format!("invalid `{name}` value"), started),
        }
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let response = client
        .send(builder.headers(headers).body(request.body))
        .await;
    let mut response = match response {
        Ok(response) => response,
        Err(error) => {
            let class = error_class(&error);
            return failed(class, describe(&error), started);
        }
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = BytesMut::new();
    let mut body_error = None;
    while body.len() < request.max_body {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = request.max_body - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) => break,
            Err(error) => {
                body_error = Some(describe(&switchyard_http::OutboundError::from(error)));
                break;
            }
        }
    }
    let duration = started.elapsed();
    let class = (!(200..300).contains(&status)).then(|| status_class(status));
    SendResult {
        status: Some(status),
        headers,
        body: body.freeze(),
        error_class: class,
        // A 2xx whose body broke off is still an acceptance; keep the note.
        error: class.map(|c| format!("{c}: HTTP {status}")).or(body_error),
        duration,
    }
}

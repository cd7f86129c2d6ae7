//! Provider handshakes that must be answered synchronously, decided from the raw request.

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde_json::{Value, json};
use url::Url;

use crate::config::{Scheme, SourceConfig};
use crate::request::{InboundRequest, json_str};
use crate::schemes::sns_message;

/// Which handshake this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeKind {
    /// Slack Events API `url_verification` (signed: verify first).
    SlackUrlVerification,
    /// Okta event hook one-time verification GET (carries the auth header: verify first).
    OktaVerification,
    /// Microsoft Graph `?validationToken=` (unsigned, echo as text/plain within 10 s).
    GraphValidation,
    /// Azure Event Grid `SubscriptionValidationEvent`.
    EventGridValidation,
    /// CloudEvents webhook abuse-protection `OPTIONS` request.
    CloudEventsValidation,
    /// Amazon SNS `SubscriptionConfirmation` (signed: verify first, then GET `SubscribeURL`).
    SnsSubscriptionConfirmation,
}

/// What the caller does to complete the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeAction {
    /// Send this response as it is.
    Reply(HandshakeReply),
    /// GET this URL through the guarded client (this crate never fetches it), then answer the
    /// request with 200 and an empty body. The URL is on an allowed SNS host.
    ConfirmSubscription { subscribe_url: Url },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeReply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    pub kind: HandshakeKind,
    /// The provider authenticates this request: answer only after `verify` succeeded.
    /// [`crate::process`] does this for you.
    pub verify_first: bool,
    pub action: HandshakeAction,
}

/// Longest value echoed back; real tokens and challenges are far shorter.
const MAX_ECHO: usize = 4096;

fn json_reply(value: &Value) -> HandshakeAction {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    HandshakeAction::Reply(HandshakeReply {
        status: StatusCode::OK,
        headers,
        body: Bytes::from(value.to_string()),
    })
}

fn echo(value: &str) -> Option<&str> {
    (!value.is_empty() && value.len() <= MAX_ECHO).then_some(value)
}

/// The handshake this request is, if any. `None` means an ordinary delivery.
pub fn handshake(config: &SourceConfig, req: &InboundRequest<'_>) -> Option<Handshake> {
    let scheme = config.scheme();
    match scheme {
        Scheme::Slack => {
            let body = req.json()?;
            if json_str(&body, "/type")? != "url_verification" {
                return None;
            }
            let challenge = echo(json_str(&body, "/challenge")?)?;
            Some(Handshake {
                kind: HandshakeKind::SlackUrlVerification,
                verify_first: true,
                action: json_reply(&json!({ "challenge": challenge })),
            })
        }
        Scheme::Okta => {
            if req.method != Method::GET {
                return None;
            }
            let challenge = echo(req.header("x-okta-verification-challenge")?)?;
            Some(Handshake {
                kind: HandshakeKind::OktaVerification,
                verify_first: true,
                action: json_reply(&json!({ "verification": challenge })),
            })
        }
        Scheme::MicrosoftGraph => {
            let token = req.query("validationToken")?;
            let token = echo(&token)?;
            let mut headers = HeaderMap::new();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            // The token is sender-chosen text: never let a browser sniff it as HTML.
            headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            Some(Handshake {
                kind: HandshakeKind::GraphValidation,
                verify_first: false,
                action: HandshakeAction::Reply(HandshakeReply {
                    status: StatusCode::OK,
                    headers,
                    body: Bytes::from(token.to_owned()),
                }),
            })
        }
        Scheme::AwsSns => {
            let message = sns_message(req.body)?;
            if message.get("Type")?.as_str()? != "SubscriptionConfirmation" {
                return None;
            }
            let subscribe_url = Url::parse(message.get("SubscribeURL")?.as_str()?).ok()?;
            Some(Handshake {
                kind: HandshakeKind::SnsSubscriptionConfirmation,
                verify_first: true,
                action: HandshakeAction::ConfirmSubscription { subscribe_url },
            })
        }
        _ if scheme.is_generic() => event_grid(req, scheme).or_else(|| cloudevents(config, req)),
        _ => None,
    }
}

fn event_grid(req: &InboundRequest<'_>, scheme: Scheme) -> Option<Handshake> {
    if !req
        .header("aeg-event-type")
        .is_some_and(|v| v.eq_ignore_ascii_case("SubscriptionValidation"))
    {
        return None;
    }
    let body = req.json()?;
    let event = body.as_array()?.first()?;
    if json_str(event, "/eventType")? != "Microsoft.EventGrid.SubscriptionValidationEvent" {
        return None;
    }
    let code = echo(json_str(event, "/data/validationCode")?)?;
    Some(Handshake {
        kind: HandshakeKind::EventGridValidation,
        // Event Grid sends its delivery headers (e.g. an API key) with the validation event too.
        verify_first: scheme != Scheme::None,
        action: json_reply(&json!({ "validationResponse": code })),
    })
}

fn cloudevents(config: &SourceConfig, req: &InboundRequest<'_>) -> Option<Handshake> {
    if req.method != Method::OPTIONS {
        return None;
    }
    let origin = req.headers.get("webhook-request-origin")?;
    let origin_text = origin.to_str().ok()?;
    let allowed = &config.options().allowed_origins;
    if !allowed.is_empty() && !allowed.iter().any(|a| a.eq_ignore_ascii_case(origin_text)) {
        return None;
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("webhook-allowed-origin"),
        origin.clone(),
    );
    if req.headers.contains_key("webhook-request-rate") {
        headers.insert(
            HeaderName::from_static("webhook-allowed-rate"),
            HeaderValue::from_static("*"),
        );
    }
    headers.insert(ALLOW, HeaderValue::from_static("POST, OPTIONS"));
    Some(Handshake {
        kind: HandshakeKind::CloudEventsValidation,
        verify_first: false,
        action: HandshakeAction::Reply(HandshakeReply {
            status: StatusCode::OK,
            headers,
            body: Bytes::new(),
        }),
    })
}

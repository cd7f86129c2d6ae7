//! Delivery ids (the dedup key), event types and the canonical CloudEvents 1.0 form.

use base64::Engine as _;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::{GitlabMode, Scheme, SourceConfig};
use crate::crypto;
use crate::request::{InboundRequest, json_str};
use crate::schemes::sns_message;
use crate::standard_webhooks;

/// Ids longer than this are replaced by their SHA-256 so the dedup column stays bounded.
const MAX_ID_LEN: usize = 200;
const MAX_TYPE_PART: usize = 128;

fn usable(value: &str) -> Option<&str> {
    let value = value.trim();
    (!value.is_empty() && !value.chars().any(char::is_control)).then_some(value)
}

fn bounded_id(value: &str) -> String {
    if value.len() <= MAX_ID_LEN {
        value.to_owned()
    } else {
        format!("sha256:{}", crypto::sha256_hex(value.as_bytes()))
    }
}

fn type_part(value: &str) -> Option<&str> {
    usable(value).filter(|v| v.len() <= MAX_TYPE_PART)
}

/// The provider's delivery id for deduplication; else the SHA-256 hex of the body.
pub fn delivery_id(config: &SourceConfig, req: &InboundRequest<'_>) -> String {
    provider_id(config, req)
        .as_deref()
        .and_then(usable)
        .map(bounded_id)
        .unwrap_or_else(|| crypto::sha256_hex(req.body))
}

fn header_id(req: &InboundRequest<'_>, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|name| req.header(name))
        .map(str::to_owned)
}

fn body_id(req: &InboundRequest<'_>, pointer: &str) -> Option<String> {
    let body = req.json()?;
    json_str(&body, pointer).map(str::to_owned)
}

fn provider_id(config: &SourceConfig, req: &InboundRequest<'_>) -> Option<String> {
    match config.scheme() {
        Scheme::StandardWebhooks => header_id(req, &[standard_webhooks::ID_HEADER]),
        Scheme::Svix => header_id(req, &["svix-id", standard_webhooks::ID_HEADER]),
        Scheme::Github => header_id(req, &["x-github-delivery"]),
        Scheme::Stripe => body_id(req, "/id"),
        Scheme::Slack => body_id(req, "/event_id"),
        Scheme::Shopify => header_id(req, &["x-shopify-webhook-id", "x-shopify-event-id"]),
        Scheme::Linear => header_id(req, &["linear-delivery"]),
        Scheme::Jira => header_id(req, &["x-atlassian-webhook-identifier"]),
        Scheme::Gitlab => match config.gitlab_mode() {
            GitlabMode::StandardWebhooks => header_id(req, &[standard_webhooks::ID_HEADER]),
            GitlabMode::Token => header_id(req, &["idempotency-key", "x-gitlab-event-uuid"]),
        },
        Scheme::Twilio => header_id(req, &["i-twilio-idempotency-token"]),
        Scheme::Okta => body_id(req, "/eventId"),
        Scheme::MicrosoftGraph => None,
        Scheme::AwsSns => sns_message(req.body)?
            .get("MessageId")?
            .as_str()
            .map(str::to_owned),
        Scheme::GooglePubsub => {
            body_id(req, "/message/messageId").or_else(|| body_id(req, "/message/message_id"))
        }
        Scheme::GenericHmac | Scheme::ApiKeyHeader | Scheme::BasicAuth | Scheme::None => config
            .options()
            .id_header
            .as_deref()
            .and_then(|name| req.header(name))
            .map(str::to_owned)
            .or_else(|| cloudevent_field(req, "id")),
    }
}

/// A CloudEvents (binary `ce-*` headers or structured JSON) or single-event Event Grid field.
fn cloudevent_field(req: &InboundRequest<'_>, field: &str) -> Option<String> {
    if let Some(value) = req.header(&format!("ce-{field}")) {
        return Some(value.to_owned());
    }
    let body = req.json()?;
    let event = match &body {
        Value::Object(map) if map.contains_key("specversion") => &body,
        // Event Grid posts an array; only a batch of one has a single id.
        Value::Array(events) if events.len() == 1 => &events[0],
        _ => return None,
    };
    let grid_field = match field {
        "type" => "eventType",
        "time" => "eventTime",
        other => other,
    };
    event
        .get(field)
        .or_else(|| event.get(grid_field))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn prefixed(prefix: &str, parts: &[Option<&str>]) -> Option<String> {
    let mut out = prefix.to_owned();
    let mut any = false;
    for part in parts.iter().flatten() {
        out.push('.');
        out.push_str(part);
        any = true;
    }
    any.then_some(out)
}

/// The event type, namespaced by provider (`github.push.opened`, `stripe.invoice.paid`).
pub fn event_type(config: &SourceConfig, req: &InboundRequest<'_>) -> Option<String> {
    let body = req.json();
    let field = |pointer: &str| {
        body.as_ref()
            .and_then(|b| json_str(b, pointer))
            .and_then(type_part)
    };
    let header = |name: &str| req.header(name).and_then(type_part);
    match config.scheme() {
        // The payload convention of Standard Webhooks: `{"type": …, "timestamp": …, "data": …}`.
        Scheme::StandardWebhooks | Scheme::Svix => field("/type").map(str::to_owned),
        Scheme::Github => {
            let event = header("x-github-event")?;
            prefixed("github", &[Some(event), field("/action")])
        }
        Scheme::Stripe => prefixed("stripe", &[field("/type")]),
        Scheme::Slack => slack_type(req, body.as_ref()),
        Scheme::Shopify => {
            let topic = header("x-shopify-topic")?.replace('/', ".");
            prefixed("shopify", &[Some(&topic)])
        }
        Scheme::Linear => {
            let kind = field("/type")
                .or_else(|| header("linear-event"))?
                .to_ascii_lowercase();
            prefixed("linear", &[Some(&kind), field("/action")])
        }
        Scheme::Jira => {
            let event = field("/webhookEvent")?;
            prefixed(
                "jira",
                &[Some(event.strip_prefix("jira:").unwrap_or(event))],
            )
        }
        Scheme::Gitlab => match config.gitlab_mode() {
            GitlabMode::Token | GitlabMode::StandardWebhooks => prefixed(
                "gitlab",
                &[field("/object_kind"), field("/object_attributes/action")],
            ),
        },
        Scheme::Twilio => twilio_type(req),
        Scheme::Okta => prefixed("okta", &[field("/data/events/0/eventType")]),
        Scheme::MicrosoftGraph => prefixed("microsoft_graph", &[field("/value/0/changeType")]),
        Scheme::AwsSns => {
            let kind = match field("/Type")? {
                "Notification" => "notification",
                "SubscriptionConfirmation" => "subscription_confirmation",
                "UnsubscribeConfirmation" => "unsubscribe_confirmation",
                _ => return None,
            };
            prefixed("aws_sns", &[Some(kind)])
        }
        Scheme::GooglePubsub => {
            body.as_ref()?.get("message")?;
            prefixed(
                "google_pubsub",
                &[field("/message/attributes/eventType").or(Some("message"))],
            )
        }
        Scheme::GenericHmac | Scheme::ApiKeyHeader | Scheme::BasicAuth | Scheme::None => config
            .options()
            .event_type_header
            .as_deref()
            .and_then(header)
            .map(str::to_owned)
            .or_else(|| {
                cloudevent_field(req, "type")
                    .as_deref()
                    .and_then(type_part)
                    .map(str::to_owned)
            }),
    }
}

fn slack_type(req: &InboundRequest<'_>, body: Option<&Value>) -> Option<String> {
    if let Some(body) = body {
        let kind = json_str(body, "/event/type")
            .or_else(|| json_str(body, "/type"))
            .and_then(type_part)?;
        return prefixed("slack", &[Some(kind)]);
    }
    // Interactivity posts `payload={json}`; slash commands post `command=/name`.
    let params = req.form_params();
    if let Some((_, payload)) = params.iter().find(|(k, _)| k == "payload") {
        let payload: Value = serde_json::from_str(payload).ok()?;
        return prefixed("slack", &[json_str(&payload, "/type").and_then(type_part)]);
    }
    params
        .iter()
        .any(|(k, _)| k == "command")
        .then(|| "slack.command".to_owned())
}

fn twilio_type(req: &InboundRequest<'_>) -> Option<String> {
    let params = req.form_params();
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| type_part(v))
            .map(str::to_ascii_lowercase)
    };
    if params.iter().any(|(k, _)| k == "MessageSid") {
        let status = get("MessageStatus").or_else(|| get("SmsStatus"));
        return prefixed("twilio.message", &[status.as_deref()]).or(Some("twilio.message".into()));
    }
    if params.iter().any(|(k, _)| k == "CallSid") {
        return prefixed("twilio.call", &[get("CallStatus").as_deref()])
            .or(Some("twilio.call".into()));
    }
    None
}

fn unix_time(value: Option<&Value>, millis: bool) -> Option<OffsetDateTime> {
    let number = match value? {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    let nanos = i128::from(number) * if millis { 1_000_000 } else { 1_000_000_000 };
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

fn rfc3339(value: Option<&str>) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(value?, &Rfc3339).ok()
}

/// When the provider says the event happened (or was sent), if it says so.
fn provider_time(
    config: &SourceConfig,
    req: &InboundRequest<'_>,
    body: Option<&Value>,
) -> Option<OffsetDateTime> {
    let at = |pointer: &str| body.and_then(|b| b.pointer(pointer));
    let header_secs = |name: &str| {
        req.header(name)
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|v| OffsetDateTime::from_unix_timestamp(v).ok())
    };
    match config.scheme() {
        Scheme::StandardWebhooks => header_secs(standard_webhooks::TIMESTAMP_HEADER),
        Scheme::Svix => header_secs("svix-timestamp").or_else(|| header_secs("webhook-timestamp")),
        Scheme::Stripe => unix_time(at("/created"), false),
        Scheme::Slack => unix_time(at("/event_time"), false),
        Scheme::Linear => unix_time(at("/webhookTimestamp"), true),
        Scheme::Okta => rfc3339(at("/eventTime").and_then(Value::as_str)),
        Scheme::AwsSns => rfc3339(at("/Timestamp").and_then(Value::as_str)),
        Scheme::GooglePubsub => rfc3339(at("/message/publishTime").and_then(Value::as_str)),
        s if s.is_generic() => rfc3339(cloudevent_field(req, "time").as_deref()),
        _ => None,
    }
}

fn subject(
    config: &SourceConfig,
    req: &InboundRequest<'_>,
    body: Option<&Value>,
) -> Option<String> {
    let field = |pointer: &str| body.and_then(|b| json_str(b, pointer)).map(str::to_owned);
    match config.scheme() {
        Scheme::Github => field("/repository/full_name"),
        Scheme::Stripe => field("/data/object/id"),
        Scheme::Shopify => req.header("x-shopify-shop-domain").map(str::to_owned),
        Scheme::Linear => field("/data/id"),
        Scheme::Jira => field("/issue/key"),
        Scheme::Gitlab => field("/project/path_with_namespace"),
        Scheme::Slack => field("/team_id"),
        Scheme::MicrosoftGraph => field("/value/0/resource"),
        Scheme::AwsSns => field("/TopicArn"),
        Scheme::GooglePubsub => field("/subscription"),
        s if s.is_generic() => cloudevent_field(req, "subject"),
        _ => None,
    }
}

/// The delivery as a CloudEvents 1.0 JSON event. `source` is the CloudEvents source URI the
/// caller assigns (e.g. `/sources/src_…`). `data` is the parsed JSON body; any other body is
/// kept exactly as `data_base64`.
pub fn canonical_event(config: &SourceConfig, req: &InboundRequest<'_>, source: &str) -> Value {
    let body = req.json();
    let time = provider_time(config, req, body.as_ref()).unwrap_or(req.received_at);
    let mut event = Map::new();
    event.insert("specversion".into(), json!("1.0"));
    event.insert("id".into(), json!(delivery_id(config, req)));
    event.insert("source".into(), json!(source));
    event.insert(
        "type".into(),
        json!(event_type(config, req).unwrap_or_else(|| format!("{}.unknown", config.scheme()))),
    );
    if let Ok(time) = time.format(&Rfc3339) {
        event.insert("time".into(), json!(time));
    }
    if let Some(subject) = subject(config, req, body.as_ref()) {
        event.insert("subject".into(), json!(subject));
    }
    match body {
        Some(data) => {
            event.insert("datacontenttype".into(), json!("application/json"));
            event.insert("data".into(), data);
        }
        None => {
            let content_type = req
                .header("content-type")
                .filter(|v| !v.is_empty())
                .unwrap_or("application/octet-stream");
            event.insert("datacontenttype".into(), json!(content_type));
            event.insert(
                "data_base64".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(req.body)),
            );
        }
    }
    Value::Object(event)
}

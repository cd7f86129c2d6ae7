//! Event hook deliveries as Okta POSTs them: one JSON envelope per delivery, the System Log
//! events in `data.events`, the admin-configured authentication header carrying the secret
//! (Okta signs nothing).

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::data::{LogEvent, Render, okta_time};

/// One delivery: POST `body` with `Content-Type: application/json` and the hook's
/// authentication header (`Authorization: {secret}` by default).
#[derive(Debug, Clone)]
pub struct EventHookDelivery {
    pub body: Value,
}

impl EventHookDelivery {
    /// The envelope's `eventId`, Okta's delivery id.
    pub fn event_id(&self) -> &str {
        self.body["eventId"].as_str().unwrap_or_default()
    }

    /// The body as sent.
    pub fn bytes(&self) -> Vec<u8> {
        self.body.to_string().into_bytes()
    }
}

pub(crate) fn delivery(
    render: &Render<'_>,
    base: &str,
    events: &[LogEvent],
    now: OffsetDateTime,
) -> EventHookDelivery {
    let events: Vec<Value> = events.iter().map(|e| render.log_event(e)).collect();
    EventHookDelivery {
        body: json!({
            "eventType": "com.okta.event_hook",
            "eventTypeVersion": "1.0",
            "cloudEventsVersion": "0.1",
            "source": format!("{base}/api/v1/eventHooks/whoql0HfiLGPWc8Jx0g3"),
            "eventId": uuid::Uuid::new_v4().to_string(),
            "data": {"events": events},
            "eventTime": okta_time(now),
            "contentType": "application/json",
        }),
    }
}

//! Delivery ids, event types and the canonical CloudEvents form.

use serde_json::json;
use switchyard_webhooks::{Scheme, canonical_event, delivery_id, event_type};

use crate::support::*;

#[test]
fn canonical_event_for_json_and_binary_bodies() {
    let cfg = config(Scheme::Github, json!({}));
    let req = Req::post(r#"{"action":"opened","repository":{"full_name":"octo/hello"}}"#)
        .header("x-github-event", "issues")
        .header("x-github-delivery", "d-1");
    let event = canonical_event(&cfg, &req.inbound(), "/sources/src_1");
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["id"], "d-1");
    assert_eq!(event["source"], "/sources/src_1");
    assert_eq!(event["type"], "github.issues.opened");
    assert_eq!(event["subject"], "octo/hello");
    assert_eq!(event["datacontenttype"], "application/json");
    assert_eq!(event["data"]["action"], "opened");
    assert!(event["time"].as_str().unwrap().ends_with('Z'));

    let binary = Req::post(vec![0xff, 0x00]).header("content-type", "application/octet-stream");
    let event = canonical_event(&cfg, &binary.inbound(), "/sources/src_1");
    assert_eq!(event["data_base64"], "/wA=");
    assert_eq!(event["datacontenttype"], "application/octet-stream");
    assert_eq!(event["type"], "github.unknown");
    assert!(event.get("data").is_none());
    // No delivery header: the body hash.
    assert_eq!(event["id"], delivery_id(&cfg, &binary.inbound()));
    assert_eq!(delivery_id(&cfg, &binary.inbound()).len(), 64);
}

#[test]
fn provider_times_and_ids() {
    let cfg = config(Scheme::Stripe, json!({}));
    let req = Req::post(
        r#"{"id":"evt_9","type":"customer.created","created":1700000000,"data":{"object":{"id":"cus_1"}}}"#,
    );
    let event = canonical_event(&cfg, &req.inbound(), "/s");
    assert_eq!(event["time"], "2023-11-14T22:13:20Z");
    assert_eq!(event["subject"], "cus_1");
    assert_eq!(event["id"], "evt_9");

    let pubsub = config(Scheme::GooglePubsub, json!({"audience": "a"}));
    let req = Req::post(
        r#"{"message":{"messageId":"m1","publishTime":"2024-01-01T00:00:00Z"},"subscription":"projects/p/subscriptions/s"}"#,
    );
    assert_eq!(delivery_id(&pubsub, &req.inbound()), "m1");
    assert_eq!(
        event_type(&pubsub, &req.inbound()).as_deref(),
        Some("google_pubsub.message")
    );

    // Overlong ids are bounded.
    let long = "x".repeat(500);
    let req = Req::post("{}").header("x-github-delivery", &long);
    let id = delivery_id(&config(Scheme::Github, json!({})), &req.inbound());
    assert!(id.starts_with("sha256:") && id.len() == 71);

    // CloudEvents binary mode on a generic source.
    let generic = config(Scheme::ApiKeyHeader, json!({"header": "x-api-key"}));
    let req = Req::post("{}")
        .header("ce-id", "ce-7")
        .header("ce-type", "com.example.thing");
    assert_eq!(delivery_id(&generic, &req.inbound()), "ce-7");
    assert_eq!(
        event_type(&generic, &req.inbound()).as_deref(),
        Some("com.example.thing")
    );
}

//! Handshakes decided from the raw request, and verified first where the provider signs them.

use http::Method;
use serde_json::{Value, json};
use switchyard_webhooks::{HandshakeAction, HandshakeKind, Inbound, KeyCache, Scheme, handshake};

use crate::support::*;

fn reply_json(inbound: Inbound) -> (HandshakeKind, Value) {
    let Inbound::Handshake(h) = inbound else {
        panic!("expected a handshake")
    };
    let HandshakeAction::Reply(reply) = h.action else {
        panic!("expected a reply")
    };
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], "application/json");
    (h.kind, serde_json::from_slice(&reply.body).expect("json"))
}

#[test]
fn slack_url_verification_is_verified_first() {
    let Some(python) = python() else { return };
    let cfg = config(Scheme::Slack, json!({}));
    let secret = "slack-signing-secret";
    let body = r#"{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let ts = now().to_string();
    let sig = py(
        &python,
        "import sys\nfrom slack_sdk.signature import SignatureVerifier\n\
         print(SignatureVerifier(sys.argv[1]).generate_signature(timestamp=sys.argv[2], body=sys.argv[3]))",
        &[secret, &ts, body],
    );
    let req = Req::post(body)
        .header("x-slack-request-timestamp", &ts)
        .header("x-slack-signature", &sig);
    let keys = KeyCache::offline();
    let (kind, reply) =
        reply_json(process(&cfg, &secrets(&[secret]), &req, &keys).expect("answers"));
    assert_eq!(kind, HandshakeKind::SlackUrlVerification);
    assert_eq!(
        reply,
        json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
    );

    let forged = req
        .clone()
        .header("x-slack-signature", &format!("v0={}", "0".repeat(64)));
    let err = process(&cfg, &secrets(&[secret]), &forged, &keys).unwrap_err();
    assert_eq!(err.code(), "signature_mismatch");
}

#[test]
fn okta_verification_needs_the_auth_header() {
    let cfg = config(Scheme::Okta, json!({}));
    let req = Req::post("")
        .method(Method::GET)
        .header(
            "x-okta-verification-challenge",
            "Me_rShK8JHsTnbyYrWXCEoMGbM_zsZ6k0hLPZ_Pg",
        )
        .header("authorization", "my-shared-secret");
    let keys = KeyCache::offline();
    let (kind, reply) =
        reply_json(process(&cfg, &secrets(&["my-shared-secret"]), &req, &keys).expect("answers"));
    assert_eq!(kind, HandshakeKind::OktaVerification);
    assert_eq!(
        reply,
        json!({"verification": "Me_rShK8JHsTnbyYrWXCEoMGbM_zsZ6k0hLPZ_Pg"})
    );
    let anonymous = req.clone().without("authorization");
    assert_eq!(
        process(&cfg, &secrets(&["my-shared-secret"]), &anonymous, &keys)
            .unwrap_err()
            .code(),
        "missing_header"
    );
    // A POST with the header is a delivery, not a handshake.
    assert!(handshake(&cfg, &req.clone().method(Method::POST).inbound()).is_none());
}

#[test]
fn microsoft_graph_validation_token_is_echoed() {
    let cfg = config(Scheme::MicrosoftGraph, json!({}));
    let req = Req::post("").url("https://hooks.example.com/ingest/src_1?validationToken=Validation%3A%20Testing%20client%20application%20reachability%20for%20subscription%20Request-Id%3A%2025b5");
    let h = handshake(&cfg, &req.inbound()).expect("handshake");
    assert_eq!(h.kind, HandshakeKind::GraphValidation);
    assert!(!h.verify_first);
    let HandshakeAction::Reply(reply) = h.action else {
        panic!()
    };
    assert_eq!(reply.headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(reply.headers["x-content-type-options"], "nosniff");
    assert_eq!(
        reply.body,
        "Validation: Testing client application reachability for subscription Request-Id: 25b5"
    );
    assert!(handshake(&cfg, &Req::post("{}").inbound()).is_none());
}

#[test]
fn event_grid_subscription_validation() {
    let body = json!([{
        "id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
        "topic": "/subscriptions/x",
        "subject": "",
        "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6", "validationUrl": "https://rp-eastus2.eventgrid.azure.net/x"},
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "eventTime": "2018-01-25T22:12:19.4556811Z",
        "dataVersion": "1"
    }])
    .to_string();
    let cfg = config(Scheme::ApiKeyHeader, json!({"header": "x-api-key"}));
    let req = Req::post(body)
        .header("aeg-event-type", "SubscriptionValidation")
        .header("x-api-key", "k");
    let keys = KeyCache::offline();
    let (kind, reply) = reply_json(process(&cfg, &secrets(&["k"]), &req, &keys).expect("answers"));
    assert_eq!(kind, HandshakeKind::EventGridValidation);
    assert_eq!(
        reply,
        json!({"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"})
    );
    let wrong = req.clone().header("x-api-key", "nope");
    assert_eq!(
        process(&cfg, &secrets(&["k"]), &wrong, &keys)
            .unwrap_err()
            .code(),
        "credential_mismatch"
    );
}

#[test]
fn cloudevents_options_handshake() {
    let cfg = config(
        Scheme::ApiKeyHeader,
        json!({"header": "x-api-key", "allowed_origins": ["eventemitter.example.com"]}),
    );
    let req = Req::post("")
        .method(Method::OPTIONS)
        .header("webhook-request-origin", "eventemitter.example.com")
        .header("webhook-request-rate", "120");
    let h = handshake(&cfg, &req.inbound()).expect("handshake");
    assert_eq!(h.kind, HandshakeKind::CloudEventsValidation);
    let HandshakeAction::Reply(reply) = h.action else {
        panic!()
    };
    assert_eq!(
        reply.headers["webhook-allowed-origin"],
        "eventemitter.example.com"
    );
    assert_eq!(reply.headers["webhook-allowed-rate"], "*");
    let other = req
        .clone()
        .header("webhook-request-origin", "evil.example.com");
    assert!(handshake(&cfg, &other.inbound()).is_none());
    // Provider-specific schemes do not answer it.
    assert!(handshake(&config(Scheme::Github, json!({})), &req.inbound()).is_none());
}

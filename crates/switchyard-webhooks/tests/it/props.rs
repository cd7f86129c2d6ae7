//! Arbitrary headers, bodies and URLs never panic any verifier, handshake or extractor.

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use proptest::prelude::*;
use serde_json::json;
use switchyard_webhooks::{InboundRequest, KeyCache, Scheme, Secret, SourceConfig};
use time::OffsetDateTime;
use url::Url;

use crate::support::block_on;

const NAMES: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "x-hub-signature-256",
    "x-hub-signature",
    "stripe-signature",
    "x-slack-signature",
    "x-slack-request-timestamp",
    "x-shopify-hmac-sha256",
    "linear-signature",
    "x-gitlab-token",
    "x-twilio-signature",
    "x-twilio-webhooks-signature-settings",
    "authorization",
    "x-okta-verification-challenge",
    "x-github-event",
    "x-sig",
    "x-ts",
    "content-type",
    "aeg-event-type",
    "webhook-request-origin",
    "ce-id",
    "ce-type",
    "x-amz-sns-message-type",
];

fn configs() -> Vec<SourceConfig> {
    let mut out: Vec<SourceConfig> = Scheme::ALL
        .into_iter()
        .filter(|s| {
            !matches!(
                s,
                Scheme::GenericHmac | Scheme::ApiKeyHeader | Scheme::GooglePubsub
            )
        })
        .map(|s| SourceConfig::from_json(s, &json!(null), true).unwrap())
        .collect();
    out.push(
        SourceConfig::from_json(
            Scheme::GenericHmac,
            &json!({"header": "x-sig", "timestamp_header": "x-ts", "signed_content": "{timestamp}.{body}", "encoding": "base64"}),
            false,
        )
        .unwrap(),
    );
    out.push(
        SourceConfig::from_json(
            Scheme::ApiKeyHeader,
            &json!({"header": "authorization", "prefix": "Bearer "}),
            false,
        )
        .unwrap(),
    );
    out.push(
        SourceConfig::from_json(Scheme::GooglePubsub, &json!({"audience": "a"}), false).unwrap(),
    );
    out.push(
        SourceConfig::from_json(
            Scheme::Gitlab,
            &json!({"gitlab_mode": "standard_webhooks"}),
            false,
        )
        .unwrap(),
    );
    out
}

fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        // JSON-ish bodies reach deeper into the parsers.
        "\\{\"(type|Type|id|message|value|challenge|webhookTimestamp|SignatureVersion)\":(\"[ -~]{0,20}\"|[0-9]{1,14}|\\[\\]|\\{\\}|null)\\}"
            .prop_map(String::into_bytes),
        Just(br#"[{"eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","data":{"validationCode":"c"}}]"#.to_vec()),
        Just(br#"{"Type":"SubscriptionConfirmation","SubscribeURL":"https://sns.us-east-1.amazonaws.com/x","SigningCertURL":"https://sns.us-east-1.amazonaws.com/x.pem","SignatureVersion":"1","Signature":"AA==","TopicArn":"t","Message":"m","MessageId":"i","Timestamp":"t","Token":"k"}"#.to_vec()),
    ]
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..80),
        "(v1,|v1a,|sha256=|v0=|t=1,v1=|Bearer |Basic )[ -~]{0,90}".prop_map(String::into_bytes),
        "[0-9]{0,20}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn nothing_panics(
        headers in proptest::collection::vec((0..NAMES.len(), header_value()), 0..8),
        body in body_strategy(),
        query in "[a-zA-Z0-9=&%]{0,40}",
        method in prop_oneof![Just(Method::POST), Just(Method::GET), Just(Method::OPTIONS)],
        skew in -10_000i64..10_000,
    ) {
        let mut map = HeaderMap::new();
        for (index, value) in headers {
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                map.append(HeaderName::from_static(NAMES[index]), value);
            }
        }
        let url = Url::parse(&format!("https://h.example.com/ingest/s?{query}")).unwrap();
        let req = InboundRequest {
            method: &method,
            url: &url,
            headers: &map,
            body: &body,
            received_at: OffsetDateTime::now_utc() + time::Duration::seconds(skew),
        };
        let secrets = [Secret::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Secret::from(&b"\xff\x00"[..])];
        let keys = KeyCache::offline();
        for config in configs() {
            let _ = switchyard_webhooks::handshake(&config, &req);
            let _ = switchyard_webhooks::delivery_id(&config, &req);
            let _ = switchyard_webhooks::event_type(&config, &req);
            let _ = switchyard_webhooks::canonical_event(&config, &req, "/sources/s");
            let _ = block_on(switchyard_webhooks::process(&config, &secrets, &req, &keys));
            let _ = block_on(switchyard_webhooks::verify(&config, &[], &req, &keys));
        }
    }
}

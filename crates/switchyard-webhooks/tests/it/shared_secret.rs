//! Schemes that send a shared secret rather than a signature: GitLab token, Okta, Microsoft
//! Graph clientState, Basic auth and API key headers. Credentials are built with Python's
//! base64 where encoding is involved.

use serde_json::json;
use switchyard_webhooks::Scheme;

use crate::support::*;

#[test]
fn gitlab_token() {
    let cfg = config(Scheme::Gitlab, json!({}));
    let body = r#"{"object_kind":"push","project":{"path_with_namespace":"g/p"}}"#;
    let req = Req::post(body)
        .header("x-gitlab-token", "tok-123")
        .header("x-gitlab-event", "Push Hook")
        .header("idempotency-key", "f3c5");
    let verified = check(&cfg, &secrets(&["old", "tok-123"]), &req).expect("verifies");
    assert_eq!(verified.secret_index, Some(1));
    assert_eq!(verified.delivery_id, "f3c5");
    assert_eq!(verified.event_type.as_deref(), Some("gitlab.push"));

    let s = secrets(&["tok-123"]);
    assert_eq!(
        code(check(
            &cfg,
            &s,
            &req.clone().header("x-gitlab-token", "tok-12")
        )),
        "credential_mismatch"
    );
    assert_eq!(
        code(check(
            &cfg,
            &s,
            &req.clone().header("x-gitlab-token", "tok-1234")
        )),
        "credential_mismatch"
    );
    assert_eq!(
        code(check(&cfg, &s, &req.clone().header("x-gitlab-token", ""))),
        "credential_mismatch"
    );
    assert_eq!(
        code(check(&cfg, &s, &req.clone().without("x-gitlab-token"))),
        "missing_header"
    );
    assert_eq!(code(check(&cfg, &[], &req)), "no_secret_configured");
}

#[test]
fn okta_authorization_header() {
    let cfg = config(Scheme::Okta, json!({}));
    let body = r#"{"eventType":"com.okta.event_hook","eventId":"evt_okta_1","data":{"events":[{"eventType":"user.lifecycle.create"}]}}"#;
    let req = Req::post(body).header("authorization", "my-shared-secret");
    let verified = check(&cfg, &secrets(&["my-shared-secret"]), &req).expect("verifies");
    assert_eq!(verified.delivery_id, "evt_okta_1");
    assert_eq!(
        verified.event_type.as_deref(),
        Some("okta.user.lifecycle.create")
    );
    assert_eq!(
        code(check(&cfg, &secrets(&["other"]), &req)),
        "credential_mismatch"
    );
    assert_eq!(
        code(check(
            &cfg,
            &secrets(&["x"]),
            &req.clone().without("authorization")
        )),
        "missing_header"
    );

    let custom = config(
        Scheme::Okta,
        json!({"header": "x-okta-secret", "prefix": "Key "}),
    );
    let req = Req::post(body).header("x-okta-secret", "key my-shared-secret");
    assert!(check(&custom, &secrets(&["my-shared-secret"]), &req).is_ok());
    let req = Req::post(body).header("x-okta-secret", "my-shared-secret");
    assert_eq!(
        code(check(&custom, &secrets(&["my-shared-secret"]), &req)),
        "credential_mismatch"
    );
}

#[test]
fn microsoft_graph_client_state() {
    let cfg = config(Scheme::MicrosoftGraph, json!({}));
    let note = |state: &str| json!({"subscriptionId": "s1", "changeType": "created", "resource": "Users/1", "clientState": state});
    let body = json!({"value": [note("state-1"), note("state-1")]}).to_string();
    let verified = check(&cfg, &secrets(&["state-1"]), &Req::post(body.clone())).expect("verifies");
    assert_eq!(
        verified.event_type.as_deref(),
        Some("microsoft_graph.created")
    );
    assert_eq!(verified.delivery_id.len(), 64);

    let mixed = json!({"value": [note("state-1"), note("forged")]}).to_string();
    assert_eq!(
        code(check(&cfg, &secrets(&["state-1"]), &Req::post(mixed))),
        "credential_mismatch"
    );
    let missing = json!({"value": [{"changeType": "created"}]}).to_string();
    assert_eq!(
        code(check(&cfg, &secrets(&["state-1"]), &Req::post(missing))),
        "credential_mismatch"
    );
    let empty = json!({"value": []}).to_string();
    assert_eq!(
        code(check(&cfg, &secrets(&["state-1"]), &Req::post(empty))),
        "malformed_body"
    );
    assert_eq!(
        code(check(&cfg, &secrets(&["state-1"]), &Req::post(vec![0xff]))),
        "malformed_body"
    );
    assert_eq!(
        code(check(&cfg, &[], &Req::post(body))),
        "no_secret_configured"
    );
}

#[test]
fn basic_auth() {
    let Some(python) = python() else { return };
    let cfg = config(Scheme::BasicAuth, json!({}));
    let encode = |creds: &str| {
        py(
            &python,
            "import sys, base64; print(base64.b64encode(sys.argv[1].encode()).decode())",
            &[creds],
        )
    };
    let req = Req::post("{}").header("authorization", &format!("Basic {}", encode("hook:pa:ss")));
    assert!(check(&cfg, &secrets(&["hook:pa:ss"]), &req).is_ok());
    let s = secrets(&["hook:pa:ss"]);
    let wrong = Req::post("{}").header("authorization", &format!("Basic {}", encode("hook:pass")));
    assert_eq!(code(check(&cfg, &s, &wrong)), "credential_mismatch");
    let bearer = Req::post("{}").header("authorization", "Bearer abc");
    assert_eq!(code(check(&cfg, &s, &bearer)), "malformed_header");
    let garbage = Req::post("{}").header("authorization", "Basic ###");
    assert_eq!(code(check(&cfg, &s, &garbage)), "malformed_header");
    assert_eq!(code(check(&cfg, &s, &Req::post("{}"))), "missing_header");
}

#[test]
fn api_key_header() {
    let cfg = config(
        Scheme::ApiKeyHeader,
        json!({"header": "authorization", "prefix": "Bearer "}),
    );
    let req = Req::post("{}").header("authorization", "Bearer k_live_1");
    assert!(check(&cfg, &secrets(&["k_live_1"]), &req).is_ok());
    let s = secrets(&["k_live_1"]);
    assert_eq!(
        code(check(
            &cfg,
            &s,
            &Req::post("{}").header("authorization", "k_live_1")
        )),
        "credential_mismatch"
    );
    assert_eq!(
        code(check(
            &cfg,
            &s,
            &Req::post("{}").header("authorization", "Bearer k_live_2")
        )),
        "credential_mismatch"
    );
    assert_eq!(
        code(check(
            &cfg,
            &s,
            &Req::post("{}").header("authorization", "Bearer ")
        )),
        "credential_mismatch"
    );

    let plain = config(
        Scheme::ApiKeyHeader,
        json!({"header": "x-api-key", "id_header": "x-request-id"}),
    );
    let req = Req::post(vec![0x80, 0x81])
        .header("x-api-key", "k")
        .header("x-request-id", "r-1");
    let verified = check(&plain, &secrets(&["k"]), &req).expect("verifies");
    assert_eq!(verified.delivery_id, "r-1");
}

#[test]
fn none_requires_allow_unverified() {
    use switchyard_webhooks::{ConfigError, SchemeOptions, SourceConfig};
    assert_eq!(
        SourceConfig::new(Scheme::None, SchemeOptions::default(), false),
        Err(ConfigError::UnverifiedNotAllowed)
    );
    let cfg = SourceConfig::new(Scheme::None, SchemeOptions::default(), true).unwrap();
    let req = Req::post(
        r#"{"specversion":"1.0","id":"ce-1","type":"com.example.created","source":"/x"}"#,
    );
    let verified = check(&cfg, &[], &req).expect("allowed explicitly");
    assert_eq!(verified.delivery_id, "ce-1");
    assert_eq!(verified.event_type.as_deref(), Some("com.example.created"));
}

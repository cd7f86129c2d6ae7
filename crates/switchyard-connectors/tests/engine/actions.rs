//! Checks, actions and webhook rules.

use serde_json::json;
use switchyard_connectors::{Connector, ConnectorError, WebhookEvent};

use crate::support::{Harness, connector};

#[tokio::test]
async fn the_check_reports_granted_and_missing_scopes() {
    let harness = Harness::start(0).await;
    let report = connector("standin-link")
        .test_connection(harness.cx())
        .await
        .unwrap();
    assert!(report.success, "{report:?}");
    assert_eq!(
        report.permissions_verified,
        vec!["items:read", "items:write"]
    );
    assert!(report.permissions_missing.is_empty());
}

#[tokio::test]
async fn a_refused_credential_fails_the_check_with_a_code() {
    let mut harness = Harness::start(0).await;
    harness.connection.base_url = Some(format!("{}/", harness.standin.url()));
    harness.standin.fail_next("/me", 401, 1);
    let report = connector("standin-link")
        .test_connection(harness.cx())
        .await
        .unwrap();
    assert!(!report.success);
    assert_eq!(report.error_code.as_deref(), Some("auth_failed"));
    assert_eq!(
        report.permissions_missing,
        vec!["items:read", "items:write"]
    );
}

#[tokio::test]
async fn actions_validate_input_and_pass_the_idempotency_key() {
    let harness = Harness::start(0).await;
    let connector = connector("standin-link");
    let input = json!({"name": "Ada", "email": "ada@example.test"});
    let first = connector
        .execute_action(harness.cx(), "create_user", &input, Some("key-1"))
        .await
        .unwrap();
    let again = connector
        .execute_action(harness.cx(), "create_user", &input, Some("key-1"))
        .await
        .unwrap();
    assert_eq!(first, again, "the provider replays the first answer");
    assert_eq!(harness.standin.items().len(), 1);
    assert_eq!(first["name"], "Ada");

    let error = connector
        .execute_action(harness.cx(), "create_user", &json!({"name": ""}), None)
        .await
        .unwrap_err();
    let ConnectorError::InvalidInput(problems) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(
        harness
            .standin
            .requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count(),
        2,
        "nothing sent for bad input"
    );
    assert!(matches!(
        connector
            .execute_action(harness.cx(), "nope", &json!({}), None)
            .await,
        Err(ConnectorError::UnknownAction(_))
    ));
}

#[tokio::test]
async fn webhook_rules_name_the_streams_to_sync() {
    let harness = Harness::start(0).await;
    let connector = connector("standin-link");
    let outcome = |event_type: &str| WebhookEvent {
        event_type: Some(event_type.into()),
        headers: Vec::new(),
        body: json!({}),
    };
    let member = connector
        .handle_webhook(harness.cx(), &outcome("member.added"))
        .await
        .unwrap();
    assert_eq!(member.sync, vec!["users"]);
    let ping = connector
        .handle_webhook(harness.cx(), &outcome("ping"))
        .await
        .unwrap();
    assert!(ping.acknowledged_only && ping.sync.is_empty());
    let other = connector
        .handle_webhook(harness.cx(), &outcome("push"))
        .await
        .unwrap();
    assert_eq!(other, Default::default());
}

#[tokio::test]
async fn unsupported_methods_say_so() {
    let harness = Harness::start(0).await;
    let connector = connector("standin-cursor");
    let error = connector.test_connection(harness.cx()).await.unwrap_err();
    assert_eq!(error.code(), "unsupported");
    let error = connector
        .handle_webhook(
            harness.cx(),
            &WebhookEvent {
                event_type: None,
                headers: Vec::new(),
                body: json!({}),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "unsupported");
}

#[tokio::test]
async fn a_batched_delivery_syncs_what_each_of_its_events_concerns() {
    // An Okta event hook delivery carries several events; the gateway names it by the first.
    let harness = Harness::start(0).await;
    let okta = switchyard_connectors::Registry::builtin()
        .unwrap()
        .get("okta")
        .unwrap();
    let event = |types: &[&str]| WebhookEvent {
        event_type: types.first().map(|t| (*t).to_owned()),
        headers: Vec::new(),
        body: json!({
            "eventType": "com.okta.event_hook",
            "data": {"events": types.iter().map(|t| json!({"eventType": t})).collect::<Vec<_>>()},
        }),
    };
    let batch = okta
        .handle_webhook(
            harness.cx(),
            &event(&["user.lifecycle.suspend", "group.user_membership.add"]),
        )
        .await
        .unwrap();
    assert_eq!(batch.sync, vec!["users", "group_members"]);
    let single = okta
        .handle_webhook(harness.cx(), &event(&["group.user_membership.remove"]))
        .await
        .unwrap();
    assert_eq!(single.sync, vec!["group_members"]);
}

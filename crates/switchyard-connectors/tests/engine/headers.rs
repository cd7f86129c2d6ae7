//! `Accept` and `Content-Type`: the engine's JSON defaults give way to the manifest's own.

use serde_json::json;
use switchyard_connectors::Connector;

use crate::support::{Harness, connector_at};

#[tokio::test]
async fn manifest_accept_and_content_type_headers_are_sent() {
    let harness = Harness::start(3).await;
    let connector = connector_at("headers/standin-headers");
    let counts = harness.sync_stream(&connector, "users").await;
    assert_eq!(counts.added, 3, "{counts:?}");
    connector
        .execute_action(
            harness.cx(),
            "create_user",
            &json!({"name": "Ada", "email": "ada@example.test"}),
            None,
        )
        .await
        .unwrap();
    // A request's own `Accept` wins over the manifest-wide one; no `Content-Type` of its own
    // is the engine's `application/json`.
    connector
        .execute_action(
            harness.cx(),
            "create_user_plain",
            &json!({"name": "Bob", "email": "bob@example.test"}),
            None,
        )
        .await
        .unwrap();
    let sent: Vec<(String, Option<String>, Option<String>)> = harness
        .standin
        .requests()
        .into_iter()
        .map(|r| {
            (
                format!("{} {}", r.method, r.path),
                r.headers.get("accept").cloned(),
                r.headers.get("content-type").cloned(),
            )
        })
        .collect();
    let header = |value: &str| Some(value.to_owned());
    assert_eq!(
        sent,
        [
            (
                "GET /link/items".to_owned(),
                header("application/vnd.standin+json"),
                None
            ),
            (
                "POST /items".to_owned(),
                header("application/vnd.standin+json"),
                header("application/json; charset=utf-8")
            ),
            (
                "POST /items".to_owned(),
                header("application/json"),
                header("application/json")
            ),
        ]
    );
    assert_eq!(harness.standin.items().len(), 5, "both posts were accepted");
}

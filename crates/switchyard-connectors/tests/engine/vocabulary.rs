//! The vocabulary the first real connectors need, against the stand-in: error rules that
//! read 2xx bodies (Slack), a cursor in the request body and `stop_path` (Jira), an empty
//! page ending a log that always links onwards (Okta), and partition fields.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_connectors::manifest::ErrorKind;
use switchyard_connectors::{Connector, ConnectorError, ManifestConnector, manifest};
use switchyard_test_support::standin::{CAPPED_PAGE, Failure, LoggedRequest};

use crate::support::{Harness, connector_at};

fn vocabulary() -> ManifestConnector {
    connector_at("vocabulary/standin-vocabulary")
}

fn requests_to(harness: &Harness, path: &str) -> Vec<LoggedRequest> {
    harness
        .standin
        .requests()
        .into_iter()
        .filter(|r| r.path == path)
        .collect()
}

fn query_value(request: &LoggedRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(request.query.as_deref().unwrap_or_default().as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

#[tokio::test]
async fn a_body_cursor_walks_a_search_to_its_last_page() {
    let harness = Harness::start(250).await;
    let counts = harness.sync_stream(&vocabulary(), "issues").await;
    assert_eq!((counts.added, counts.pages), (250, 3), "{counts:?}");
    assert_eq!(harness.store.stored("issues").await.len(), 250);
    let searches = requests_to(&harness, "/search/items");
    assert_eq!(searches.len(), 3, "one POST per page");
    assert!(
        searches
            .iter()
            .all(|r| r.method == "POST" && r.status == 200)
    );
}

#[tokio::test]
async fn a_stop_path_reads_past_short_pages_and_ends_the_read() {
    let harness = Harness::start(75).await;
    let counts = harness.sync_stream(&vocabulary(), "members").await;
    // Pages of 20 although 50 were asked: a short page alone would have ended the read.
    assert_eq!((counts.added, counts.pages), (75, 4), "{counts:?}");
    let starts: Vec<String> = requests_to(&harness, "/capped/items")
        .iter()
        .filter_map(|r| query_value(r, "startAt"))
        .collect();
    let step = CAPPED_PAGE.to_string();
    assert_eq!(starts, ["0", step.as_str(), "40", "60"]);
}

#[tokio::test]
async fn an_empty_page_ends_a_log_that_always_links_onwards() {
    let harness = Harness::start(150).await;
    let connector = vocabulary();
    let counts = harness.sync_stream(&connector, "events").await;
    // 100, 50, then the empty page the last `next` link leads to.
    assert_eq!((counts.added, counts.pages), (150, 3), "{counts:?}");
    let first_run = requests_to(&harness, "/log/items");
    assert_eq!(first_run.len(), 3);
    assert_eq!(
        query_value(&first_run[0], "since"),
        None,
        "a first read has no `since`: the empty value leaves the parameter out"
    );

    harness.standin.advance(Duration::from_secs(60));
    harness.standin.clear_requests();
    harness.sync_stream(&connector, "events").await;
    let newest = harness
        .standin
        .items()
        .iter()
        .map(|item| item.updated_at)
        .max()
        .unwrap();
    let second_run = requests_to(&harness, "/log/items");
    let expected = format!(
        "{}.000Z",
        newest
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
            .trim_end_matches('Z')
    );
    assert_eq!(
        query_value(&second_run[0], "since").as_deref(),
        Some(expected.as_str()),
        "the checkpoint in Okta's notation"
    );
}

#[tokio::test]
async fn a_partition_field_keys_each_partitions_records() {
    let harness = Harness::start(5).await;
    let counts = harness.sync_stream(&vocabulary(), "assignments").await;
    // Every issue lists the same two items; with the issue in the key they are ten records.
    assert_eq!(counts.added, 10, "{counts:?}");
    let records = harness.store.stored("assignments").await;
    assert_eq!(records.len(), 10);
    let record = &records["u00003/u00002"];
    assert_eq!(record["issue_id"], "u00003");
    assert_eq!(record["id"], "u00002");
}

async fn first_channels_page(
    harness: &Harness,
) -> Result<switchyard_connectors::Page, ConnectorError> {
    vocabulary().collect(harness.cx(), "channels", None).await
}

#[tokio::test]
async fn ok_false_on_a_2xx_fails_with_the_rules_typed_error() {
    let harness = Harness::start(10).await;
    let slack = |body: Value| Failure::new("/cursor/items", 200).json_body(body);

    harness
        .standin
        .inject(slack(json!({"ok": false, "error": "invalid_auth"})));
    let error = first_channels_page(&harness).await.unwrap_err();
    assert!(
        matches!(
            error,
            ConnectorError::Refused {
                kind: ErrorKind::AuthFailed,
                status: 200,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.code(), "auth_failed");

    harness.standin.inject(slack(json!({
        "ok": false, "error": "missing_scope", "needed": "channels:read", "provided": "users:read"
    })));
    let error = first_channels_page(&harness).await.unwrap_err();
    assert_eq!(error.code(), "permission_denied");
    assert!(
        error
            .to_string()
            .contains("standin-vocabulary: channels:read"),
        "{error}"
    );

    // Any other `ok: false`: the catch-all rule, with Slack's code in the message.
    harness
        .standin
        .inject(slack(json!({"ok": false, "error": "account_inactive"})));
    let error = first_channels_page(&harness).await.unwrap_err();
    assert_eq!(error.code(), "provider_error");
    assert!(
        error
            .to_string()
            .contains("standin-vocabulary: account_inactive"),
        "{error}"
    );

    // The stream's own `ignore` rule comes before the manifest-wide catch-all.
    harness
        .standin
        .inject(slack(json!({"ok": false, "error": "channel_not_found"})));
    let page = first_channels_page(&harness).await.unwrap();
    assert!(page.records.is_empty() && page.done, "{page:?}");

    // No rule matches a plain `ok: true` page.
    let page = first_channels_page(&harness).await.unwrap();
    assert_eq!(page.records.len(), 10);
}

#[tokio::test]
async fn a_rate_limited_2xx_is_retried_then_fails_typed() {
    let harness = Harness::start(10).await;
    let limited = || {
        Failure::new("/cursor/items", 200)
            .json_body(json!({"ok": false, "error": "ratelimited"}))
            .header("retry-after", "0")
    };
    harness.standin.inject(limited());
    let page = first_channels_page(&harness).await.unwrap();
    assert_eq!(page.records.len(), 10);
    assert_eq!(requests_to(&harness, "/cursor/items").len(), 2);

    // Three retries, then the rule's error.
    harness.standin.clear_requests();
    harness.standin.inject(limited().times(4));
    let error = first_channels_page(&harness).await.unwrap_err();
    assert_eq!(error.code(), "rate_limited", "{error}");
    assert_eq!(requests_to(&harness, "/cursor/items").len(), 4);
}

#[tokio::test]
async fn the_check_reports_the_code_of_a_manifest_wide_rule() {
    let harness = Harness::start(0).await;
    let connector = vocabulary();
    let report = connector.test_connection(harness.cx()).await.unwrap();
    assert!(report.success, "{report:?}");

    harness
        .standin
        .inject(Failure::new("/me", 200).json_body(json!({"ok": false, "error": "invalid_auth"})));
    let report = connector.test_connection(harness.cx()).await.unwrap();
    assert!(!report.success);
    assert_eq!(report.error_code.as_deref(), Some("auth_failed"));
}

#[tokio::test]
async fn an_action_fails_with_the_typed_error() {
    let harness = Harness::start(0).await;
    harness
        .standin
        .inject(Failure::new("/items", 200).json_body(json!({
            "ok": false, "error": "missing_scope", "needed": "items:write"
        })));
    let input = json!({"name": "Ada", "email": "ada@example.test"});
    let error = vocabulary()
        .execute_action(harness.cx(), "create_user", &input, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ConnectorError::Refused {
                kind: ErrorKind::PermissionDenied,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(harness.standin.items().is_empty());
}

/// The problems the loader reports for a manifest of one stream with `extra` in it, and
/// `top` at the top level.
fn problems(top: &str, stream_extra: &str) -> Vec<String> {
    let text = format!(
        "id: x\nname: X\nversion: 1.0.0\nbase_url: https://x.test\nauth: [{{type: bearer}}]\n{top}\nstreams:\n  - name: s\n    request: {{ path: /s }}\n    records: \"$[*]\"\n    primary_key: [\"$.id\"]\n{stream_extra}\n"
    );
    match manifest::load(&text, "test.yaml") {
        Ok(_) => Vec::new(),
        Err(error) => error.problems.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn the_loader_checks_the_new_fields() {
    let found = problems(
        "errors:\n  - { when: { path: \"$.[\", equals: false }, action: fail }",
        "",
    );
    assert!(
        found
            .iter()
            .any(|p| p.contains("errors[0].when.path") && p.starts_with("7:")),
        "{found:?}"
    );
    let found = problems(
        "",
        "    errors:\n      - { status: [400], action: fail, message_path: \"nope\" }",
    );
    assert!(
        found
            .iter()
            .any(|p| p.contains("streams[0].errors[0].message_path")),
        "{found:?}"
    );
    let found = problems(
        "",
        "    pagination: { type: cursor, location: body, cursor_path: \"$.next\", param: next, stop_path: \"$.[\" }",
    );
    assert!(
        found.iter().any(|p| p.contains("pagination.location")),
        "a body cursor on a GET: {found:?}"
    );
    assert!(
        found.iter().any(|p| p.contains("pagination.stop_path")),
        "{found:?}"
    );
    let found = problems("", "    partitions: { config: config.list, field: \" \" }");
    assert!(
        found.iter().any(|p| p.contains("partitions.field")),
        "{found:?}"
    );
    let found = problems(
        "errors:\n  - { when: { path: \"$.ok\", equals: false }, action: fail, error: forbidden }",
        "",
    );
    assert!(
        found
            .iter()
            .any(|p| p.contains("unknown variant `forbidden`")),
        "{found:?}"
    );
    let found = problems(
        "errors:\n  - { status: [404], action: ignore, error: not_found }",
        "",
    );
    assert!(
        found.iter().any(|p| p.contains("errors[0].error")),
        "{found:?}"
    );
    assert!(
        problems(
            "errors:\n  - { when: { path: \"$.ok\", equals: false }, action: fail, error: not_found }",
            "    pagination: { type: link_header, stop_on_empty: true }",
        )
        .is_empty()
    );
}

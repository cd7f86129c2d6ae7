//! The actions: the requests GitHub receives, and the created issue as a ticket.

use super::*;

#[tokio::test]
async fn actions_send_githubs_requests_and_map_the_issue_to_a_ticket() {
    let synced = with_token(stand_in(token_options()).await).await;
    let input = json!({
        "repository": "repo-002",
        "title": "Enable secret scanning",
        "body": "Required by policy SEC-4.",
        "labels": ["security", "audit"],
        "assignees": ["member-0003"],
    });
    let issue = synced
        .connector
        .execute_action(synced.cx(), "create_issue", &input, None)
        .await
        .unwrap();
    let stored = synced.github.issues("repo-002");
    assert_eq!(stored.len(), 1);
    assert_eq!(issue, stored[0], "the output is GitHub's answer");
    assert_eq!(issue["title"], "Enable secret scanning");
    assert_eq!(issue["body"], "Required by policy SEC-4.");
    assert_eq!(issue["labels"][1]["name"], "audit");
    assert_eq!(issue["assignees"][0]["login"], "member-0003");

    let spec = synced
        .connector
        .manifest()
        .action("create_issue")
        .unwrap()
        .unified
        .clone()
        .unwrap();
    let ticket = CompiledMapping::new(&spec.spec)
        .unwrap()
        .apply("github", &issue)
        .unwrap();
    assert_eq!(ticket["system"], "github");
    assert_eq!(ticket["externalId"], "1");
    assert_eq!(ticket["status"], "open");
    assert_eq!(ticket["url"], "https://github.com/acme/repo-002/issues/1");
    assert_eq!(ticket["created_at"], "2024-01-01T00:00:00Z");

    // Without the optional fields: no body, no labels.
    let bare = synced
        .connector
        .execute_action(
            synced.cx(),
            "create_issue",
            &json!({"repository": "repo-002", "title": "Bare"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(bare["body"], Value::Null);
    assert_eq!(bare["labels"], json!([]));

    let comment = synced
        .connector
        .execute_action(
            synced.cx(),
            "add_issue_comment",
            &json!({"repository": "repo-002", "issue_number": 1, "body": "Enabled."}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(comment["body"], "Enabled.");
    assert_eq!(synced.github.comments("repo-002", 1), [comment]);
    let posts: Vec<_> = synced
        .github
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.path)
        .collect();
    assert_eq!(
        posts,
        [
            "/repos/acme/repo-002/issues",
            "/repos/acme/repo-002/issues",
            "/repos/acme/repo-002/issues/1/comments"
        ]
    );

    // An issue that does not exist is GitHub's 404; bad input never leaves.
    synced.github.clear_requests();
    let error = synced
        .connector
        .execute_action(
            synced.cx(),
            "add_issue_comment",
            &json!({"repository": "repo-002", "issue_number": 99, "body": "?"}),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "provider_error", "{error}");
    let error = synced
        .connector
        .execute_action(
            synced.cx(),
            "add_issue_comment",
            &json!({"repository": "../x", "issue_number": 1, "body": "?"}),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "invalid_input");
    assert_eq!(synced.github.requests().len(), 1);
}

//! The conformance kit on the GitHub connector, across a change.

use super::*;

fn connection(github: &GitHub, config: Value) -> ConnectionContext {
    ConnectionContext {
        tenant: TenantId::generate(),
        connection: switchyard_core::ConnectionId::generate(),
        config,
        base_url: Some(github.url().to_owned()),
        auth_mode: None,
    }
}

fn every_webhook(kit: Conformance<'_>) -> Conformance<'_> {
    let event =
        |name: &str| WebhookSample::new(name, json!({"installation": {"id": INSTALLATION}}));
    kit.webhook(event("ping").acknowledged_only())
        .webhook(event("member.added").syncs(["outside_collaborators"]))
        .webhook(event("membership.removed").syncs(["team_members"]))
        .webhook(event("organization.member_added").syncs([
            "members",
            "members_2fa_disabled",
            "outside_collaborators",
        ]))
        .webhook(event("team.created").syncs(["teams", "team_members"]))
        .webhook(event("repository.privatized").syncs([
            "repositories",
            "repository_settings",
            "branch_protection",
        ]))
        .webhook(event("branch_protection_rule.edited").syncs(["branch_protection"]))
        .webhook(event("issues.opened"))
}

#[tokio::test]
async fn the_github_connector_conforms_across_a_change() {
    let github = stand_in(token_options()).await;
    github.open_issue("repo-001", "Existing issue");
    let connector = connector();
    let calls = provider_client(BearerToken(TOKEN.into()));
    let connection = connection(&github, org_config());
    let cx = CallContext {
        calls: &calls,
        connection: &connection,
    };
    let kit = conformance(&connector, cx, expected(&github));
    let changed = github.clone();
    let kit = every_webhook(kit)
        .between_reads(move || change(&changed))
        .action(ActionSample::new(
            "create_issue",
            json!({"repository": "repo-002", "title": "Rotate the deploy key", "body": "Found by an audit.", "labels": ["security"]}),
        ))
        .action(ActionSample::new(
            "add_issue_comment",
            json!({"repository": "repo-001", "issue_number": 1, "body": "Done."}),
        ))
        .action(ActionSample::new("create_issue", json!({"repository": "repo-002"})).failing_with("invalid_input"))
        .action(
            ActionSample::new("create_issue", json!({"repository": "no/such", "title": "x"}))
                .failing_with("invalid_input"),
        );
    let report = kit
        .run()
        .await
        .unwrap_or_else(|failure| panic!("{failure}"));
    let check = report.check.unwrap();
    assert_eq!(check.permissions_verified, ["read:org", "repo"]);
    assert!(check.permissions_missing.is_empty());
    assert_eq!(
        report.streams["members"].records, 130,
        "one joined, one left"
    );
    assert!(
        report.streams["members"].incremental.not_modified < report.streams["members"].full.pages,
        "the member list changed, so not every page can be a 304"
    );
    assert_eq!(
        report.streams["teams"].incremental.not_modified, report.streams["teams"].full.pages,
        "the team list did not change: every page is a 304"
    );
}

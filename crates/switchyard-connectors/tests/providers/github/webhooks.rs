//! GitHub's webhook payloads and the streams they sync.

use super::*;

#[tokio::test]
async fn githubs_webhook_payloads_trigger_the_matching_streams() {
    let synced = with_token(stand_in(token_options()).await).await;
    let github = &synced.github;
    let cases = [
        (Event::Ping, None, vec![]),
        (
            Event::Organization {
                action: "member_added".into(),
                login: "member-0002".into(),
            },
            Some("organization.member_added"),
            vec!["members", "members_2fa_disabled", "outside_collaborators"],
        ),
        (
            Event::Membership {
                action: "added".into(),
                team_slug: "team-01".into(),
                login: "member-0002".into(),
            },
            Some("membership.added"),
            vec!["team_members"],
        ),
        (
            Event::Member {
                action: "added".into(),
                login: "collaborator-01".into(),
                repository: "repo-001".into(),
            },
            Some("member.added"),
            vec!["outside_collaborators"],
        ),
        (
            Event::Repository {
                action: "archived".into(),
                name: "repo-002".into(),
            },
            Some("repository.archived"),
            vec!["repositories", "repository_settings", "branch_protection"],
        ),
        (
            Event::BranchProtectionRule {
                action: "deleted".into(),
                repository: "repo-001".into(),
            },
            Some("branch_protection_rule.deleted"),
            vec!["branch_protection"],
        ),
        (
            Event::Team {
                action: "created".into(),
                slug: "team-01".into(),
            },
            Some("team.created"),
            vec!["teams", "team_members"],
        ),
    ];
    for (event, expected_type, streams) in cases {
        let delivery = github.delivery(Some(INSTALLATION), &event);
        let body = delivery.json();
        assert_eq!(body["installation"]["id"], INSTALLATION);
        // The type as the gateway builds it: X-GitHub-Event, then `.action` when there is one.
        let event_type = match body["action"].as_str() {
            Some(action) => format!("{}.{action}", delivery.event),
            None => delivery.event.to_owned(),
        };
        if let Some(expected_type) = expected_type {
            assert_eq!(event_type, expected_type);
        }
        let outcome = synced
            .connector
            .handle_webhook(
                synced.cx(),
                &WebhookEvent {
                    event_type: Some(event_type.clone()),
                    headers: Vec::new(),
                    body,
                },
            )
            .await
            .unwrap();
        let mut asked = outcome.sync.clone();
        asked.sort();
        let mut wanted: Vec<String> = streams.iter().map(|s| (*s).to_owned()).collect();
        wanted.sort();
        assert_eq!(asked, wanted, "{event_type}");
        assert_eq!(
            outcome.acknowledged_only,
            event == Event::Ping,
            "{event_type}"
        );
    }
}

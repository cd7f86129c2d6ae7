//! Syncs into the record store: what a first and a second read store, ETags, pagination.

use super::*;

#[tokio::test]
async fn a_first_sync_equals_the_organization_and_a_second_sees_exactly_the_change() {
    let synced = with_token(stand_in(token_options()).await).await;
    for stream in STREAMS {
        let counts = synced.sync(stream).await;
        assert_eq!(
            counts.not_modified, 0,
            "{stream}: nothing to be unchanged against"
        );
    }
    synced.assert_in_sync("first sync").await;
    let members = synced.stored("members").await;
    assert_eq!(members.len(), 130);
    assert_eq!(synced.stored("members_2fa_disabled").await.len(), 32);
    assert_eq!(
        synced.stored("branch_protection").await.len(),
        3,
        "repo-001, -003, -005"
    );

    change(&synced.github);
    let mut counts = BTreeMap::new();
    for stream in STREAMS {
        counts.insert(stream, synced.sync(stream).await);
    }
    synced.assert_in_sync("after the change").await;
    let members = &counts["members"];
    assert_eq!((members.added, members.deleted, members.updated), (1, 1, 0));
    let two_factor = &counts["members_2fa_disabled"];
    assert_eq!(
        (two_factor.added, two_factor.deleted),
        (0, 1),
        "member-0008 turned 2FA on"
    );
    assert_eq!(counts["team_members"].added, 1);
    assert_eq!(
        counts["team_members"].deleted, 1,
        "member-0007 left team-04"
    );
    let protection = &counts["branch_protection"];
    assert_eq!((protection.added, protection.deleted), (1, 1));
    assert_eq!(
        counts["teams"].not_modified, counts["teams"].pages,
        "teams did not change"
    );
    let collaborators = &counts["outside_collaborators"];
    assert_eq!((collaborators.pages, collaborators.not_modified), (1, 1));
}

#[tokio::test]
async fn an_unchanged_organization_answers_304s_that_cost_no_rate_limit() {
    let synced = with_token(
        stand_in(GitHubOptions {
            rate_limit: Some(RateLimit::default()),
            ..token_options()
        })
        .await,
    )
    .await;
    for stream in STREAMS {
        synced.sync(stream).await;
    }
    let used_before = rate_used(&synced.github).await;
    synced.github.clear_requests();
    for stream in STREAMS {
        let counts = synced.sync(stream).await;
        assert_eq!((counts.added, counts.updated, counts.deleted), (0, 0, 0));
        if stream == "branch_protection" {
            // Three default branches are unprotected: GitHub's 404 carries no ETag.
            assert_eq!((counts.pages, counts.not_modified), (6, 3));
        } else {
            assert_eq!(
                counts.pages, counts.not_modified,
                "{stream}: every page a 304"
            );
        }
    }
    let requests = synced.github.requests();
    let not_protected = requests.iter().filter(|r| r.status == 404).count();
    assert_eq!(not_protected, 3);
    // A partitioned stream revalidates its parent when its read starts: teams once (team
    // members), repositories twice (settings, protection), each a 304 too.
    let parents: Vec<&str> = requests
        .iter()
        .filter(|r| r.path == "/orgs/acme/teams" || r.path == "/orgs/acme/repos")
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(
        parents,
        [
            "/orgs/acme/teams",
            "/orgs/acme/teams",
            "/orgs/acme/repos",
            "/orgs/acme/repos",
            "/orgs/acme/repos"
        ],
        "teams, team members' parent, repositories, two partitioned streams' parent"
    );
    for request in requests.iter().filter(|r| r.status != 404) {
        assert!(
            request.headers.contains_key("if-none-match"),
            "{} {} without If-None-Match",
            request.method,
            request.path
        );
        assert_eq!(request.status, 304, "{} {}", request.method, request.path);
    }
    // Only the 404s and the probe itself counted since.
    assert_eq!(rate_used(&synced.github).await, used_before + 3 + 1);
}

#[tokio::test]
async fn partition_parents_are_revalidated_with_304s_that_leave_the_rate_budget_alone() {
    let synced = with_token(
        stand_in(GitHubOptions {
            rate_limit: Some(RateLimit::default()),
            ..token_options()
        })
        .await,
    )
    .await;
    let parents = |github: &GitHub| -> Vec<(String, bool, u16)> {
        github
            .requests()
            .into_iter()
            .filter(|r| r.path == "/orgs/acme/teams" || r.path == "/orgs/acme/repos")
            .map(|r| (r.path, r.headers.contains_key("if-none-match"), r.status))
            .collect()
    };
    synced.sync("team_members").await;
    synced.sync("branch_protection").await;
    assert_eq!(
        parents(&synced.github),
        [
            ("/orgs/acme/teams".into(), false, 200),
            ("/orgs/acme/repos".into(), false, 200)
        ]
    );

    synced.github.clear_requests();
    let remaining_before = rate_remaining(&synced.github).await;
    let team_members = synced.sync("team_members").await;
    let protection = synced.sync("branch_protection").await;
    assert_eq!(
        parents(&synced.github),
        [
            ("/orgs/acme/teams".into(), true, 304),
            ("/orgs/acme/repos".into(), true, 304)
        ]
    );
    // Every team's members are asked as before, each page a 304 of its own.
    assert!(team_members.pages >= 4, "{team_members:?}");
    assert_eq!(
        (
            team_members.not_modified,
            team_members.added,
            team_members.deleted
        ),
        (team_members.pages, 0, 0),
        "{team_members:?}"
    );
    assert_eq!((protection.pages, protection.not_modified), (6, 3));
    // Spent since: the three unprotected branches' 404s and this probe, not the parents.
    assert_eq!(
        rate_remaining(&synced.github).await,
        remaining_before - 3 - 1
    );
    synced
        .assert_in_sync_streams(&["team_members", "branch_protection"])
        .await;

    // A new team is read: its list page changed, so it is listed again with its members.
    synced.github.change(|org| {
        org.add_team("team-new");
        org.add_team_member("team-new", "member-0003");
    });
    synced.github.clear_requests();
    let counts = synced.sync("team_members").await;
    assert_eq!(
        parents(&synced.github),
        [("/orgs/acme/teams".into(), true, 200)]
    );
    assert_eq!(counts.added, 1, "{counts:?}");
    synced.assert_in_sync_streams(&["team_members"]).await;
}

/// `x-ratelimit-remaining` as a plain request sees it.
async fn rate_remaining(github: &GitHub) -> u64 {
    let response = reqwest::Client::new()
        .get(format!("{}/orgs/{ORG}", github.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.headers()["x-ratelimit-remaining"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// `x-ratelimit-used` as a plain request sees it.
async fn rate_used(github: &GitHub) -> u64 {
    let response = reqwest::Client::new()
        .get(format!("{}/orgs/{ORG}", github.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-ratelimit-resource"], "core");
    response.headers()["x-ratelimit-used"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn lists_ask_100_a_page_with_the_api_version_and_follow_githubs_links() {
    let synced = with_token(stand_in(token_options()).await).await;
    synced.sync("members").await;
    let requests = synced.github.requests();
    let pages: Vec<_> = requests
        .iter()
        .filter(|r| r.path.ends_with("/members"))
        .collect();
    assert_eq!(pages.len(), 2, "130 members are two pages of 100");
    assert_eq!(pages[0].path, format!("/orgs/{ORG}/members"));
    assert_eq!(pages[0].query.as_deref(), Some("per_page=100"));
    // GitHub's next link names the organization by id.
    assert_eq!(pages[1].path, "/organizations/9000001/members");
    assert_eq!(pages[1].query.as_deref(), Some("per_page=100&page=2"));
    for request in &requests {
        assert_eq!(request.headers["x-github-api-version"], "2022-11-28");
        assert_eq!(request.headers["authorization"], "Bearer");
    }

    synced.github.clear_requests();
    synced.sync("members_2fa_disabled").await;
    let requests = synced.github.requests();
    assert_eq!(
        requests[0].query.as_deref(),
        Some("filter=2fa_disabled&per_page=100")
    );
}

#[tokio::test]
async fn unprotected_default_branches_have_no_record_and_partitions_name_their_parent() {
    let synced = with_token(stand_in(token_options()).await).await;
    synced.sync("branch_protection").await;
    synced.sync("team_members").await;
    let protection = synced.stored("branch_protection").await;
    assert_eq!(
        protection.keys().collect::<Vec<_>>(),
        ["repo-001", "repo-003", "repo-005"]
    );
    assert!(
        protection["repo-003"]["url"]
            .as_str()
            .unwrap()
            .ends_with("/repos/acme/repo-003/branches/trunk/protection")
    );
    let answered: Vec<u16> = synced
        .github
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/protection"))
        .map(|r| r.status)
        .collect();
    assert_eq!(
        answered,
        [404, 200, 404, 200, 404, 200],
        "newest repository first"
    );
    // member-0001 is in every team: one record per membership.
    let memberships = synced.stored("team_members").await;
    let first = memberships.keys().filter(|k| k.ends_with("/1001")).count();
    assert_eq!(first, 4);
}

#[tokio::test]
async fn a_private_repository_shows_its_settings() {
    let synced = with_token(stand_in(token_options()).await).await;
    synced.github.change(|org| {
        let repository = org.add_repository("secrets", Visibility::Private);
        repository.secret_scanning = true;
        repository.secret_scanning_push_protection = true;
        repository.delete_branch_on_merge = true;
    });
    synced.sync("repositories").await;
    synced.sync("repository_settings").await;
    let settings = synced.stored("repository_settings").await;
    let secrets = settings.values().find(|r| r["name"] == "secrets").unwrap();
    assert_eq!(secrets["visibility"], "private");
    assert_eq!(secrets["delete_branch_on_merge"], true);
    assert_eq!(
        secrets["security_and_analysis"]["secret_scanning_push_protection"]["status"],
        "enabled"
    );
}

#[tokio::test]
async fn enterprise_server_is_reached_through_the_connections_base_url() {
    let github = stand_in(GitHubOptions {
        enterprise_server: true,
        ..token_options()
    })
    .await;
    assert!(github.url().ends_with("/api/v3"));
    let synced = with_token(github).await;
    let report = synced.connector.test_connection(synced.cx()).await.unwrap();
    assert!(report.success, "{report:?}");
    for stream in ["members", "team_members", "branch_protection"] {
        synced.sync(stream).await;
    }
    synced
        .assert_in_sync_streams(&["members", "team_members", "branch_protection"])
        .await;
    // The second page came from the link under /api/v3 (the log shows paths inside it).
    let pages: Vec<_> = synced
        .github
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/members") && r.path.starts_with("/organizations/"))
        .collect();
    assert_eq!(pages.len(), 1);
}

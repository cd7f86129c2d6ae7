//! The built-in `github` connector through the server, against the GitHub stand-in: the
//! catalogue, a connection with a personal token and one as a GitHub App, the check's
//! permissions, syncs and their unified records (`mfa_enabled` from the 2FA-disabled list),
//! an action with its `ticket`, webhooks signed by `@octokit/webhooks-methods`, and no
//! credential in any answer.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_test_support::providers::github::{
    AppKey, Event, GitHub, GitHubApp, GitHubOptions, Seed,
};
use switchyard_test_support::{TestApp, TestBackend, backend_tests, required_test_server};

use super::support::{
    Seen, create_connection, create_source, names, record_pages, spawn_app, stream_runs, sync,
    tenant_key, test_connection, webhook_run,
};

const TOKEN: &str = "ghp_EndToEndToken000000000000000000000000";
const APP_ID: u64 = 424_242;
const INSTALLATION: u64 = 77;
const WEBHOOK_SECRET: &str = "github-webhook-secret-e2e";

/// The server allowed to call the stand-in on 127.0.0.1, and a GitHub stand-in that takes
/// both the personal token and the App's installation tokens.
struct GitHubFixture {
    app: TestApp,
    github: GitHub,
    key: AppKey,
}

impl switchyard_test_support::BackendFixture for GitHubFixture {
    async fn start(backend: TestBackend) -> Option<Self> {
        let app = spawn_app(backend).await?;
        let key = AppKey::generate();
        let github = GitHub::start(GitHubOptions {
            token: Some(TOKEN.into()),
            app: Some(GitHubApp::new(APP_ID, INSTALLATION, &key)),
            rate_limit: None,
            ..Default::default()
        })
        .await
        .unwrap();
        github.seed(Seed::default());
        Some(Self { app, github, key })
    }
}

/// A connection to the stand-in's organization with the personal token.
fn token_connection(fx: &GitHubFixture) -> Value {
    json!({
        "provider": "github",
        "name": "Acme on GitHub",
        "config": {"organization": "acme", "installation_id": INSTALLATION.to_string()},
        "credentials": {"token": TOKEN},
        "auth_mode": "bearer",
        "base_url": fx.github.url(),
    })
}

async fn connect(fx: &GitHubFixture, key: &str, body: Value, seen: &mut Seen) -> String {
    let connection = seen.keep(
        "create connection",
        &create_connection(&fx.app, key, &body).await,
    );
    connection["id"].as_str().unwrap().to_owned()
}

backend_tests! { GitHubFixture;
    async fn a_token_connection_syncs_maps_acts_and_never_shows_its_token(fx) {
        let app = &fx.app;
        let mut seen = Seen::default();
        let key = tenant_key(app).await;

        let providers = seen.keep("providers", &app.get("/v1/providers", &key).await.json());
        let github = providers.as_array().unwrap().iter().find(|p| p["id"] == "github").expect("github is built in").clone();
        assert_eq!(names(&github, "auth_modes", "type"), ["bearer", "jwt_bearer"]);
        assert_eq!(names(&github, "streams", "name"), ["members", "members_2fa_disabled", "outside_collaborators", "teams", "team_members", "repositories", "repository_settings", "branch_protection"]);

        let id = connect(&fx, &key, token_connection(&fx), &mut seen).await;

        let test = seen.keep("test", &test_connection(app, &key, &id).await);
        assert_eq!(test["success"], true, "{test}");
        assert_eq!(test["permissions_verified"], json!(["read:org", "repo"]));
        assert_eq!(test["permissions_missing"], json!([]));

        // The 2FA list first: members' mfa_enabled is read from it.
        seen.keep("run", &sync(app, &key, &id, "members_2fa_disabled").await);
        let run = seen.keep("run", &sync(app, &key, &id, "members").await);
        assert_eq!(run["counters"]["records_added"], 130, "{run}");
        assert_eq!(run["counters"]["pages"], 2, "{run}");
        let identities = seen.keep_pages(record_pages(app, &key, &id, "members", "identity").await);
        assert_eq!(identities.len(), 130);
        let member = |login: &str| identities.iter().find(|c| c["record"]["name"] == login).unwrap_or_else(|| panic!("{login}"))["record"].clone();
        let first = member("member-0001");
        assert_eq!(first["status"], "active");
        assert_eq!(first["source"], "github");
        assert_eq!(first["mfa_enabled"], true);
        assert_eq!(member("member-0004")["mfa_enabled"], false, "in the 2FA-disabled list");
        assert!(identities.iter().all(|c| c["mapping_error"].is_null()));

        seen.keep("run", &sync(app, &key, &id, "teams").await);
        let groups = seen.keep_pages(record_pages(app, &key, &id, "teams", "group").await);
        assert_eq!(groups.len(), 4);
        assert_eq!(groups[0]["record"]["name"], "Team 01");
        assert_eq!(groups[0]["record"]["description"], "The Team 01 team");

        seen.keep("run", &sync(app, &key, &id, "team_members").await);
        let memberships = seen.keep_pages(record_pages(app, &key, &id, "team_members", "").await);
        assert_eq!(memberships.len(), 130 + 3, "member-0001 is in all four teams");
        assert!(memberships.iter().all(|c| c["record"]["team_slug"].as_str().is_some_and(|s| s.starts_with("team-"))));

        seen.keep("run", &sync(app, &key, &id, "repositories").await);
        let repositories = seen.keep_pages(record_pages(app, &key, &id, "repositories", "repository").await);
        assert_eq!(repositories.len(), 6);
        let third = repositories.iter().find(|c| c["record"]["name"] == "repo-003").unwrap()["record"].clone();
        assert_eq!(third["full_name"], "acme/repo-003");
        assert_eq!(third["default_branch"], "trunk");
        assert_eq!(third["visibility"], "internal");
        assert_eq!(third["private"], true);
        assert_eq!(third["url"], "https://github.com/acme/repo-003");

        seen.keep("run", &sync(app, &key, &id, "branch_protection").await);
        let protection = seen.keep_pages(record_pages(app, &key, &id, "branch_protection", "").await);
        let keys: Vec<&str> = protection.iter().map(|c| c["primary_key"].as_str().unwrap()).collect();
        assert_eq!(keys.len(), 3);
        assert!(keys.contains(&"repo-003"), "{keys:?}");

        // An action through the API: GitHub's issue, and the created issue as a ticket.
        let action = app
            .post(&format!("/v1/connections/{id}/actions/create_issue"), &key, &json!({"input": {"repository": "repo-001", "title": "Require 2FA", "body": "32 members lack it."}}))
            .await;
        assert_eq!(action.status, 200, "{}", action.text());
        let action = seen.keep("action", &action.json());
        assert_eq!(action["output"]["number"], 1);
        assert_eq!(action["unified"]["system"], "github");
        assert_eq!(action["unified"]["title"], "Require 2FA");
        assert_eq!(action["unified"]["url"], "https://github.com/acme/repo-001/issues/1");
        assert_eq!(fx.github.issues("repo-001")[0]["body"], "32 members lack it.");

        let comment = app
            .post(&format!("/v1/connections/{id}/actions/add_issue_comment"), &key, &json!({"input": {"repository": "repo-001", "issue_number": 1, "body": "Tracked."}}))
            .await;
        assert_eq!(comment.status, 200, "{}", comment.text());
        seen.keep("comment", &comment.json());
        assert_eq!(fx.github.comments("repo-001", 1).len(), 1);

        seen.keep("connection", &app.get(&format!("/v1/connections/{id}"), &key).await.json());
        seen.assert_no_leaks(&[("personal access token", TOKEN)]);
    }
}

backend_tests! { GitHubFixture;
    async fn a_github_app_connection_mints_installation_tokens_and_keeps_its_key(fx) {
        let app = &fx.app;
        let mut seen = Seen::default();
        let key = tenant_key(app).await;
        let private_key = fx.key.private_key_pem();
        let id = connect(&fx, &key, json!({
            "provider": "github",
            "name": "Acme via the App",
            "config": {"organization": "acme", "app_id": APP_ID.to_string(), "installation_id": INSTALLATION.to_string()},
            "credentials": {"private_key": private_key},
            "auth_mode": "jwt_bearer",
            "base_url": fx.github.url(),
        }), &mut seen).await;
        let test = seen.keep("test", &test_connection(app, &key, &id).await);
        assert_eq!(test["success"], true, "{test}");
        // The installation's permissions, as its token's answer listed them.
        assert_eq!(
            (&test["permissions_verified"], &test["permissions_missing"]),
            (&json!(["members:read", "metadata:read", "administration:read", "issues:write"]), &json!([])),
            "{test}"
        );
        let run = seen.keep("run", &sync(app, &key, &id, "repositories").await);
        assert_eq!(run["counters"]["records_added"], 6, "{run}");
        seen.keep("run", &sync(app, &key, &id, "repository_settings").await);
        assert_eq!(seen.keep_pages(record_pages(app, &key, &id, "repository_settings", "").await).len(), 6);
        assert_eq!(fx.github.installation_tokens_issued(), 1, "one token for the check and both syncs");
        let jwt = &fx.github.accepted_jwts()[0];
        assert_eq!(jwt.iss, APP_ID.to_string());

        let action = app
            .post(&format!("/v1/connections/{id}/actions/create_issue"), &key, &json!({"input": {"repository": "repo-002", "title": "From the App"}}))
            .await;
        assert_eq!(action.status, 200, "{}", action.text());
        let action = seen.keep("action", &action.json());
        assert_eq!(action["output"]["user"]["login"], "switchyard[bot]");
        seen.keep("connection", &app.get(&format!("/v1/connections/{id}"), &key).await.json());
        // Neither the key nor any part of its PEM body comes back.
        let body_line = private_key.lines().nth(5).unwrap().to_owned();
        seen.assert_no_leaks(&[("App private key", &private_key), ("a line of the key", &body_line)]);
    }
}

/// `X-Hub-Signature-256` computed by GitHub's own library, npm `@octokit/webhooks-methods`.
fn octokit_sign(node_modules: &str, secret: &str, body: &[u8]) -> String {
    let dir = std::path::Path::new(node_modules).parent().unwrap();
    let output = Command::new("node")
        .current_dir(dir)
        .args([
            "--input-type=module",
            "--eval",
            "import { sign } from '@octokit/webhooks-methods';\nconsole.log(await sign(process.argv[1], process.argv[2]));",
            "--",
            secret,
            std::str::from_utf8(body).unwrap(),
        ])
        .output()
        .expect("run node");
    assert!(
        output.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let signature = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(signature.starts_with("sha256="), "{signature}");
    signature
}

backend_tests! { GitHubFixture;
    async fn webhooks_signed_by_octokit_trigger_the_matching_streams(fx) {
        let Some(node_modules) = required_test_server("SWITCHYARD_TEST_PEERS_NODE_MODULES") else {
            return;
        };
        let app = &fx.app;
        let mut seen = Seen::default();
        let key = tenant_key(app).await;
        let id = connect(&fx, &key, token_connection(&fx), &mut seen).await;
        let source = create_source(app, &key, "github", "github", WEBHOOK_SECRET, &id).await;
        let ingest = source["ingest_url"].as_str().unwrap().to_owned();
        let deliver = |installation: u64, event: Event| {
            let delivery = fx.github.delivery(Some(installation), &event);
            let signed = delivery.with_signature(&octokit_sign(&node_modules, WEBHOOK_SECRET, &delivery.body));
            let ingest = ingest.clone();
            async move {
                let answer = signed.request(&reqwest::Client::new(), &ingest).send().await.unwrap();
                assert!(answer.status().is_success(), "{}", answer.status());
            }
        };

        // Another installation's event is not this connection's; a ping does nothing.
        deliver(INSTALLATION + 1, Event::Repository { action: "created".into(), name: "repo-001".into() }).await;
        deliver(INSTALLATION, Event::Ping).await;
        // This one asks for the protection stream only.
        fx.github.change(|org| {
            org.repository_mut("repo-002").unwrap().protections.insert("main".into(), Default::default());
        });
        deliver(INSTALLATION, Event::BranchProtectionRule { action: "created".into(), repository: "repo-002".into() }).await;

        let run = webhook_run(app, &key, &id, "branch_protection").await;
        assert_eq!(run["status"], "succeeded", "{run}");
        let runs = stream_runs(app, &key, &id, "branch_protection").await;
        assert_eq!(runs.len(), 1, "{runs:?}");
        let protection = seen.keep_pages(record_pages(app, &key, &id, "branch_protection", "").await);
        assert!(protection.iter().any(|c| c["primary_key"] == "repo-002"));
        // The other installation's `repository` event and the ping started nothing.
        tokio::time::sleep(Duration::from_millis(300)).await;
        for stream in ["repositories", "repository_settings"] {
            assert!(stream_runs(app, &key, &id, stream).await.is_empty(), "{stream}");
        }
        seen.assert_no_leaks(&[("personal access token", TOKEN), ("webhook secret", WEBHOOK_SECRET)]);
    }
}

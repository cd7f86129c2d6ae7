//! Both auth modes and the check: a personal token, a GitHub App whose key the test makes.

use super::*;

#[tokio::test]
async fn the_check_reports_a_classic_tokens_scopes() {
    let github = stand_in(GitHubOptions {
        scopes: vec!["read:org".into(), "admin:repo_hook".into()],
        ..token_options()
    })
    .await;
    let synced = with_token(github).await;
    let report = synced.connector.test_connection(synced.cx()).await.unwrap();
    assert!(report.success, "{report:?}");
    assert_eq!(report.permissions_verified, ["read:org"]);
    assert_eq!(report.permissions_missing, ["repo"]);
}

#[tokio::test]
async fn a_wrong_token_is_auth_failed_everywhere() {
    let github = stand_in(token_options()).await;
    let synced = Synced::start(github, org_config(), |_| BearerToken("ghp_wrong".into())).await;
    let report = synced.connector.test_connection(synced.cx()).await.unwrap();
    assert!(!report.success);
    assert_eq!(report.error_code.as_deref(), Some("auth_failed"));
    let error = synced
        .connector
        .collect(synced.cx(), "members", None)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "auth_failed", "{error}");
    assert!(!error.to_string().contains("ghp_wrong"));
    let error = synced
        .connector
        .execute_action(
            synced.cx(),
            "create_issue",
            &json!({"repository": "repo-001", "title": "x"}),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "auth_failed", "{error}");
    assert!(synced.github.issues("repo-001").is_empty());
}

#[tokio::test]
async fn a_github_app_signs_a_jwt_exchanges_it_once_and_syncs_with_the_installation_token() {
    let key = AppKey::generate();
    let synced = with_app(&key, key.private_key_pem()).await;
    let report = synced.connector.test_connection(synced.cx()).await.unwrap();
    assert!(report.success, "{report:?}");
    // The installation's permissions came with its token.
    assert_eq!(
        report.permissions_verified,
        [
            "members:read",
            "metadata:read",
            "administration:read",
            "issues:write"
        ]
    );
    assert!(report.permissions_missing.is_empty(), "{report:?}");
    for stream in STREAMS {
        synced.sync(stream).await;
    }
    synced.assert_in_sync("app sync").await;
    assert_eq!(
        synced.github.installation_tokens_issued(),
        1,
        "the installation token is cached for its hour"
    );
    let jwts = synced.github.accepted_jwts();
    let jwt = &jwts[0];
    assert_eq!(jwt.iss, APP_ID.to_string());
    assert!(jwt.exp - jwt.iat <= 600, "GitHub takes at most ten minutes");
    assert!(
        jwt.iat <= jwt.received_at - 30,
        "iat is backdated against clock drift"
    );
    let exchange = synced
        .github
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/access_tokens"))
        .unwrap();
    assert_eq!(exchange.method, "POST");
    assert_eq!(
        exchange.path,
        format!("/app/installations/{INSTALLATION}/access_tokens")
    );
    assert_eq!(exchange.headers["x-github-api-version"], "2022-11-28");

    // The bot opens the issue.
    let output = synced
        .connector
        .execute_action(
            synced.cx(),
            "create_issue",
            &json!({"repository": "repo-001", "title": "From the App"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(output["user"]["login"], "switchyard[bot]");
}

#[tokio::test]
async fn an_installation_without_a_permission_the_streams_need_reports_it_missing() {
    let key = AppKey::generate();
    let mut app = GitHubApp::new(APP_ID, INSTALLATION, &key);
    // Members may be written (which includes reading); no Administration; Issues read only.
    app.permissions = json!({"members": "write", "metadata": "read", "issues": "read"});
    let synced = with_installation(app, key.private_key_pem()).await;
    let report = synced.connector.test_connection(synced.cx()).await.unwrap();
    assert!(report.success, "{report:?}");
    assert_eq!(
        report.permissions_verified,
        ["members:read", "metadata:read"]
    );
    assert_eq!(
        report.permissions_missing,
        ["administration:read", "issues:write"]
    );
    // One exchange: the check's call minted the token whose grants it reports.
    assert_eq!(synced.github.installation_tokens_issued(), 1);
}

#[tokio::test]
async fn a_pkcs8_app_key_works_too_and_a_foreign_key_is_auth_failed() {
    let key = AppKey::generate();
    let synced = with_app(&key, key.private_key_pkcs8_pem()).await;
    assert!(
        synced
            .connector
            .test_connection(synced.cx())
            .await
            .unwrap()
            .success
    );

    let other = AppKey::generate();
    let synced = with_app(&key, other.private_key_pem()).await;
    let report = synced.connector.test_connection(synced.cx()).await.unwrap();
    assert!(!report.success);
    // The exchange is refused before any API call: reported as the credential's failure.
    assert_eq!(
        report.error_code.as_deref(),
        Some("auth_failed"),
        "{report:?}"
    );
    let message = report.error_message.clone().unwrap_or_default();
    assert!(
        message.contains("A JSON web token could not be decoded"),
        "{message}"
    );
    assert!(!message.contains("PRIVATE KEY"));
    assert_eq!(synced.github.installation_tokens_issued(), 0);
}

#[test]
fn the_config_form_wants_an_organization_and_an_apps_installation() {
    let connector = connector();
    assert!(
        connector
            .validate_config(&json!({"organization": "acme"}))
            .is_ok()
    );
    assert!(
        connector
            .validate_config(
                &json!({"organization": "acme", "app_id": "12", "installation_id": "34"})
            )
            .is_ok()
    );
    for bad in [
        json!({}),
        json!({"organization": "acme", "app_id": "12"}),
        json!({"organization": "acme/other"}),
        json!({"organization": "acme", "installation_id": "34; rm"}),
    ] {
        let error = connector.validate_config(&bad).unwrap_err();
        assert_eq!(error.code(), "invalid_config", "{bad}");
    }
}

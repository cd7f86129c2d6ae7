//! Jira Cloud end to end: the built-in connector listed, connections to the Jira stand-in
//! made through the API (an API token, and OAuth 2.0 through the gateway), their tests,
//! syncs and their unified records, an action, and an admin webhook signed with Python's
//! standard `hmac` triggering the issues sync; no secret in any answer.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use switchyard_test_support::providers::jira::{JiraOptions, JiraStandIn, JiraWebhook, Seed};
use switchyard_test_support::{LeakScanner, TestApp, backend_tests, required_test_server};

use super::support::{
    create_connection, create_source, names, records, spawn_app, sync, tenant_key, test_connection,
    webhook_run,
};

pub struct JiraApp {
    app: TestApp,
    standin: JiraStandIn,
    leaks: LeakScanner,
    webhook_secret: String,
}

impl switchyard_test_support::BackendFixture for JiraApp {
    async fn start(backend: switchyard_test_support::TestBackend) -> Option<Self> {
        let app = spawn_app(backend).await?;
        let mut leaks = LeakScanner::new();
        let standin = JiraStandIn::start(JiraOptions {
            api_token: leaks.canary("jira-api-token"),
            access_token: leaks.canary("jira-access-token"),
            ..JiraOptions::default()
        })
        .await
        .unwrap();
        standin.seed(Seed {
            users: 30,
            projects: 4,
            issues: 120,
        });
        let webhook_secret = leaks.canary("jira-webhook-secret");
        Some(Self {
            app,
            standin,
            leaks,
            webhook_secret,
        })
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `body`, computed by Python's standard library.
fn python_signature(python: &str, secret: &str, body: &[u8]) -> String {
    let script = "import hashlib, hmac, sys\n\
                  print('sha256=' + hmac.new(sys.argv[1].encode(), sys.stdin.buffer.read(), hashlib.sha256).hexdigest(), end='')";
    let mut child = Command::new(python)
        .args(["-c", script, secret])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

backend_tests! { JiraApp;
    async fn a_jira_site_connects_syncs_acts_and_takes_webhooks(fx) {
        let Some(python) = required_test_server("SWITCHYARD_TEST_PEERS_PYTHON") else { return };
        let JiraApp { app, standin, mut leaks, webhook_secret } = fx;
        let key = tenant_key(&app).await;
        let mut answers = Vec::new();

        let providers = app.get("/v1/providers", &key).await;
        let jira = providers.json().as_array().unwrap().iter().find(|p| p["id"] == "jira").cloned().expect("jira is built in");
        assert_eq!(names(&jira, "streams", "name"), ["projects", "issues", "users"]);

        let created = create_connection(&app, &key, &json!({
                    "provider": "jira",
                    "name": "Acme Jira",
                    "config": {"site": "acme"},
                    "auth_mode": "basic",
                    "credentials": {"username": standin.options().email, "password": standin.options().api_token},
                    "base_url": standin.url(),
                })).await;
        answers.push(created.to_string());
        let id = created["id"].as_str().unwrap().to_owned();

        let test = test_connection(&app, &key, &id).await;
        answers.push(test.to_string());
        assert_eq!(test["success"], true, "{test}");
        // Jira does not report granted scopes: nothing verified, nothing missing.
        assert_eq!((&test["permissions_verified"], &test["permissions_missing"]), (&json!([]), &json!([])));

        for stream in ["projects", "issues", "users"] {
            answers.push(sync(&app, &key, &id, stream).await.to_string());
        }
        let tickets = records(&app, &key, &id, "issues", "ticket").await;
        assert_eq!(tickets.len(), 120);
        assert!(tickets.iter().all(|c| c["mapping_error"].is_null()), "{:?}", tickets[0]);
        let first = standin.issues()[0].clone();
        let ticket = tickets.iter().find(|c| c["primary_key"] == first.id.as_str()).unwrap();
        assert_eq!(
            ticket["record"],
            json!({
                "id": first.id, "title": first.summary, "system": "jira", "externalId": first.key,
                // The browse page on the connection's site, not the REST link.
                "url": format!("https://acme.atlassian.net/browse/{}", first.key),
                "type": first.issue_type, "status": first.status, "priority": null,
                "created_at": "2023-12-31T23:58:00Z", "updated_at": "2023-12-31T23:58:00Z",
                "source": "jira"
            })
        );
        let identities = records(&app, &key, &id, "users", "identity").await;
        assert_eq!(identities.len(), standin.users().len());
        let inactive = identities.iter().find(|c| c["primary_key"] == "5f0c00000000000000000007").unwrap();
        assert_eq!(inactive["record"]["status"], "deprovisioned");
        assert_eq!(records(&app, &key, &id, "projects", "").await.len(), 4);

        let action = app
            .post(
                &format!("/v1/connections/{id}/actions/create_issue"),
                &key,
                &json!({"input": {"project_key": "PRJ1", "issue_type": "Bug", "summary": "Disk full", "description": "db-1"}}),
            )
            .await;
        assert_eq!(action.status, 200, "{}", action.text());
        answers.push(action.text());
        let new_key = action.json()["output"]["key"].as_str().unwrap().to_owned();
        assert_eq!(standin.issue(&new_key).unwrap().summary, "Disk full");
        // Jira's answer is `{id, key, self}`: the ticket takes its title and type from the input,
        // its url from the connection's site, and has no status, which the answer does not say.
        let output = action.json()["output"].clone();
        let created_ticket = action.json()["unified"].clone();
        assert_eq!(action.json()["mapping_error"], Value::Null, "{}", action.text());
        assert_eq!(
            created_ticket,
            json!({
                "id": output["id"], "title": "Disk full", "system": "jira", "externalId": new_key,
                "url": format!("https://acme.atlassian.net/browse/{new_key}"), "type": "Bug",
                "source": "jira"
            })
        );

        // An admin webhook for the new issue, signed by Python's hmac, syncs `issues`.
        let source = create_source(&app, &key, "jira", "jira", &webhook_secret, &id).await;
        answers.push(source.to_string());
        let ingest = source["ingest_url"].as_str().unwrap().to_owned();
        let issue = standin.issue(&new_key).unwrap();
        let delivery: JiraWebhook = standin.issue_webhook(9001, "jira:issue_created", &issue);
        let signature = python_signature(&python, &webhook_secret, &delivery.body);
        let post = |signature: String| {
            delivery
                .headers
                .iter()
                .fold(reqwest::Client::new().post(&ingest), |request, (name, value)| request.header(name, value))
                .header("x-hub-signature", signature)
                .body(delivery.body.clone())
                .send()
        };
        assert_eq!(post("sha256=00".into()).await.unwrap().status(), 401, "a wrong signature is refused");
        let answer = post(signature).await.unwrap();
        assert!(answer.status().is_success(), "{}", answer.status());
        let run = webhook_run(&app, &key, &id, "issues").await;
        assert_eq!(run["status"], "succeeded", "the webhook's issues sync: {run}");
        let tickets = records(&app, &key, &id, "issues", "ticket").await;
        let stored = tickets.iter().find(|c| c["record"]["externalId"] == new_key.as_str()).expect("the new issue synced");
        // The synced ticket agrees with the action's on every field the action maps.
        for (field, value) in created_ticket.as_object().unwrap() {
            assert_eq!(&stored["record"][field], value, "{field}");
        }

        // The same site over OAuth 2.0 (3LO): the gateway path and the cloud id.
        let oauth = create_connection(&app, &key, &json!({
                    "provider": "jira",
                    "name": "Acme Jira (OAuth)",
                    "config": {"cloud_id": standin.options().cloud_id},
                    "auth_mode": "oauth2",
                    "credentials": {"access_token": standin.options().access_token},
                    "base_url": standin.oauth_url(),
                })).await;
        answers.push(oauth.to_string());
        let oauth_id = oauth["id"].as_str().unwrap().to_owned();
        let test = app.post(&format!("/v1/connections/{oauth_id}/test"), &key, &json!({})).await;
        answers.push(test.text());
        assert_eq!(test.json()["success"], true, "{}", test.text());
        answers.push(sync(&app, &key, &oauth_id, "projects").await.to_string());
        let projects = records(&app, &key, &oauth_id, "projects", "").await;
        assert!(projects.iter().all(|c| c["record"]["self"].as_str().unwrap().starts_with(&standin.oauth_url())));

        answers.push(app.get(&format!("/v1/connections/{id}"), &key).await.text());
        answers.push(app.get(&format!("/v1/connections/{oauth_id}"), &key).await.text());
        for (n, answer) in answers.into_iter().enumerate() {
            leaks.add(format!("answer {n}"), answer);
        }
        leaks.assert_no_leaks();
    }
}

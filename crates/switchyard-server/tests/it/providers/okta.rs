//! The built-in `okta` connector through the server, against the Okta stand-in: the
//! catalogue, a connection with an API token and one as an OAuth service app, the check,
//! syncs and their unified records (`mfa_enabled` from the factors stream), an action, event
//! hooks (verification challenge, authentication header) that trigger the matching syncs,
//! and no credential in any answer.
//!
//! Okta signs nothing and ships no webhook library: a delivery is proven by the secret in
//! the hook's authentication header, which the gateway's `okta` scheme checks.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_test_support::providers::okta::{
    OktaOptions, OktaStandIn, ServiceApp, ServiceAppKey, UserStatus,
};
use switchyard_test_support::{LeakScanner, TestApp, TestBackend, backend_tests};

const API_TOKEN: &str = "00e2e-okta-api-token-aaaaaaaaaaaaaaaaaaaaaa";
const CLIENT_ID: &str = "0oae2eserviceapp00x0g4";
const HOOK_SECRET: &str = "okta-event-hook-secret-e2e";
/// One page of users keeps the runs short; paging is covered by the engine-level tests.
const USERS: u64 = 120;
const GROUPS: u64 = 3;

struct OktaFixture {
    app: TestApp,
    okta: OktaStandIn,
    key: ServiceAppKey,
}

impl switchyard_test_support::BackendFixture for OktaFixture {
    async fn start(backend: TestBackend) -> Option<Self> {
        let app = TestApp::spawn_with(backend, |figment| {
            figment
                .merge(("outbound.allow_http", true))
                .merge(("outbound.allow_cidrs", vec!["127.0.0.1/32"]))
        })
        .await?;
        let key = ServiceAppKey::generate();
        let okta = OktaStandIn::start(OktaOptions {
            api_token: Some(API_TOKEN.into()),
            service_apps: vec![ServiceApp {
                client_id: CLIENT_ID.into(),
                public_key_pem: key.public_key_pem.clone(),
                key_id: None,
                granted_scopes: [
                    "okta.users.read",
                    "okta.groups.read",
                    "okta.apps.read",
                    "okta.logs.read",
                    "okta.users.manage",
                    "okta.groups.manage",
                ]
                .map(str::to_owned)
                .to_vec(),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
        okta.seed(USERS, GROUPS);
        Some(Self { app, okta, key })
    }
}

/// Every response body the test saw, for the leak scan.
#[derive(Default)]
struct Seen(Vec<(String, String)>);

impl Seen {
    fn keep(&mut self, place: &str, body: &Value) -> Value {
        self.0.push((place.to_owned(), body.to_string()));
        body.clone()
    }
}

async fn finished_run(app: &TestApp, key: &str, run: &str) -> Value {
    for _ in 0..600 {
        let response = app.get(&format!("/v1/runs/{run}"), key).await;
        assert_eq!(response.status, 200, "{}", response.text());
        let body = response.json();
        if ["succeeded", "failed", "cancelled"]
            .contains(&body["status"].as_str().unwrap_or_default())
        {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("run {run} did not finish");
}

async fn sync(app: &TestApp, key: &str, connection: &str, stream: &str, seen: &mut Seen) -> Value {
    let started = app
        .post(
            &format!("/v1/connections/{connection}/syncs/{stream}/run"),
            key,
            &json!({}),
        )
        .await;
    assert_eq!(started.status, 202, "{}", started.text());
    let run = finished_run(app, key, started.json()["run_id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{stream}: {run}");
    seen.keep("run", &run)
}

/// Every record of a stream (in `model`'s form unless empty), following `next_cursor`.
async fn records(
    app: &TestApp,
    key: &str,
    connection: &str,
    stream: &str,
    model: &str,
    seen: &mut Seen,
) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/connections/{connection}/records/{stream}?limit=100");
        if !model.is_empty() {
            path.push_str(&format!("&model={model}"));
        }
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = app.get(&path, key).await;
        assert_eq!(page.status, 200, "{}", page.text());
        let body = seen.keep("records", &page.json());
        all.extend(body["data"].as_array().unwrap().iter().cloned());
        cursor = Some(body["next_cursor"].as_str().unwrap().to_owned());
        if body["has_more"] == false {
            return all;
        }
    }
}

/// The runs of a connection's stream.
async fn stream_runs(app: &TestApp, key: &str, connection: &str, stream: &str) -> Vec<Value> {
    let runs = app
        .get(
            &format!("/v1/runs?subject=connection:{connection}:{stream}"),
            key,
        )
        .await;
    assert_eq!(runs.status, 200, "{}", runs.text());
    runs.json()["data"].as_array().unwrap().clone()
}

/// Waits for a webhook-triggered run of `stream` to succeed.
async fn webhook_run(app: &TestApp, key: &str, connection: &str, stream: &str) -> Value {
    for _ in 0..400 {
        let runs = stream_runs(app, key, connection, stream).await;
        if let Some(run) = runs
            .iter()
            .find(|r| r["trigger"] == "webhook" && r["status"] == "succeeded")
        {
            return run.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no webhook-triggered sync of {stream} succeeded");
}

fn user_number(identity: &Value) -> u64 {
    // Seeded users are `user{n}@example.test`.
    identity["email"]
        .as_str()
        .and_then(|email| email.strip_prefix("user"))
        .and_then(|rest| rest.split('@').next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}

backend_tests! { OktaFixture;
    async fn okta_connects_syncs_acts_and_takes_event_hooks(fx) {
        let app = &fx.app;
        let mut seen = Seen::default();
        let tenant = app.create_tenant("Acme").await;
        let (_, key) = app.create_api_key(&tenant, "write").await;

        // The catalogue lists the built-in connector with both auth modes.
        let providers = app.get("/v1/providers", &key).await;
        assert_eq!(providers.status, 200, "{}", providers.text());
        let okta = providers
            .json()
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == "okta")
            .cloned()
            .expect("okta is built in");
        let modes: Vec<&str> = okta["auth_modes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["type"].as_str().unwrap())
            .collect();
        assert_eq!(modes, ["api_key", "oauth2"]);

        let created = app
            .post(
                "/v1/connections",
                &key,
                &json!({
                    "provider": "okta",
                    "name": "Acme Okta",
                    "config": {"domain": "acme.okta.com"},
                    "credentials": {"api_key": API_TOKEN},
                    "auth_mode": "api_key",
                    "base_url": fx.okta.url(),
                }),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text());
        let id = seen.keep("create", &created.json())["id"].as_str().unwrap().to_owned();

        let test = app
            .post(&format!("/v1/connections/{id}/test"), &key, &json!({}))
            .await;
        assert_eq!(test.status, 200, "{}", test.text());
        let report = seen.keep("test", &test.json());
        assert_eq!(report["success"], true, "{report}");
        // Okta reports no granted scopes on its answers.
        assert_eq!(report["permissions_missing"], json!([]), "{report}");

        // Factors first: `mfa_enabled` reads the factors stream's stored records.
        sync(app, &key, &id, "user_factors", &mut seen).await;
        let run = sync(app, &key, &id, "users", &mut seen).await;
        assert_eq!(run["counters"]["records_added"], USERS, "{run}");
        let identities = records(app, &key, &id, "users", "identity", &mut seen).await;
        assert_eq!(identities.len() as u64, USERS);
        for change in &identities {
            let identity = &change["record"];
            let n = user_number(identity);
            assert_eq!(identity["source"], "okta");
            assert_eq!(identity["mfa_enabled"], json!(!n.is_multiple_of(4)), "user {n}: {identity}");
            let status = if n.is_multiple_of(10) { "suspended" } else { "active" };
            assert_eq!(identity["status"], status, "user {n}");
        }
        sync(app, &key, &id, "groups", &mut seen).await;
        let groups = records(app, &key, &id, "groups", "group", &mut seen).await;
        assert_eq!(groups.len() as u64, GROUPS);
        assert_eq!(groups[0]["record"]["name"], "Group 1");

        // An action through the API: suspend an active user.
        let target = fx
            .okta
            .users_json()
            .into_iter()
            .find(|u| u["status"] == "ACTIVE")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let acted = app
            .post(
                &format!("/v1/connections/{id}/actions/suspend_user"),
                &key,
                &json!({"input": {"user_id": target}}),
            )
            .await;
        assert_eq!(acted.status, 200, "{}", acted.text());
        seen.keep("action", &acted.json());
        assert_eq!(fx.okta.user(&target).unwrap().status, UserStatus::Suspended);

        // An event hook source for the connection: Okta's one-time verification, then the
        // suspension's event, which syncs `users`.
        let source = app
            .post(
                "/v1/sources",
                &key,
                &json!({"name": "okta hooks", "scheme": "okta", "secret": HOOK_SECRET, "connection_id": id}),
            )
            .await;
        assert_eq!(source.status, 201, "{}", source.text());
        let ingest = seen.keep("source", &source.json())["ingest_url"].as_str().unwrap().to_owned();
        let http = reqwest::Client::new();
        let challenge = http
            .get(&ingest)
            .header("authorization", HOOK_SECRET)
            .header("x-okta-verification-challenge", "verify-me-e2e")
            .send()
            .await
            .unwrap();
        assert_eq!(challenge.status(), 200);
        let answer: Value = challenge.json().await.unwrap();
        assert_eq!(answer, json!({"verification": "verify-me-e2e"}));

        let suspension = fx
            .okta
            .log_events()
            .into_iter()
            .rev()
            .find(|e| e.event_type == "user.lifecycle.suspend")
            .unwrap();
        let delivery = fx.okta.event_hook(&[suspension]);
        // Without the secret the gateway refuses the delivery.
        let refused = http
            .post(&ingest)
            .header("content-type", "application/json")
            .body(delivery.bytes())
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401);
        let accepted = http
            .post(&ingest)
            .header("content-type", "application/json")
            .header("authorization", HOOK_SECRET)
            .body(delivery.bytes())
            .send()
            .await
            .unwrap();
        assert!(accepted.status().is_success(), "{}", accepted.status());
        let run = webhook_run(app, &key, &id, "users").await;
        assert!(run["counters"]["records_updated"].as_u64().unwrap() >= 1, "{run}");
        let suspended = records(app, &key, &id, "users", "identity", &mut seen)
            .await
            .into_iter()
            .rev()
            .find(|c| c["record"]["id"] == target.as_str())
            .unwrap();
        assert_eq!(suspended["record"]["status"], "suspended");

        // A membership event syncs `group_members`.
        let (group, member) = fx.okta.members_json().remove(0);
        let member = member["id"].as_str().unwrap().to_owned();
        let removed = app
            .post(
                &format!("/v1/connections/{id}/actions/remove_group_member"),
                &key,
                &json!({"input": {"group_id": group, "user_id": member}}),
            )
            .await;
        assert_eq!(removed.status, 200, "{}", removed.text());
        let event = fx
            .okta
            .log_events()
            .into_iter()
            .rev()
            .find(|e| e.event_type == "group.user_membership.remove")
            .unwrap();
        let delivery = fx.okta.event_hook(&[event]);
        let accepted = http
            .post(&ingest)
            .header("content-type", "application/json")
            .header("authorization", HOOK_SECRET)
            .body(delivery.bytes())
            .send()
            .await
            .unwrap();
        assert!(accepted.status().is_success(), "{}", accepted.status());
        webhook_run(app, &key, &id, "group_members").await;
        assert!(stream_runs(app, &key, &id, "user_factors").await.iter().all(|r| r["trigger"] != "webhook"));

        // The connection as the API shows it.
        let shown = app.get(&format!("/v1/connections/{id}"), &key).await;
        seen.keep("get connection", &shown.json());

        let mut scanner = LeakScanner::new();
        scanner.watch("okta api token", API_TOKEN);
        for (place, body) in &seen.0 {
            scanner.add(place.clone(), body.clone().into_bytes());
        }
        scanner.assert_no_leaks();
    }

    async fn an_okta_service_app_connects_with_a_private_key(fx) {
        let app = &fx.app;
        let mut seen = Seen::default();
        let tenant = app.create_tenant("Acme").await;
        let (_, key) = app.create_api_key(&tenant, "write").await;
        let created = app
            .post(
                "/v1/connections",
                &key,
                &json!({
                    "provider": "okta",
                    "name": "Acme Okta (service app)",
                    "config": {"domain": "acme.okta.com"},
                    "credentials": {"client_id": CLIENT_ID, "private_key": fx.key.private_key_pem},
                    "auth_mode": "oauth2",
                    "base_url": fx.okta.url(),
                }),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text());
        let id = seen.keep("create", &created.json())["id"].as_str().unwrap().to_owned();
        let test = app
            .post(&format!("/v1/connections/{id}/test"), &key, &json!({}))
            .await;
        assert_eq!(test.status, 200, "{}", test.text());
        let report = seen.keep("test", &test.json());
        assert_eq!(report["success"], true, "{report}");
        sync(app, &key, &id, "applications", &mut seen).await;
        let apps = records(app, &key, &id, "applications", "", &mut seen).await;
        assert_eq!(apps.len(), 3);
        assert!(fx.okta.token_grants() >= 1);
        assert!(
            fx.okta
                .requests()
                .iter()
                .filter(|r| r.path.starts_with("/api/"))
                .all(|r| r.headers.get("authorization").map(String::as_str) == Some("Bearer"))
        );

        let mut scanner = LeakScanner::new();
        scanner.watch("service app private key", &fx.key.private_key_pem);
        for (place, body) in &seen.0 {
            scanner.add(place.clone(), body.clone().into_bytes());
        }
        scanner.assert_no_leaks();
    }
}

//! The built-in `okta` connector through the server, against the Okta stand-in: the
//! catalogue, a connection with an API token and one as an OAuth service app, the check,
//! syncs and their unified records (`mfa_enabled` from the factors stream), an action, event
//! hooks (verification challenge, authentication header) that trigger the matching syncs,
//! and no credential in any answer.
//!
//! Okta signs nothing and ships no webhook library: a delivery is proven by the secret in
//! the hook's authentication header, which the gateway's `okta` scheme checks.

use serde_json::{Value, json};
use switchyard_test_support::providers::okta::{
    EventHookDelivery, OktaOptions, OktaStandIn, ServiceApp, ServiceAppKey, UserStatus,
};
use switchyard_test_support::{TestApp, TestBackend, backend_tests};

use super::support::{
    Seen, create_connection, create_source, names, record_pages, spawn_app, stream_runs, sync,
    tenant_key, test_connection, webhook_run,
};

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
        let app = spawn_app(backend).await?;
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

/// An event hook delivery of the org's newest `event_type` event.
fn newest_event_hook(okta: &OktaStandIn, event_type: &str) -> EventHookDelivery {
    let event = okta
        .log_events()
        .into_iter()
        .rev()
        .find(|e| e.event_type == event_type)
        .unwrap_or_else(|| panic!("no {event_type} event"));
    okta.event_hook(&[event])
}

/// Posts `delivery` to the ingest URL as Okta does, with the hook's `authorization` header
/// when given; the gateway's status.
async fn post_hook(
    ingest: &str,
    delivery: &EventHookDelivery,
    authorization: Option<&str>,
) -> reqwest::StatusCode {
    let mut request = reqwest::Client::new()
        .post(ingest)
        .header("content-type", "application/json");
    if let Some(secret) = authorization {
        request = request.header("authorization", secret);
    }
    request
        .body(delivery.bytes())
        .send()
        .await
        .unwrap()
        .status()
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
        let key = tenant_key(app).await;

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
        assert_eq!(names(&okta, "auth_modes", "type"), ["api_key", "oauth2"]);

        let created = create_connection(app, &key, &json!({
                    "provider": "okta",
                    "name": "Acme Okta",
                    "config": {"domain": "acme.okta.com"},
                    "credentials": {"api_key": API_TOKEN},
                    "auth_mode": "api_key",
                    "base_url": fx.okta.url(),
                })).await;
        let id = seen.keep("create", &created)["id"].as_str().unwrap().to_owned();

        let report = seen.keep("test", &test_connection(app, &key, &id).await);
        assert_eq!(report["success"], true, "{report}");
        // Okta reports no granted scopes on its answers.
        assert_eq!(report["permissions_missing"], json!([]), "{report}");

        // Factors first: `mfa_enabled` reads the factors stream's stored records.
        seen.keep("run", &sync(app, &key, &id, "user_factors").await);
        let run = seen.keep("run", &sync(app, &key, &id, "users").await);
        assert_eq!(run["counters"]["records_added"], USERS, "{run}");
        let identities = seen.keep_pages(record_pages(app, &key, &id, "users", "identity").await);
        assert_eq!(identities.len() as u64, USERS);
        for change in &identities {
            let identity = &change["record"];
            let n = user_number(identity);
            assert_eq!(identity["source"], "okta");
            assert_eq!(identity["mfa_enabled"], json!(!n.is_multiple_of(4)), "user {n}: {identity}");
            let status = if n.is_multiple_of(10) { "suspended" } else { "active" };
            assert_eq!(identity["status"], status, "user {n}");
        }
        seen.keep("run", &sync(app, &key, &id, "groups").await);
        let groups = seen.keep_pages(record_pages(app, &key, &id, "groups", "group").await);
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
        let source = create_source(app, &key, "okta hooks", "okta", HOOK_SECRET, &id).await;
        let ingest = seen.keep("source", &source)["ingest_url"].as_str().unwrap().to_owned();
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

        let delivery = newest_event_hook(&fx.okta, "user.lifecycle.suspend");
        // Without the secret the gateway refuses the delivery.
        assert_eq!(post_hook(&ingest, &delivery, None).await, 401);
        let accepted = post_hook(&ingest, &delivery, Some(HOOK_SECRET)).await;
        assert!(accepted.is_success(), "{accepted}");
        let run = webhook_run(app, &key, &id, "users").await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert!(run["counters"]["records_updated"].as_u64().unwrap() >= 1, "{run}");
        let suspended = seen.keep_pages(record_pages(app, &key, &id, "users", "identity").await)
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
        let delivery = newest_event_hook(&fx.okta, "group.user_membership.remove");
        let accepted = post_hook(&ingest, &delivery, Some(HOOK_SECRET)).await;
        assert!(accepted.is_success(), "{accepted}");
        let run = webhook_run(app, &key, &id, "group_members").await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert!(stream_runs(app, &key, &id, "user_factors").await.iter().all(|r| r["trigger"] != "webhook"));

        // The connection as the API shows it.
        let shown = app.get(&format!("/v1/connections/{id}"), &key).await;
        seen.keep("get connection", &shown.json());

        seen.assert_no_leaks(&[("okta api token", API_TOKEN)]);
    }

    async fn an_okta_service_app_connects_with_a_private_key(fx) {
        let app = &fx.app;
        let mut seen = Seen::default();
        let key = tenant_key(app).await;
        let created = create_connection(app, &key, &json!({
                    "provider": "okta",
                    "name": "Acme Okta (service app)",
                    "config": {"domain": "acme.okta.com"},
                    "credentials": {"client_id": CLIENT_ID, "private_key": fx.key.private_key_pem},
                    "auth_mode": "oauth2",
                    "base_url": fx.okta.url(),
                })).await;
        let id = seen.keep("create", &created)["id"].as_str().unwrap().to_owned();
        let report = seen.keep("test", &test_connection(app, &key, &id).await);
        assert_eq!(report["success"], true, "{report}");
        // What the token answer granted, against the six scopes the streams and actions need.
        assert_eq!(report["permissions_verified"].as_array().map(Vec::len), Some(6), "{report}");
        assert_eq!(report["permissions_missing"], json!([]), "{report}");
        seen.keep("run", &sync(app, &key, &id, "applications").await);
        let apps = seen.keep_pages(record_pages(app, &key, &id, "applications", "").await);
        assert_eq!(apps.len(), 3);
        assert!(fx.okta.token_grants() >= 1);
        assert!(
            fx.okta
                .requests()
                .iter()
                .filter(|r| r.path.starts_with("/api/"))
                .all(|r| r.headers.get("authorization").map(String::as_str) == Some("Bearer"))
        );

        seen.assert_no_leaks(&[("service app private key", &fx.key.private_key_pem)]);
    }
}

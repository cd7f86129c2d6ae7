//! Unified `related` fields through the records route, and an action's unified output, with
//! the `standin-related` test manifest: `users` maps `mfa_enabled` (an `accounts` record with
//! the user's id as a member and status `active`) and `admin` (an `accounts` record whose
//! primary key is the user's id) from the same connection's `accounts` stream.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use switchyard_test_support::standin::{ItemStatus, StandIn};
use switchyard_test_support::{TestApp, backend_tests};

use crate::providers::support::{
    finished_run, seeded_standin, spawn_app_with_manifests, sync, tenant_key,
};

const TOKEN: &str = "standin-related-token";
const USERS: u64 = 120;

pub struct RelatedApp {
    app: TestApp,
    standin: StandIn,
    /// A second provider account, with fewer people, for the other connections.
    other: StandIn,
}

impl switchyard_test_support::BackendFixture for RelatedApp {
    async fn start(backend: switchyard_test_support::TestBackend) -> Option<Self> {
        let app = spawn_app_with_manifests(backend, "related").await?;
        let standin = seeded_standin(TOKEN, USERS).await;
        let other = seeded_standin(TOKEN, 20).await;
        Some(Self {
            app,
            standin,
            other,
        })
    }
}

impl RelatedApp {
    async fn connect(&self, key: &str, name: &str, standin: &StandIn) -> String {
        let created = self
            .app
            .post(
                "/v1/connections",
                key,
                &json!({
                    "provider": "standin-related",
                    "name": name,
                    "config": {"base_url": standin.url()},
                    "credentials": {"token": TOKEN},
                }),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text());
        created.json()["id"].as_str().unwrap().to_owned()
    }

    async fn sync(&self, key: &str, connection: &str, stream: &str) {
        sync(&self.app, key, connection, stream).await;
    }

    /// Every user's unified record by id (its latest change), read in pages of 50.
    async fn identities(&self, key: &str, connection: &str) -> BTreeMap<String, Value> {
        let mut identities = BTreeMap::new();
        let mut cursor = String::new();
        loop {
            let page = self
                .app
                .get(
                    &format!(
                        "/v1/connections/{connection}/records/users?model=identity&limit=50{cursor}"
                    ),
                    key,
                )
                .await;
            assert_eq!(page.status, 200, "{}", page.text());
            let body = page.json();
            for change in body["data"].as_array().unwrap() {
                assert!(change["mapping_error"].is_null(), "{change}");
                let record = change["record"].clone();
                identities.insert(record["id"].as_str().unwrap().to_owned(), record);
            }
            cursor = format!("&cursor={}", body["next_cursor"].as_str().unwrap());
            if body["has_more"] == false {
                return identities;
            }
        }
    }
}

/// `(mfa_enabled, admin)` of each user.
fn flags(identities: BTreeMap<String, Value>) -> BTreeMap<String, (Value, Value)> {
    identities
        .into_iter()
        .map(|(id, record)| {
            let flags = (record["mfa_enabled"].clone(), record["admin"].clone());
            (id, flags)
        })
        .collect()
}

fn user(number: u64) -> String {
    format!("u{number:05}")
}

backend_tests! { RelatedApp;
    async fn related_fields_read_the_same_connections_other_stream(fx) {
        let app = &fx.app;
        let key = tenant_key(app).await;
        let id = fx.connect(&key, "main", &fx.standin).await;

        // `accounts` has never been synced: the related fields are null, not guessed.
        fx.sync(&key, &id, "users").await;
        let before = fx.identities(&key, &id).await;
        assert_eq!(before.len(), USERS as usize);
        assert!(
            before.values().all(|r| r["mfa_enabled"].is_null() && r["admin"].is_null()),
            "{before:?}"
        );
        assert_eq!(before[&user(1)]["name"], "User 1");

        // Once it has: every user has an account; every tenth is suspended.
        fx.sync(&key, &id, "accounts").await;
        let synced = fx.identities(&key, &id).await;
        for (id, (mfa, admin)) in flags(synced) {
            let number: u64 = id[1..].parse().unwrap();
            assert_eq!(admin, json!(true), "{id}");
            assert_eq!(mfa, json!(!number.is_multiple_of(10)), "{id}");
        }

        // The provider suspends u00002 and removes u00003; only `accounts` syncs again, so
        // the users' own records are unchanged and their related fields follow `accounts`.
        let mut second = fx.standin.get(&user(2)).unwrap();
        second.status = ItemStatus::Suspended;
        fx.standin.upsert(second);
        fx.standin.delete(&user(3)).unwrap();
        fx.sync(&key, &id, "accounts").await;
        let after = flags(fx.identities(&key, &id).await);
        assert_eq!(after[&user(1)], (json!(true), json!(true)));
        assert_eq!(after[&user(2)], (json!(false), json!(true)));
        // A deleted account does not count.
        assert_eq!(after[&user(3)], (json!(false), json!(false)));
        assert_eq!(after[&user(4)], (json!(true), json!(true)));

        // A sibling connection of the same tenant, and another tenant's connection, to another
        // account where u00003 still exists and u00004 is suspended: neither counts here.
        let mut fourth = fx.other.get(&user(4)).unwrap();
        fourth.status = ItemStatus::Suspended;
        fx.other.upsert(fourth);
        let sibling = fx.connect(&key, "sibling", &fx.other).await;
        let other_tenant = app.create_tenant("Globex").await;
        let (_, other_key) = app.create_api_key(&other_tenant, "write").await;
        let foreign = fx.connect(&other_key, "main", &fx.other).await;
        for (key, connection) in [(&key, &sibling), (&other_key, &foreign)] {
            fx.sync(key, connection, "users").await;
            // Its own `accounts` has not synced, whatever another connection's has.
            let own = flags(fx.identities(key, connection).await);
            assert_eq!(own.len(), 20);
            assert!(own.values().all(|(mfa, admin)| mfa.is_null() && admin.is_null()), "{own:?}");
            fx.sync(key, connection, "accounts").await;
            let own = flags(fx.identities(key, connection).await);
            assert_eq!(own[&user(3)], (json!(true), json!(true)));
            assert_eq!(own[&user(4)], (json!(false), json!(true)));
        }
        let unchanged = flags(fx.identities(&key, &id).await);
        assert_eq!(unchanged, after);
    }

    async fn actions_answer_their_output_in_its_unified_form(fx) {
        let app = &fx.app;
        let key = tenant_key(app).await;
        let id = fx.connect(&key, "main", &fx.standin).await;

        let created = app
            .post(
                &format!("/v1/connections/{id}/actions/create_user"),
                &key,
                &json!({"input": {"name": "Ada", "email": "ada@example.test"}}),
            )
            .await;
        assert_eq!(created.status, 200, "{}", created.text());
        let body = created.json();
        let output = &body["output"];
        assert_eq!(output["name"], "Ada");
        let new_id = output["id"].as_str().unwrap();
        assert!(fx.standin.get(new_id).is_some());
        assert_eq!(
            body["unified"],
            json!({
                "id": new_id,
                "email": "ada@example.test",
                "name": "Ada",
                "status": "active",
                "source": "standin-related",
            })
        );
        assert!(body["mapping_error"].is_null(), "{body}");

        // An output that does not map: the action has run all the same, and says why.
        let mismapped = app
            .post(
                &format!("/v1/connections/{id}/actions/create_user_mismapped"),
                &key,
                &json!({"input": {"name": "Grace", "email": "grace@example.test"}}),
            )
            .await;
        assert_eq!(mismapped.status, 200, "{}", mismapped.text());
        let body = mismapped.json();
        assert_eq!(body["output"]["name"], "Grace");
        assert!(body["unified"].is_null(), "{body}");
        let error = body["mapping_error"].as_str().unwrap();
        assert!(error.contains("/email"), "{error}");
        assert!(!error.contains("Grace"), "no record value in errors: {error}");
        let run = finished_run(app, &key, body["run_id"].as_str().unwrap()).await;
        assert_eq!(run["status"], "succeeded");
    }
}

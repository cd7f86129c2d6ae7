//! Manifest error rules end to end: a provider that fails with HTTP 200 and a body
//! (Slack's `{"ok": false, "error": …}`) fails the check, an action and a sync with the
//! rule's typed error, through the API's problem envelope and the run's failure class.

use serde_json::json;
use switchyard_test_support::standin::{Failure, StandIn};
use switchyard_test_support::{TestApp, backend_tests};

use crate::providers::support::{
    finished_run, seeded_standin, spawn_app_with_manifests, tenant_key,
};

const TOKEN: &str = "standin-rules-token";

pub struct RulesApp {
    app: TestApp,
    standin: StandIn,
}

impl switchyard_test_support::BackendFixture for RulesApp {
    async fn start(backend: switchyard_test_support::TestBackend) -> Option<Self> {
        let app = spawn_app_with_manifests(backend, "vocabulary").await?;
        let standin = seeded_standin(TOKEN, 10).await;
        Some(Self { app, standin })
    }
}

fn slack_error(path: &str, body: serde_json::Value) -> Failure {
    Failure::new(path, 200).json_body(body)
}

backend_tests! { RulesApp;
    async fn a_2xx_refusal_is_typed_in_checks_actions_and_runs(fx) {
        let app = &fx.app;
        let key = tenant_key(app).await;
        let created = app
            .post(
                "/v1/connections",
                &key,
                &json!({
                    "provider": "standin-vocabulary",
                    "name": "rules",
                    "config": {"base_url": fx.standin.url()},
                    "credentials": {"token": TOKEN},
                }),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text());
        let id = created.json()["id"].as_str().unwrap().to_owned();

        fx.standin.inject(slack_error("/me", json!({"ok": false, "error": "invalid_auth"})));
        let report = app.post(&format!("/v1/connections/{id}/test"), &key, &json!({})).await.json();
        assert_eq!(report["success"], false, "{report}");
        assert_eq!(report["error_code"], "auth_failed", "{report}");

        fx.standin.inject(slack_error(
            "/items",
            json!({"ok": false, "error": "missing_scope", "needed": "items:write"}),
        ));
        let problem = app
            .post(
                &format!("/v1/connections/{id}/actions/create_user"),
                &key,
                &json!({"input": {"name": "Ada", "email": "ada@example.test"}}),
            )
            .await
            .assert_problem(502, "provider_error");
        // A 5xx problem carries no detail; the rule's typed error is its `reason`.
        assert_eq!(problem["reason"], "permission_denied", "{problem}");
        assert_eq!(fx.standin.items().len(), 10, "nothing was created");

        fx.standin.inject(slack_error("/cursor/items", json!({"ok": false, "error": "invalid_auth"})));
        let started = app.post(&format!("/v1/connections/{id}/syncs/channels/run"), &key, &json!({})).await;
        assert_eq!(started.status, 202, "{}", started.text());
        let run = finished_run(app, &key, started.json()["run_id"].as_str().unwrap()).await;
        assert_eq!(run["status"], "failed", "{run}");
        assert_eq!(run["error"]["class"], "auth", "{run}");
    }
}

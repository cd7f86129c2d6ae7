//! `"async": true` actions end to end against the stand-in provider: `202` with the run to
//! poll, the output on the run, failures as the synchronous call reports them and never sent
//! twice, bad input refused before any run, `Idempotency-Key` replays, and tenant isolation.

use serde_json::{Value, json};
use switchyard_test_support::backend_tests;
use switchyard_test_support::standin::LoggedRequest;

use crate::connections::ConnectorApp;
use crate::providers::support::{finished_run, tenant_key};

const ACTION: &str = "create_user";

fn action_path(connection: &str) -> String {
    format!("/v1/connections/{connection}/actions/{ACTION}")
}

/// Posts the action with `body`, and `Idempotency-Key: key` when given.
async fn call(
    fx: &ConnectorApp,
    token: &str,
    path: &str,
    body: &Value,
    key: Option<&str>,
) -> switchyard_test_support::TestResponse {
    let mut request = fx
        .app
        .client
        .post(fx.app.url(path))
        .bearer_auth(token)
        .json(body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    fx.app.send_request(request).await
}

/// Asserts the `202` of a queued action and returns its run id.
fn queued(answer: &switchyard_test_support::TestResponse) -> String {
    assert_eq!(answer.status, 202, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["status"], "queued", "{body}");
    let run = body["run_id"].as_str().unwrap().to_owned();
    assert!(run.starts_with("run_"), "{body}");
    run
}

/// The `POST /items` the stand-in answered.
fn creations(fx: &ConnectorApp) -> Vec<LoggedRequest> {
    fx.standin
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/items")
        .collect()
}

/// The stand-in's stored item, as its `POST /items` answered it.
fn stored_item(fx: &ConnectorApp, output: &Value) -> Value {
    let id = output["id"].as_str().unwrap();
    serde_json::to_value(fx.standin.get(id).unwrap()).unwrap()
}

backend_tests! { ConnectorApp;
    async fn an_async_action_is_a_run_whose_output_is_polled(fx) {
        let app = &fx.app;
        let key = tenant_key(app).await;
        let connection = fx.connect(&key, "standin-link", "Stand-in").await;
        let id = connection["id"].as_str().unwrap();

        // The synchronous answer, to compare the polled one with.
        let now = call(&fx, &key, &action_path(id), &json!({"input": {"name": "Ada", "email": "ada@example.test"}}), None).await;
        assert_eq!(now.status, 200, "{}", now.text());
        let sync_output = now.json()["output"].clone();
        assert_eq!(sync_output, stored_item(&fx, &sync_output));

        fx.standin.clear_requests();
        let answer = call(&fx, &key, &action_path(id), &json!({"input": {"name": "Grace", "email": "grace@example.test"}, "async": true}), None).await;
        let run = queued(&answer);
        assert_eq!(answer.header("location"), Some(format!("/v1/runs/{run}").as_str()));

        // The run exists from the answer on: queued, or already taken up.
        let first = app.get(&format!("/v1/runs/{run}"), &key).await;
        assert_eq!(first.status, 200, "{}", first.text());
        let first = first.json();
        assert!(["queued", "running", "succeeded"].contains(&first["status"].as_str().unwrap()), "{first}");
        assert_eq!(first["kind"], "connector.action");
        assert_eq!(first["subject"], format!("connection:{id}/action:{ACTION}"));
        // (Its status, attempts and result are read one after the other while the worker
        // moves on: a `queued` run may already show a result, so nothing is asserted of it.)

        let done = finished_run(app, &key, &run).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(done["attempts"].as_array().unwrap().len(), 1, "{done}");
        let action = &done["action"];
        assert_eq!(action["output"]["name"], "Grace", "{done}");
        assert_eq!(action["output"], stored_item(&fx, &action["output"]), "the provider's answer, as the synchronous call gives it");
        let keys = |v: &Value| { let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect(); k.sort(); k };
        assert_eq!(keys(&action["output"]), keys(&sync_output));
        assert!(action["unified"].is_null() && action["mapping_error"].is_null(), "{action}");
        assert!(action.get("error").is_none(), "{action}");
        let sent = creations(&fx);
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert!(!sent[0].headers.contains_key("idempotency-key"), "no key was given: {sent:?}");

        // The run list shows it; the list does not carry results.
        let listed = app.get(&format!("/v1/runs?subject=connection:{id}/action:{ACTION}"), &key).await.json();
        let listed = listed["data"].as_array().unwrap();
        assert_eq!(listed.len(), 2, "the synchronous and the asynchronous call: {listed:?}");
        assert!(listed.iter().all(|r| r.get("action").is_none()));
    }

    async fn a_failed_async_action_reports_like_the_synchronous_call_and_is_not_sent_again(fx) {
        let app = &fx.app;
        let key = tenant_key(app).await;
        let connection = fx.connect(&key, "standin-link", "Stand-in").await;
        let id = connection["id"].as_str().unwrap();
        let input = json!({"name": "Ada", "email": "ada@example.test"});

        // What the synchronous call answers for a provider refusing the request.
        fx.standin.fail_next("/items", 422, 1);
        let now = call(&fx, &key, &action_path(id), &json!({"input": input}), None).await;
        let problem = now.json();
        assert!(now.status >= 400, "{problem}");
        let listed = app.get(&format!("/v1/runs?subject=connection:{id}/action:{ACTION}"), &key).await.json();
        let sync_run = finished_run(app, &key, listed["data"][0]["id"].as_str().unwrap()).await;

        fx.standin.clear_requests();
        fx.standin.fail_next("/items", 422, 1);
        let run = queued(&call(&fx, &key, &action_path(id), &json!({"input": input, "async": true}), None).await);
        let done = finished_run(app, &key, &run).await;
        assert_eq!(done["status"], "failed", "{done}");
        assert_eq!(done["error"], sync_run["error"], "the run's error is the synchronous run's");
        let error = &done["action"]["error"];
        assert_eq!(error["code"], problem["code"], "{done} vs {problem}");
        assert_eq!(error["message"], done["error"]["message"]);
        assert!(done["action"].get("output").is_none(), "{done}");

        // A POST without a key that may have reached the provider is not sent again: a 503
        // is retryable, but this action gets one attempt.
        fx.standin.clear_requests();
        fx.standin.fail_next("/items", 503, 10);
        let run = queued(&call(&fx, &key, &action_path(id), &json!({"input": input, "async": true}), None).await);
        let done = finished_run(app, &key, &run).await;
        assert_eq!(done["status"], "failed", "{done}");
        assert_eq!(done["error"]["class"], "provider_unavailable", "{done}");
        assert_eq!(done["action"]["error"]["code"], "provider_error", "{done}");
        // Long enough for a retry's backoff (1 s at most after the first attempt).
        tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
        let later = app.get(&format!("/v1/runs/{run}"), &key).await.json();
        assert_eq!(later["attempts"].as_array().unwrap().len(), 1, "{later}");
        assert_eq!(creations(&fx).len(), 1, "sent once: {:?}", creations(&fx));
        assert!(fx.standin.items().iter().all(|i| i.name != "Ada"), "nothing was created");
    }

    async fn bad_async_input_is_refused_before_any_run(fx) {
        let app = &fx.app;
        let key = tenant_key(app).await;
        let connection = fx.connect(&key, "standin-link", "Stand-in").await;
        let id = connection["id"].as_str().unwrap();
        fx.standin.clear_requests();

        let problem = call(&fx, &key, &action_path(id), &json!({"input": {"name": ""}, "async": true}), None)
            .await
            .assert_problem(400, "validation_failed");
        assert!(problem["detail"].as_str().unwrap().contains("email"), "{problem}");
        // The synchronous call refuses it the same way, also without a run.
        let same = call(&fx, &key, &action_path(id), &json!({"input": {"name": ""}}), None)
            .await
            .assert_problem(400, "validation_failed");
        assert_eq!(same["detail"], problem["detail"]);
        call(&fx, &key, &format!("/v1/connections/{id}/actions/nope"), &json!({"async": true}), None)
            .await
            .assert_problem(404, "not_found");
        call(&fx, &key, &action_path(id), &json!({"input": {}, "async": "yes"}), None)
            .await
            .assert_problem(400, "invalid_body");
        let tenant = app.get("/v1/runs", &key).await.json();
        assert_eq!(tenant["data"], json!([]), "no run for refused calls: {tenant}");
        assert!(fx.standin.requests().is_empty(), "nothing was sent");

        // A read key may not act, asynchronously either.
        let tenant_id = connection["tenant_id"].as_str().unwrap();
        let (_, reader) = app.create_api_key(tenant_id, "read").await;
        call(&fx, &reader, &action_path(id), &json!({"input": {"name": "x", "email": "x@x.x"}, "async": true}), None)
            .await
            .assert_problem(403, "insufficient_role");
    }

    async fn an_idempotency_key_replays_the_queued_run_and_reaches_the_provider(fx) {
        let app = &fx.app;
        let key = tenant_key(app).await;
        let connection = fx.connect(&key, "standin-link", "Stand-in").await;
        let id = connection["id"].as_str().unwrap();
        fx.standin.clear_requests();
        // One 503 first: with the key passed on, the call stack may send it again.
        fx.standin.fail_next("/items", 503, 1);

        let body = json!({"input": {"name": "Keyed", "email": "keyed@example.test"}, "async": true});
        let first = call(&fx, &key, &action_path(id), &body, Some("async-key-1")).await;
        let run = queued(&first);
        let again = call(&fx, &key, &action_path(id), &body, Some("async-key-1")).await;
        assert_eq!(queued(&again), run, "the replay names the same run");
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        let done = finished_run(app, &key, &run).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(done["action"]["output"]["name"], "Keyed");

        // A third replay after the run finished still names it, and starts nothing.
        let third = call(&fx, &key, &action_path(id), &body, Some("async-key-1")).await;
        assert_eq!(queued(&third), run);
        let sent = creations(&fx);
        assert_eq!(sent.len(), 2, "the 503 and its repeat, one job: {sent:?}");
        assert!(sent.iter().all(|r| r.headers.get("idempotency-key").map(String::as_str) == Some("async-key-1")), "{sent:?}");
        assert_eq!(fx.standin.items().iter().filter(|i| i.name == "Keyed").count(), 1);
        let runs = app.get(&format!("/v1/runs?subject=connection:{id}/action:{ACTION}"), &key).await.json();
        assert_eq!(runs["data"].as_array().unwrap().len(), 1, "{runs}");
    }

    async fn a_lost_attempt_of_an_unkeyed_action_fails_its_run_without_another_send(fx) {
        use switchyard_jobs::queue::{self, NewJob};
        use switchyard_jobs::runs::{NewRun, RunStore, RunTrigger};
        use switchyard_store::{Database, DatabaseOptions};

        let app = &fx.app;
        let key = tenant_key(app).await;
        let connection = fx.connect(&key, "standin-link", "Stand-in").await;
        let id = connection["id"].as_str().unwrap();
        let tenant: switchyard_core::TenantId = connection["tenant_id"].as_str().unwrap().parse().unwrap();
        fx.standin.clear_requests();

        // The run and job an accepted unkeyed call makes, due in a moment.
        let database = Database::connect(app.database().url(), &DatabaseOptions::default()).await.unwrap();
        let runs = RunStore::new(&database);
        let run = runs
            .create_run(NewRun {
                tenant: Some(tenant),
                subject: format!("connection:{id}/action:{ACTION}"),
                trigger: RunTrigger::Manual,
                kind: "connector.action".to_owned(),
                payload: json!({"connection_id": id, "action": ACTION}),
                job_id: None,
            })
            .await
            .unwrap();
        let payload = json!({
            "connection_id": id, "action": ACTION, "run_id": run.id.to_string(),
            "input": {"name": "Twice", "email": "twice@example.test"},
            "idempotency_key": null,
        });
        let job = NewJob::new("connector.action", payload)
            .tenant(tenant)
            .max_attempts(1)
            .run_at(time::OffsetDateTime::now_utc() + std::time::Duration::from_secs(2));
        let job = queue::enqueue(&database, job).await.unwrap().id.to_string();
        // As the lease reaper leaves the job of a worker that died mid-call: queued again with
        // that attempt counted, and started on the run.
        runs.start_attempt(Some(tenant), run.id).await.unwrap();
        let sql = "UPDATE jobs SET attempts = 1 WHERE id = $1";
        let updated = match &database {
            Database::Sqlite(pool) => sqlx::query(sql).bind(&job).execute(pool).await.unwrap().rows_affected(),
            Database::Postgres(pool) => sqlx::query(sql).bind(&job).execute(pool).await.unwrap().rows_affected(),
        };
        assert_eq!(updated, 1);

        let done = finished_run(app, &key, &run.id.to_string()).await;
        assert_eq!(done["status"], "failed", "{done}");
        assert_eq!(done["error"]["message"], "attempts exhausted by expired leases", "{done}");
        assert!(done.get("action").is_none(), "the action never ran: {done}");
        let attempts: Vec<&Value> = done["attempts"].as_array().unwrap().iter().collect();
        assert_eq!(attempts.iter().map(|a| a["outcome"].as_str().unwrap()).collect::<Vec<_>>(), ["abandoned", "failed"], "{done}");
        assert!(creations(&fx).is_empty(), "nothing was sent: {:?}", creations(&fx));
    }

    async fn another_tenant_cannot_read_an_action_run(fx) {
        let app = &fx.app;
        let acme = app.create_tenant("Acme").await;
        let (_, acme_key) = app.create_api_key(&acme, "write").await;
        let globex = app.create_tenant("Globex").await;
        let (_, globex_key) = app.create_api_key(&globex, "admin").await;
        let connection = fx.connect(&acme_key, "standin-link", "Stand-in").await;
        let id = connection["id"].as_str().unwrap();

        let run = queued(&call(&fx, &acme_key, &action_path(id), &json!({"input": {"name": "Ada", "email": "ada@example.test"}, "async": true}), None).await);
        let done = finished_run(app, &acme_key, &run).await;
        assert_eq!(done["status"], "succeeded", "{done}");

        app.get(&format!("/v1/runs/{run}"), &globex_key).await.assert_problem(404, "not_found");
        app.get(&format!("/v1/runs/{run}?tenant_id={acme}"), &globex_key).await.assert_problem(404, "not_found");
        let theirs = app.get("/v1/runs", &globex_key).await.json();
        assert_eq!(theirs["data"], json!([]), "{theirs}");
        // Nor start one on Acme's connection.
        call(&fx, &globex_key, &action_path(id), &json!({"input": {"name": "x", "email": "x@x.x"}, "async": true}), None)
            .await
            .assert_problem(404, "not_found");

        // The platform admin acts with `tenant_id`, and the Location names it.
        let admin = &app.admin_token;
        let answer = call(&fx, admin, &format!("{}?tenant_id={acme}", action_path(id)), &json!({"input": {"name": "Root", "email": "root@example.test"}, "async": true}), None).await;
        let run = queued(&answer);
        let location = answer.header("location").unwrap().to_owned();
        assert_eq!(location, format!("/v1/runs/{run}?tenant_id={acme}"));
        let mut polled = json!(null);
        for _ in 0..600 {
            polled = app.get(&location, admin).await.json();
            if polled["status"] == "succeeded" || polled["status"] == "failed" { break; }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(polled["status"], "succeeded", "{polled}");
        assert_eq!(polled["action"]["output"]["name"], "Root");
        app.get(&format!("/v1/runs/{run}"), &globex_key).await.assert_problem(404, "not_found");
    }
}

//! The built-in Slack connector end to end: the catalogue, a connection through the API to
//! the Slack stand-in, its test, syncs and unified records, an action, and Events API
//! deliveries signed by Slack's own library (PyPI `slack_sdk`) that are verified, routed by
//! workspace, deduplicated on redelivery, store the members they carry (emitting events) or
//! trigger the stream's sync. No API answer holds the token.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_test_support::providers::slack::{
    self, BOT_TOKEN, SlackOptions, SlackStandIn, SlackUser, events, workspace,
};
use switchyard_test_support::{LeakScanner, TestApp, backend_tests, required_test_server};

use super::support::{
    create_connection, create_source, names, records, spawn_app, stream_runs, sync, tenant_key,
    test_connection, webhook_run,
};

const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

pub struct SlackApp {
    app: TestApp,
    slack: SlackStandIn,
}

impl switchyard_test_support::BackendFixture for SlackApp {
    async fn start(backend: switchyard_test_support::TestBackend) -> Option<Self> {
        let app = spawn_app(backend).await?;
        let slack = SlackStandIn::start(SlackOptions::default()).await.unwrap();
        slack.seed(30, 4);
        Some(Self { app, slack })
    }
}

/// `v0=…` for `body` at `timestamp`, computed by `slack_sdk`'s `SignatureVerifier`.
fn slack_signature(python: &str, timestamp: i64, body: &str) -> String {
    let script = "import sys\n\
        from slack_sdk.signature import SignatureVerifier\n\
        print(SignatureVerifier(sys.argv[1]).generate_signature(timestamp=sys.argv[2], body=sys.argv[3]), end='')";
    let output = Command::new(python)
        .args(["-c", script, SIGNING_SECRET, &timestamp.to_string(), body])
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// Posts `body` to the ingest URL as Slack would, signed now; `retry` sets
/// `X-Slack-Retry-Num` (a redelivery).
async fn deliver(python: &str, ingest: &str, body: &Value, retry: Option<u32>) -> (u16, Value) {
    let body = body.to_string();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut request = reqwest::Client::new()
        .post(ingest)
        .header("content-type", "application/json")
        .header("user-agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
        .header("x-slack-request-timestamp", now.to_string())
        .header("x-slack-signature", slack_signature(python, now, &body));
    if let Some(retry) = retry {
        request = request
            .header("x-slack-retry-num", retry.to_string())
            .header("x-slack-retry-reason", "http_timeout");
    }
    let answer = request.body(body).send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// The ids of the outbound events of `event_type`, oldest first.
async fn published(app: &TestApp, event_type: &str) -> Vec<String> {
    use switchyard_store::{Database, DatabaseOptions};
    let database = Database::connect(app.database().url(), &DatabaseOptions::default())
        .await
        .unwrap();
    let sql = "SELECT id FROM webhook_events WHERE event_type = $1 ORDER BY id";
    match &database {
        Database::Sqlite(pool) => sqlx::query_scalar(sql)
            .bind(event_type)
            .fetch_all(pool)
            .await
            .unwrap(),
        Database::Postgres(pool) => sqlx::query_scalar(sql)
            .bind(event_type)
            .fetch_all(pool)
            .await
            .unwrap(),
    }
}

/// Waits until the inbound event has been processed (handed to the connector).
async fn processed(app: &TestApp, key: &str, event: &str) -> Value {
    for _ in 0..400 {
        let body = app
            .get(&format!("/v1/inbound-events/{event}"), key)
            .await
            .json();
        if body["status"] != "received" {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("inbound event {event} was never processed");
}

backend_tests! { SlackApp;
    async fn slack_connects_syncs_acts_and_takes_events(fx) {
        let python = required_test_server("SWITCHYARD_TEST_PEERS_PYTHON");
        let app = &fx.app;
        let key = tenant_key(app).await;
        let mut leaks = LeakScanner::new();
        leaks.watch("slack bot token", BOT_TOKEN);
        leaks.watch("slack signing secret", SIGNING_SECRET);

        // The catalogue lists the built-in Slack connector.
        let providers = app.get("/v1/providers", &key).await;
        leaks.add("GET /v1/providers", providers.text());
        let listed = providers.json();
        let slack_provider = listed.as_array().unwrap().iter().find(|p| p["id"] == "slack").expect("slack is built in").clone();
        assert_eq!(names(&slack_provider, "streams", "name"), ["users", "conversations", "conversation_members"]);
        assert_eq!(names(&slack_provider, "auth_modes", "type"), ["bearer", "oauth2"]);

        // A connection to the stand-in.
        let created = create_connection(app, &key, &json!({
                    "provider": "slack",
                    "name": "Acme Slack",
                    "auth_mode": "bearer",
                    "config": {"team_id": workspace::TEAM_ID},
                    "credentials": {"token": BOT_TOKEN},
                    "base_url": fx.slack.api_url(),
                })).await;
        leaks.add("POST /v1/connections", created.to_string());
        let id = created["id"].as_str().unwrap().to_owned();

        let test = test_connection(app, &key, &id).await;
        leaks.add("POST test", test.to_string());
        assert_eq!(test["success"], true, "{test}");
        assert_eq!(test["permissions_verified"], json!(slack::ALL_SCOPES));
        assert_eq!(test["permissions_missing"], json!([]));

        // A sync, and its records in the unified form.
        let run = sync(app, &key, &id, "users").await;
        assert_eq!(run["counters"]["records_added"], 30, "{run}");
        let identities = records(app, &key, &id, "users", "identity").await;
        assert_eq!(identities.len(), 30);
        assert!(identities.iter().all(|c| c["mapping_error"].is_null()), "{identities:?}");
        let by_id = |n: u32| identities.iter().find(|c| c["primary_key"] == slack::user_id(n)).unwrap()["record"].clone();
        assert_eq!(
            by_id(5),
            json!({"id": slack::user_id(5), "email": "user5@example.test", "name": "User Number5", "status": "active", "mfa_enabled": false, "admin": true, "source": "slack"})
        );
        assert_eq!(by_id(7)["status"], "deprovisioned");
        assert_eq!(by_id(8)["mfa_enabled"], true);
        sync(app, &key, &id, "conversations").await;
        assert_eq!(records(app, &key, &id, "conversations", "").await.len(), 4);
        // Memberships: one record per listed conversation and member, the bare user ids
        // Slack lists wrapped with their channel.
        let memberships: usize = fx.slack.listed_channels(false).iter().map(|c| fx.slack.members(c["id"].as_str().unwrap()).len()).sum();
        let run = sync(app, &key, &id, "conversation_members").await;
        assert_eq!(run["counters"]["records_added"], memberships, "{run}");
        let stored = records(app, &key, &id, "conversation_members", "").await;
        assert_eq!(stored.len(), memberships);
        let first = stored.iter().find(|c| c["primary_key"] == format!("{}/{}", slack::channel_id(1), workspace::BOT_USER_ID)).expect("the bot is in channel 1");
        assert_eq!(first["record"], json!({"value": workspace::BOT_USER_ID, "channel_id": slack::channel_id(1)}));

        // An action through the API.
        let posted = app
            .post(
                &format!("/v1/connections/{id}/actions/post_message"),
                &key,
                &json!({"input": {"channel": slack::channel_id(1), "text": "Access review starts today"}}),
            )
            .await;
        assert_eq!(posted.status, 200, "{}", posted.text());
        leaks.add("POST post_message", posted.text());
        assert_eq!(posted.json()["output"]["ok"], true);
        assert_eq!(fx.slack.messages()[0].text.as_deref(), Some("Access review starts today"));

        // Events API deliveries, signed by slack_sdk, to a source linked to the connection.
        if let Some(python) = python {
            let source = create_source(app, &key, "slack events", "slack", SIGNING_SECRET, &id).await;
            leaks.add("POST /v1/sources", source.to_string());
            let ingest = source["ingest_url"].as_str().unwrap().to_owned();

            // The Request URL's one-time verification is answered with the challenge.
            let (status, answer) = deliver(&python, &ingest, &events::url_verification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"), None).await;
            assert_eq!((status, answer), (200, json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})));

            // Another workspace's event is verified and stored, but not this connection's.
            let mut foreign = fx.slack.event(events::team_join(&SlackUser::new("U0OTHER01", "x", "X Y", "x@example.test")));
            foreign.body["team_id"] = json!("T0ANOTHER");
            let (status, answer) = deliver(&python, &ingest, &foreign.body, None).await;
            assert_eq!(status, 200, "{answer}");
            processed(app, &key, answer["id"].as_str().unwrap()).await;
            assert!(stream_runs(app, &key, &id, "users").await.iter().all(|r| r["trigger"] != "webhook"));

            // An endpoint subscribed to the events the connector emits.
            let subscriber = app.post("/v1/endpoints", &key, &json!({
                "url": "https://hooks.example.invalid/slack-users", "event_types": ["slack.user.*"],
            })).await;
            assert_eq!(subscriber.status, 201, "{}", subscriber.text());
            let changed_before = published(app, "slack.users.changed").await.len();

            // A new member joins: `team_join` carries her whole, and she is stored at once.
            let joined = fx.slack.upsert_user(SlackUser::new(&slack::user_id(31), "grace", "Grace Hopper", "grace@example.test"));
            let delivery = fx.slack.event(events::team_join(&joined));
            let (status, first) = deliver(&python, &ingest, &delivery.body, None).await;
            assert_eq!((status, &first["duplicate"]), (200, &json!(false)), "{first}");
            // Slack redelivers the same event_id with X-Slack-Retry-Num: one event.
            let (status, again) = deliver(&python, &ingest, &delivery.body, Some(1)).await;
            assert_eq!((status, &again["duplicate"], &again["id"]), (200, &json!(true), &first["id"]));
            processed(app, &key, first["id"].as_str().unwrap()).await;
            let changes = records(app, &key, &id, "users", "").await;
            let last = changes.last().unwrap();
            assert_eq!((&last["change"], &last["primary_key"]), (&json!("added"), &json!(joined.id)), "{last}");
            assert_eq!(last["record"], delivery.body["event"]["user"]);
            assert!(last["run_id"].is_null(), "a webhook's change is no run's: {last}");
            assert!(stream_runs(app, &key, &id, "users").await.iter().all(|r| r["trigger"] != "webhook"), "stored, not synced");
            let identities = records(app, &key, &id, "users", "identity").await;
            assert!(identities.iter().any(|c| c["record"]["email"] == "grace@example.test"));
            assert_eq!(published(app, "slack.user.created").await.len(), 1);

            // A profile changes: `user_change` updates the record, announces the change and
            // emits `slack.user.updated` to the subscriber, once.
            let mut renamed = fx.slack.user(&slack::user_id(5)).unwrap();
            renamed.real_name = "Renamed Five".into();
            let renamed = fx.slack.upsert_user(renamed);
            let delivery = fx.slack.event(events::user_change(&renamed));
            let (status, first) = deliver(&python, &ingest, &delivery.body, None).await;
            assert_eq!(status, 200, "{first}");
            let inbound = first["id"].as_str().unwrap().to_owned();
            processed(app, &key, &inbound).await;
            let changes = records(app, &key, &id, "users", "").await;
            let last = changes.last().unwrap();
            assert_eq!((&last["change"], &last["primary_key"]), (&json!("updated"), &json!(slack::user_id(5))), "{last}");
            assert_eq!(last["record"]["real_name"], "Renamed Five");
            let updated = published(app, "slack.user.updated").await;
            assert_eq!(updated.len(), 1);
            let event = app.get(&format!("/v1/events/{}", updated[0]), &key).await;
            assert_eq!(event.status, 200, "{}", event.text());
            let event = event.json();
            assert_eq!(event["deliveries"].as_array().unwrap().len(), 1, "{event}");
            let data = &event["payload"]["data"];
            assert_eq!(data["connection_id"], json!(id));
            assert_eq!(data["data"], delivery.body["event"]["user"]);
            let announced = published(app, "slack.users.changed").await;
            assert_eq!(announced.len(), changed_before + 2, "team_join and user_change each changed `users`");

            // Redelivered (X-Slack-Retry-Num) and processed again (a replay): nothing changes,
            // nothing is emitted twice.
            let (status, again) = deliver(&python, &ingest, &delivery.body, Some(2)).await;
            assert_eq!((status, &again["duplicate"]), (200, &json!(true)), "{again}");
            let replayed = app.post(&format!("/v1/inbound-events/{inbound}/replay"), &key, &json!({})).await;
            assert!(replayed.status < 300, "{}", replayed.text());
            processed(app, &key, &inbound).await;
            assert_eq!(records(app, &key, &id, "users", "").await.len(), changes.len());
            assert_eq!(published(app, "slack.user.updated").await, updated);
            assert_eq!(published(app, "slack.users.changed").await.len(), changed_before + 2);

            // A member that breaks the stream's schema is refused: nothing stored, and
            // `users` is synced instead.
            let mut broken = events::user_change(&renamed);
            broken["user"]["id"] = json!("not-a-slack-id");
            let delivery = fx.slack.event(broken);
            let (status, answer) = deliver(&python, &ingest, &delivery.body, None).await;
            assert_eq!(status, 200, "{answer}");
            let run = webhook_run(app, &key, &id, "users").await;
            assert_eq!(run["status"], "succeeded", "{run}");
            assert_eq!(run["counters"]["records_added"], 0, "the store was up to date: {run}");
            assert_eq!(run["counters"]["records_deleted"], 0, "webhook-written records stay: {run}");
            let changes = records(app, &key, &id, "users", "").await;
            assert!(changes.iter().all(|c| c["primary_key"] != "not-a-slack-id"));

            // She joins a channel: `member_joined_channel` syncs the memberships.
            fx.slack.join(&slack::channel_id(1), &joined.id);
            let channel = fx.slack.channel(&slack::channel_id(1)).unwrap();
            let delivery = fx.slack.event(events::member_joined_channel(&channel, &joined.id));
            let (status, answer) = deliver(&python, &ingest, &delivery.body, None).await;
            assert_eq!(status, 200, "{answer}");
            let run = webhook_run(app, &key, &id, "conversation_members").await;
            assert_eq!(run["status"], "succeeded", "{run}");
            assert_eq!(run["counters"]["records_added"], 1, "{run}");

            // A bad signature is refused before anything is stored.
            let forged = reqwest::Client::new()
                .post(&ingest)
                .header("content-type", "application/json")
                .header("x-slack-request-timestamp", time::OffsetDateTime::now_utc().unix_timestamp().to_string())
                .header("x-slack-signature", format!("v0={}", "0".repeat(64)))
                .body(delivery.body.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(forged.status(), 401);
        }

        // The token was never in an answer.
        for path in [format!("/v1/connections/{id}"), format!("/v1/connections/{id}/syncs"), "/v1/connections".to_owned()] {
            let answer = app.get(&path, &key).await;
            leaks.add(format!("GET {path}"), answer.text());
        }
        for change in records(app, &key, &id, "users", "").await {
            leaks.add("records", change.to_string());
        }
        // Nor in the database (the vault holds it encrypted).
        leaks.add_database(app.database()).await;
        leaks.assert_no_leaks();
    }

    async fn an_oauth_access_token_connection_and_a_revoked_token(fx) {
        let app = &fx.app;
        let key = tenant_key(app).await;
        let access_token = "xoxb-oauth-v2-issued-access-token";
        fx.slack.add_token(access_token, slack::ALL_SCOPES);
        let created = create_connection(app, &key, &json!({
            "provider": "slack",
            "name": "Acme Slack (OAuth)",
            "auth_mode": "oauth2",
            "config": {"team_id": workspace::TEAM_ID},
            "credentials": {"access_token": access_token},
            "base_url": fx.slack.api_url(),
        })).await;
        assert_eq!(created["auth_mode"], "oauth2");
        let id = created["id"].as_str().unwrap().to_owned();
        let test = test_connection(app, &key, &id).await;
        assert_eq!(test["success"], true, "{test}");

        // Revoked at Slack: the test says so with Slack's own code.
        fx.slack.revoke_token(access_token);
        let test = test_connection(app, &key, &id).await;
        assert_eq!(test["success"], false);
        assert_eq!(test["error_code"], "auth_failed");
        assert!(test["error_message"].as_str().unwrap().contains("token_revoked"), "{test}");
        assert!(!test.to_string().contains(access_token));
    }
}

//! The built-in Jira Cloud manifest against the Jira stand-in: conformance across a change,
//! syncs into the record store, both auth modes, the actions' exact requests, webhooks, 429s.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use switchyard_connectors::conformance::{ActionSample, Records, WebhookSample};
use switchyard_connectors::unified::{CompiledActionMapping, CompiledMapping, MappingSubject};
use switchyard_connectors::{CallContext, ConnectionContext, Connector, Registry, WebhookEvent};
use switchyard_core::TenantId;
use switchyard_http::{
    AdaptiveConfig, AdaptiveLimits, BreakerConfig, BreakerRegistry, CallScope, GiveUpReason,
    GuardedClient, InMemoryBackend, ManualClock, ProviderClient, ProviderError, ProviderRequest,
    Rate, RateLimitError, RateLimiter, SsrfPolicy,
};
use switchyard_test_support::providers::jira::{
    JiraBasic, JiraIssue, JiraOptions, JiraProject, JiraStandIn, Seed,
};
use switchyard_test_support::standin::{BearerToken, Failure, RateLimit, provider_client};
use time::macros::offset;

use crate::support::{Store, builtin_connector, conformance};

/// The fields the manifest's search asks for.
const FIELDS: &[&str] = &[
    "summary",
    "status",
    "issuetype",
    "priority",
    "project",
    "created",
    "updated",
];
const SEED: Seed = Seed {
    users: 130,
    projects: 60,
    issues: 240,
};

/// A user in a zone without daylight saving, so JQL times are read 10 hours ahead of UTC.
fn brisbane() -> JiraOptions {
    JiraOptions {
        time_zone: "Australia/Brisbane".into(),
        utc_offset: offset!(+10),
        ..JiraOptions::default()
    }
}

async fn standin(options: JiraOptions) -> JiraStandIn {
    let standin = JiraStandIn::start(options).await.unwrap();
    standin.seed(SEED);
    standin
}

fn basic(standin: &JiraStandIn) -> ProviderClient<InMemoryBackend, JiraBasic> {
    provider_client(JiraBasic {
        email: standin.options().email.clone(),
        api_token: standin.options().api_token.clone(),
    })
}

/// The site's connection context: on `store`'s stored connection for a sync, or on fresh
/// ids for calls that store nothing.
fn site_connection(standin: &JiraStandIn, store: Option<&Store>) -> ConnectionContext {
    let config = json!({"site": "acme", "time_zone": standin.options().time_zone});
    let base_url = Some(standin.url().to_owned());
    match store {
        Some(store) => store.context(config, base_url),
        None => ConnectionContext {
            tenant: TenantId::generate(),
            connection: switchyard_core::ConnectionId::generate(),
            config,
            base_url,
            auth_mode: None,
        },
    }
}

fn by(key: &str, records: Vec<Value>) -> Records {
    records
        .into_iter()
        .map(|record| (record[key].as_str().unwrap().to_owned(), record))
        .collect()
}

fn expected(standin: &JiraStandIn) -> BTreeMap<String, Records> {
    BTreeMap::from([
        ("projects".to_owned(), by("id", standin.project_records())),
        ("issues".to_owned(), by("id", standin.issue_records(FIELDS))),
        ("users".to_owned(), by("accountId", standin.user_records())),
    ])
}

/// Ten minutes on: one issue renamed and one transitioned, one created, a project added, a
/// user removed.
fn change(standin: &JiraStandIn) -> BTreeMap<String, Records> {
    standin.advance(Duration::from_secs(600));
    standin
        .update_issue("PRJ7-2", |issue| issue.summary = "Renamed".into())
        .unwrap();
    standin
        .update_issue("PRJ3-1", |issue| issue.status = "Done".into())
        .unwrap();
    standin.upsert_project(JiraProject {
        id: "20001".into(),
        key: "NEW".into(),
        name: "Newcomer".into(),
    });
    standin.create_issue("NEW", "Fresh issue");
    standin.remove_user("5f0c0000000000000000000a").unwrap();
    expected(standin)
}

#[tokio::test]
async fn the_manifest_is_built_in() {
    let registry = Registry::builtin().unwrap();
    assert!(registry.get("jira").is_some());
}

#[tokio::test]
async fn conforms_across_a_change_with_an_api_token() {
    let standin = standin(brisbane()).await;
    let calls = basic(&standin);
    let connection = site_connection(&standin, None);
    let connector = builtin_connector("jira");
    let cx = CallContext {
        calls: &calls,
        connection: &connection,
    };
    let first = expected(&standin);
    let changed = standin.clone();
    let issue = standin.issues()[5].clone();
    let hook = |event: &str| standin.issue_webhook(1, event, &issue).body_json();
    let project = standin.projects()[0].clone();
    let user = standin.users()[0].clone();
    let kit = conformance(&connector, cx, first).between_reads(move || change(&changed));
    let created = json!({
        "project_key": "PRJ1",
        "issue_type": "Bug",
        "summary": "Disk full",
        "description": "db-1 is at 100 %",
    });
    let project_hook = standin.project_webhook(2, "project_created", &project);
    let user_hook = standin.user_webhook(3, "user_updated", &user);
    let comment_hook = json!({"webhookEvent": "comment_created"});
    let transition = |id: &str| json!({"issue_key": "PRJ2-1", "transition_id": id});
    let report = kit
        .webhook(WebhookSample::new("issue_created", hook("jira:issue_created")).syncs(["issues"]))
        .webhook(WebhookSample::new("issue_updated", hook("jira:issue_updated")).syncs(["issues"]))
        .webhook(WebhookSample::new("issue_deleted", hook("jira:issue_deleted")).syncs(["issues"]))
        .webhook(
            WebhookSample::new("project_created", project_hook.body_json()).syncs(["projects"]),
        )
        .webhook(WebhookSample::new("user_updated", user_hook.body_json()).syncs(["users"]))
        .webhook(WebhookSample::new("comment_created", comment_hook))
        .action(ActionSample::new("create_issue", created))
        .action(ActionSample::new("transition_issue", transition("21")))
        .action(ActionSample::new(
            "add_comment",
            json!({"issue_key": "PRJ2-1", "text": "Looking into it"}),
        ))
        .action(
            ActionSample::new(
                "create_issue",
                json!({"project_key": "PRJ1", "summary": ""}),
            )
            .failing_with("invalid_input"),
        )
        .action(
            ActionSample::new("transition_issue", transition("99")).failing_with("provider_error"),
        )
        .run()
        .await
        .unwrap_or_else(|failure| panic!("{failure}"));

    let issues = &report.streams["issues"];
    assert_eq!(issues.full.records, u64::from(SEED.issues));
    assert!(issues.full.pages >= 3, "{issues:?}");
    assert!(report.streams["projects"].full.pages >= 2);
    assert!(report.streams["users"].full.pages >= 2);
    assert!(issues.unified_checked > 0 && report.streams["users"].unified_checked > 0);
    let searches = standin.searches();
    assert!(
        searches
            .iter()
            .all(|jql| jql.starts_with("updated >= \"") && jql.ends_with("\" ORDER BY updated ASC")),
        "every search is bounded: {searches:?}"
    );
}

#[tokio::test]
async fn syncs_store_the_site_and_a_second_issue_sync_stores_exactly_the_change() {
    let standin = standin(JiraOptions::default()).await;
    let calls = basic(&standin);
    let store = Store::start("jira").await;
    let connection = site_connection(&standin, Some(&store));
    let connector = builtin_connector("jira");
    for stream in ["projects", "issues", "users"] {
        store
            .sync(&connector, &calls, &connection, stream)
            .await
            .unwrap();
        assert_eq!(
            store.stored(stream).await,
            expected(&standin)[stream],
            "{stream}"
        );
    }

    standin.advance(Duration::from_secs(3600));
    standin
        .update_issue("PRJ4-3", |i| i.summary = "Changed".into())
        .unwrap();
    let counts = store
        .sync(&connector, &calls, &connection, "issues")
        .await
        .unwrap();
    assert_eq!(counts.updated, 1, "{counts:?}");
    assert_eq!(counts.added, 0, "{counts:?}");
    assert_eq!(store.stored("issues").await, expected(&standin)["issues"]);
}

#[tokio::test]
async fn oauth_connections_go_through_the_gateway_by_cloud_id() {
    let standin = standin(JiraOptions::default()).await;
    let calls = provider_client(BearerToken(standin.options().access_token.clone()));
    let store = Store::start("jira").await;
    let connection = ConnectionContext {
        tenant: store.tenant,
        connection: store.connection,
        config: json!({"cloud_id": standin.options().cloud_id}),
        base_url: Some(standin.oauth_url()),
        auth_mode: None,
    };
    let connector = builtin_connector("jira");
    let report = connector
        .test_connection(CallContext {
            calls: &calls,
            connection: &connection,
        })
        .await
        .unwrap();
    assert!(report.success, "{report:?}");
    store
        .sync(&connector, &calls, &connection, "projects")
        .await
        .unwrap();
    let stored = store.stored("projects").await;
    assert_eq!(stored.len(), SEED.projects as usize);
    let prefix = format!("{}/rest/api/3/project/", standin.oauth_url());
    assert!(
        stored
            .values()
            .all(|p| p["self"].as_str().unwrap().starts_with(&prefix))
    );
    assert!(
        standin
            .requests()
            .iter()
            .all(|r| r.headers.get("authorization").map(String::as_str) == Some("Bearer"))
    );
}

#[tokio::test]
async fn the_default_base_url_picks_the_site_or_the_gateway() {
    let connector = builtin_connector("jira");
    let render = |config: Value| {
        switchyard_connectors::template::render(
            &connector.manifest().base_url,
            &json!({"config": config}),
        )
        .unwrap()
    };
    assert_eq!(
        render(json!({"site": "acme"})),
        "https://acme.atlassian.net"
    );
    assert_eq!(
        render(json!({"cloud_id": "11223344-a1b2-3b33-c444-def123456789"})),
        "https://api.atlassian.com/ex/jira/11223344-a1b2-3b33-c444-def123456789"
    );
    assert!(
        connector
            .validate_config(&json!({"time_zone": "UTC"}))
            .is_err()
    );
    assert!(
        connector
            .validate_config(&json!({"site": "https://acme"}))
            .is_err()
    );
}

#[tokio::test]
async fn a_wrong_api_token_or_access_token_is_auth_failed() {
    let standin = standin(JiraOptions::default()).await;
    let connector = builtin_connector("jira");
    let wrong = provider_client(JiraBasic {
        email: standin.options().email.clone(),
        api_token: "wrong".into(),
    });
    let store = Store::start("jira").await;
    let connection = site_connection(&standin, Some(&store));
    let report = connector
        .test_connection(CallContext {
            calls: &wrong,
            connection: &connection,
        })
        .await
        .unwrap();
    assert!(!report.success);
    assert_eq!(report.error_code.as_deref(), Some("auth_failed"));
    let error = store
        .sync(&connector, &wrong, &connection, "issues")
        .await
        .unwrap_err();
    assert!(format!("{error:?}").contains("401"), "{error:?}");

    let wrong = provider_client(BearerToken("expired".into()));
    let gateway = ConnectionContext {
        base_url: Some(standin.oauth_url()),
        auth_mode: None,
        ..connection
    };
    let report = connector
        .test_connection(CallContext {
            calls: &wrong,
            connection: &gateway,
        })
        .await
        .unwrap();
    assert_eq!(report.error_code.as_deref(), Some("auth_failed"));
}

#[tokio::test]
async fn each_action_sends_jiras_request() {
    let standin = standin(JiraOptions::default()).await;
    let calls = basic(&standin);
    let connection = site_connection(&standin, None);
    let connector = builtin_connector("jira");
    let cx = CallContext {
        calls: &calls,
        connection: &connection,
    };
    let created = connector
        .execute_action(
            cx,
            "create_issue",
            &json!({"project_key": "PRJ2", "issue_type": "Task", "summary": "Rotate keys", "description": "Quarterly"}),
            None,
        )
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("PRJ2-"), "{created}");
    assert_eq!(
        created["self"],
        format!(
            "{}/rest/api/3/issue/{}",
            standin.url(),
            created["id"].as_str().unwrap()
        )
    );
    assert_eq!(
        created.as_object().unwrap().len(),
        3,
        "Jira answers only id, key and self: {created}"
    );
    let transitioned = connector
        .execute_action(
            cx,
            "transition_issue",
            &json!({"issue_key": key, "transition_id": "31"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(transitioned, Value::Null, "204 has no body");
    let comment = connector
        .execute_action(
            cx,
            "add_comment",
            &json!({"issue_key": key, "text": "Done."}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(comment["body"]["content"][0]["content"][0]["text"], "Done.");

    let paragraph = |text: &str| json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}]});
    assert_eq!(
        standin.writes(),
        [
            (
                "/rest/api/3/issue".to_owned(),
                json!({"fields": {"project": {"key": "PRJ2"}, "issuetype": {"name": "Task"}, "summary": "Rotate keys", "description": paragraph("Quarterly")}})
            ),
            (
                format!("/rest/api/3/issue/{key}/transitions"),
                json!({"transition": {"id": "31"}})
            ),
            (
                format!("/rest/api/3/issue/{key}/comment"),
                json!({"body": paragraph("Done.")})
            ),
        ]
    );
    let issue: JiraIssue = standin.issue(&key).unwrap();
    assert_eq!((issue.status.as_str(), issue.comments.len()), ("Done", 1));

    let error = connector
        .execute_action(cx, "create_issue", &json!({"project_key": "NOPE", "issue_type": "Task", "summary": "x", "description": "y"}), None)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "provider_error");
    assert!(
        error
            .to_string()
            .contains("Specify a valid project ID or key"),
        "{error}"
    );
}

/// `create_issue` maps to a `ticket` from its input and Jira's thin answer, and that ticket
/// agrees with the one the `issues` stream gives the same issue once it is read.
#[tokio::test]
async fn a_created_issue_is_a_ticket_that_agrees_with_the_issues_stream() {
    let standin = standin(JiraOptions::default()).await;
    let calls = basic(&standin);
    let connection = site_connection(&standin, None);
    let connector = builtin_connector("jira");
    let input = json!({"project_key": "PRJ2", "issue_type": "Bug", "summary": "Rotate keys", "description": "Quarterly"});
    let created = connector
        .execute_action(
            CallContext {
                calls: &calls,
                connection: &connection,
            },
            "create_issue",
            &input,
            None,
        )
        .await
        .unwrap();
    let manifest = connector.manifest();
    let mapping = manifest
        .action("create_issue")
        .unwrap()
        .unified
        .as_ref()
        .unwrap();
    assert_eq!(mapping.from, MappingSubject::Exchange);
    let ticket = CompiledActionMapping::new(mapping)
        .unwrap()
        .with_config(connection.config.clone())
        .apply("jira", &input, &created)
        .unwrap();
    // The browse page on the configured site; no status, which Jira's answer does not say.
    let key = created["key"].as_str().unwrap();
    assert_eq!(
        ticket,
        json!({
            "id": created["id"],
            "title": "Rotate keys",
            "system": "jira",
            "externalId": key,
            "url": format!("https://acme.atlassian.net/browse/{key}"),
            "type": "Bug",
            "source": "jira",
        })
    );

    let record = standin
        .issue_records(FIELDS)
        .into_iter()
        .find(|issue| issue["id"] == created["id"])
        .unwrap();
    let from_stream =
        CompiledMapping::new(manifest.stream("issues").unwrap().unified.as_ref().unwrap())
            .unwrap()
            .with_config(connection.config.clone())
            .apply("jira", &record)
            .unwrap();
    for (field, value) in ticket.as_object().unwrap() {
        assert_eq!(&from_stream[field], value, "{field}");
    }
    assert_eq!(from_stream["status"], "To Do", "the stream has the status");

    // Without the input the title is missing: the mapping reads the exchange, not the output.
    let error = CompiledActionMapping::new(mapping)
        .unwrap()
        .apply("jira", &json!({}), &created)
        .unwrap_err();
    assert_eq!(error.field(), Some("title"), "{error}");
}

/// `ticket.url` is the browse page: on the configured `site` (API-token connections, and
/// OAuth ones that set it), else on the host of `self` when that is a site; an OAuth
/// connection without `site` has only the gateway's REST link, which stands in.
#[test]
fn ticket_urls_are_browse_pages_on_the_site() {
    let connector = builtin_connector("jira");
    let manifest = connector.manifest();
    let issues =
        CompiledMapping::new(manifest.stream("issues").unwrap().unified.as_ref().unwrap()).unwrap();
    let create = CompiledActionMapping::new(
        manifest
            .action("create_issue")
            .unwrap()
            .unified
            .as_ref()
            .unwrap(),
    )
    .unwrap();
    let cloud_id = "11223344-a1b2-3b33-c444-def123456789";
    let site_self = "https://acme.atlassian.net/rest/api/3/issue/10001";
    let gateway_self =
        format!("https://api.atlassian.com/ex/jira/{cloud_id}/rest/api/3/issue/10001");
    let browse = "https://acme.atlassian.net/browse/OPS-1";
    let cases = [
        (
            json!({"site": "acme"}),
            site_self.to_owned(),
            browse.to_owned(),
        ),
        (
            json!({"cloud_id": cloud_id, "site": "acme"}),
            gateway_self.clone(),
            browse.to_owned(),
        ),
        (
            json!({"cloud_id": cloud_id}),
            site_self.to_owned(),
            browse.to_owned(),
        ),
        (
            json!({"cloud_id": cloud_id}),
            gateway_self.clone(),
            gateway_self.clone(),
        ),
        (
            json!({"cloud_id": cloud_id, "site": ""}),
            gateway_self.clone(),
            gateway_self.clone(),
        ),
    ];
    let input =
        json!({"project_key": "OPS", "issue_type": "Task", "summary": "Hi", "description": "x"});
    for (config, self_link, url) in cases {
        let record = json!({
            "id": "10001", "key": "OPS-1", "self": self_link,
            "fields": {
                "summary": "Hi", "status": {"name": "To Do"}, "issuetype": {"name": "Task"},
                "priority": null, "project": {"key": "OPS"},
                "created": "2024-01-01T10:00:00.000+0000", "updated": "2024-01-01T10:00:00.000+0000",
            }
        });
        let ticket = issues
            .clone()
            .with_config(config.clone())
            .apply("jira", &record)
            .unwrap();
        assert_eq!(ticket["url"], url, "{config} {self_link}");
        let created = json!({"id": "10001", "key": "OPS-1", "self": self_link});
        let ticket = create
            .clone()
            .with_config(config.clone())
            .apply("jira", &input, &created)
            .unwrap();
        assert_eq!(ticket["url"], url, "{config} {self_link}");
        assert!(ticket.get("status").is_none(), "{ticket}");
    }
}

#[tokio::test]
async fn webhooks_sync_the_stream_they_concern() {
    let connector = builtin_connector("jira");
    let standin = standin(JiraOptions::default()).await;
    let calls = basic(&standin);
    let connection = site_connection(&standin, None);
    let cx = CallContext {
        calls: &calls,
        connection: &connection,
    };
    for (event, streams) in [
        ("issue_updated", vec!["issues"]),
        ("project_deleted", vec!["projects"]),
        ("user_created", vec!["users"]),
        ("worklog_updated", vec![]),
    ] {
        let outcome = connector
            .handle_webhook(
                cx,
                &WebhookEvent {
                    event_type: Some(event.into()),
                    headers: Vec::new(),
                    body: json!({"webhookEvent": event}),
                },
            )
            .await
            .unwrap();
        assert_eq!(outcome.sync, streams, "{event}");
    }
}

#[tokio::test]
async fn a_429_or_503_with_retry_after_is_waited_out_and_retried() {
    let standin = standin(JiraOptions::default()).await;
    let calls = basic(&standin);
    let store = Store::start("jira").await;
    let connection = site_connection(&standin, Some(&store));
    let connector = builtin_connector("jira");
    standin.throttle_next("/rest/api/3/project/search", 1, 1);
    standin.inject(
        Failure::new("/rest/api/3/users/search", 503)
            .header("retry-after", "1")
            .json_body(json!({"errorMessages": ["Service unavailable"], "errors": {}})),
    );
    for stream in ["projects", "users"] {
        store
            .sync(&connector, &calls, &connection, stream)
            .await
            .unwrap();
        assert_eq!(
            store.stored(stream).await,
            expected(&standin)[stream],
            "{stream}"
        );
    }
    let statuses = |path: &str| -> Vec<u16> {
        standin
            .requests()
            .iter()
            .filter(|r| r.path == path)
            .map(|r| r.status)
            .take(2)
            .collect()
    };
    assert_eq!(statuses("/rest/api/3/project/search"), [429, 200]);
    assert_eq!(statuses("/rest/api/3/users/search"), [503, 200]);
}

/// A search is a `POST`, but a read: the call stack repeats it after the 429's pause.
#[tokio::test]
async fn a_429_on_the_issue_search_is_waited_out_and_retried() {
    let standin = standin(JiraOptions::default()).await;
    let calls = basic(&standin);
    let store = Store::start("jira").await;
    let connection = site_connection(&standin, Some(&store));
    standin.throttle_next("/rest/api/3/search/jql", 1, 1);
    store
        .sync(&builtin_connector("jira"), &calls, &connection, "issues")
        .await
        .unwrap();
    assert_eq!(store.stored("issues").await, expected(&standin)["issues"]);
    let statuses: Vec<u16> = standin
        .requests()
        .iter()
        .filter(|r| r.path == "/rest/api/3/search/jql")
        .map(|r| r.status)
        .take(2)
        .collect();
    assert_eq!(statuses, [429, 200]);
}

/// Jira's timestamps (`2024-01-01T10:00:00.000+1000`) are the cursor: a later search starts
/// at the newest update less the 5-minute lookback, written in the user's time zone.
#[tokio::test]
async fn a_later_issue_search_starts_at_the_newest_update_less_the_lookback_in_the_users_zone() {
    let standin = standin(brisbane()).await;
    let calls = basic(&standin);
    let store = Store::start("jira").await;
    let connection = site_connection(&standin, Some(&store));
    let connector = builtin_connector("jira");
    let sync = || store.sync(&connector, &calls, &connection, "issues");
    sync().await.unwrap();
    // The seed's newest update is 2023-12-31T23:59:59Z, 09:59:59 in Brisbane; every seeded
    // issue is within the lookback of it, so the second read lists them all again.
    standin.advance(Duration::from_secs(3600));
    standin
        .update_issue("PRJ4-3", |i| i.summary = "Changed".into())
        .unwrap();
    let before = standin.searches().len();
    let counts = sync().await.unwrap();
    assert_eq!((counts.added, counts.updated), (0, 1), "{counts:?}");
    assert!(
        standin.searches()[before..]
            .iter()
            .all(|jql| jql == r#"updated >= "2024-01-01 09:54" ORDER BY updated ASC"#)
    );
    // PRJ4-3 changed at 01:00:00Z (11:00 in Brisbane): the third read asks from 10:55 and
    // finds that issue and the one changed since, in one page.
    standin.advance(Duration::from_secs(3600));
    standin
        .update_issue("PRJ5-1", |i| i.status = "Done".into())
        .unwrap();
    let before = standin.searches().len();
    let counts = sync().await.unwrap();
    assert_eq!((counts.added, counts.updated), (0, 1), "{counts:?}");
    assert_eq!(
        standin.searches()[before..],
        [r#"updated >= "2024-01-01 10:55" ORDER BY updated ASC"#]
    );
    assert_eq!(store.stored("issues").await, expected(&standin)["issues"]);
}

/// Jira's 429 says `X-RateLimit-Remaining: 0` and when the budget refills, to the minute
/// (`X-RateLimit-Reset: 2024-01-01T10:00Z`): the manifest's `iso8601` window reads it and the
/// call stack holds the connection's calls until then. `Retry-After` is switched off here so
/// that the reset alone can hold them; the stack's clock is moved by hand.
#[tokio::test]
async fn a_spent_budget_holds_calls_until_the_minute_reset() {
    let standin = standin(JiraOptions {
        rate_limit: Some(RateLimit::new(1, Duration::from_secs(600))),
        ..JiraOptions::default()
    })
    .await;
    let clock = ManualClock::new();
    let adaptive = Arc::new(AdaptiveLimits::new(
        AdaptiveConfig::default(),
        Arc::new(clock.clone()),
    ));
    let calls = ProviderClient::new(
        GuardedClient::builder(
            SsrfPolicy::strict()
                .with_allow_http(true)
                .with_allow_cidrs(["127.0.0.1/32".parse().unwrap()]),
        )
        .build()
        .unwrap(),
        Arc::new(RateLimiter::in_memory(Rate::per_second(
            NonZeroU32::new(1_000).unwrap(),
        ))),
        Arc::clone(&adaptive),
        Arc::new(BreakerRegistry::new(
            BreakerConfig::default(),
            Arc::new(clock.clone()),
        )),
        JiraBasic {
            email: standin.options().email.clone(),
            api_token: standin.options().api_token.clone(),
        },
    );
    let mut policy = builtin_connector("jira").policy().clone();
    policy.signals.retry_after = false;
    let scope = CallScope {
        tenant: "tenant".into(),
        provider: "jira".into(),
        connection: Some("connection".into()),
    };
    let myself = format!("{}/rest/api/3/myself", standin.url());
    let call = || {
        let request = reqwest::Request::new(reqwest::Method::GET, myself.parse().unwrap());
        ProviderRequest::new(scope.clone(), request, "/rest/api/3/myself")
            .deadline_in(Duration::from_secs(120))
    };
    let sent = || standin.requests().len();

    // The budget's one call, then Jira's 429: the reset is minutes away, past the deadline.
    let before = SystemTime::now();
    assert_eq!(calls.call(&policy, call()).await.unwrap().status, 200);
    let refused = calls.call(&policy, call()).await.unwrap_err();
    let after = SystemTime::now();
    assert!(
        matches!(
            refused,
            ProviderError::Failed { last_status: Some(status), reason: GiveUpReason::DeadlineExceeded, .. }
                if status == 429
        ),
        "{refused:?}"
    );
    assert_eq!(sent(), 2);

    // The window refills at the same minute for every refusal until then.
    let answer = reqwest::Client::new()
        .get(&myself)
        .basic_auth(&standin.options().email, Some(&standin.options().api_token))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 429);
    assert_eq!(answer.headers()["x-ratelimit-remaining"], "0");
    let reset = answer.headers()["x-ratelimit-reset"].to_str().unwrap();
    assert!(
        reset.ends_with('Z') && reset.len() == "2024-01-01T10:00Z".len(),
        "{reset}"
    );
    let reset = SystemTime::from(
        time::PrimitiveDateTime::parse(
            reset.trim_end_matches('Z'),
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]"),
        )
        .unwrap()
        .assume_utc(),
    );
    assert_eq!(sent(), 3);

    // The stack holds the scope until the reset, as the 429's receipt measured it.
    let held = adaptive.reserve("tenant/jira/connection");
    assert!(
        held >= reset.duration_since(after).unwrap()
            && held <= reset.duration_since(before).unwrap(),
        "held {held:?}"
    );
    let early = calls.call(&policy, call()).await.unwrap_err();
    assert!(
        matches!(early, ProviderError::RateLimited(RateLimitError::DeadlineExceeded { retry_in }) if retry_in == held),
        "{early:?}"
    );
    assert_eq!(sent(), 3, "a held call is not sent");

    // A second before the reset it is still held; at the reset the call goes out.
    clock.advance(held - Duration::from_secs(1));
    assert_eq!(
        adaptive.reserve("tenant/jira/connection"),
        Duration::from_secs(1)
    );
    clock.advance(Duration::from_secs(1));
    let _ = calls.call(&policy, call()).await;
    assert_eq!(sent(), 4);
}

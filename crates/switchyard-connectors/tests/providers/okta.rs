//! The built-in Okta connector against the Okta stand-in: conformance, each stream's first
//! and second sync, both auth modes, actions, event hooks, rate limits and refused
//! credentials.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value, json};
use switchyard_connectors::conformance::{ActionSample, Records, WebhookSample};
use switchyard_connectors::credentials::HeldCredential;
use switchyard_connectors::sync::{self, SyncCounts};
use switchyard_connectors::{
    CallContext, ConnectionContext, Connector, ManifestConnector, WebhookEvent,
};
use switchyard_http::{InMemoryBackend, ProviderClient};
use switchyard_test_support::providers::okta::{
    OktaOptions, OktaStandIn, ServiceApp, ServiceAppKey, UserStatus,
};
use switchyard_test_support::standin::provider_client;

use crate::support::{Store, builtin_connector, conformance, local_broker};

const API_TOKEN: &str = "00okta-stand-in-api-token";
const CLIENT_ID: &str = "0oa1serviceapp0000x0g4";
/// Two pages of users (Okta sends at most 200 a page).
const USERS: u64 = 210;
const GROUPS: u64 = 4;

const ALL_SCOPES: [&str; 6] = [
    "okta.users.read",
    "okta.groups.read",
    "okta.apps.read",
    "okta.logs.read",
    "okta.users.manage",
    "okta.groups.manage",
];

type Calls = ProviderClient<InMemoryBackend, HeldCredential>;

/// An org, a connection to it with one auth mode, and a record store.
struct Org {
    okta: OktaStandIn,
    connector: ManifestConnector,
    connection: ConnectionContext,
    calls: Calls,
    store: Store,
}

/// How the connection authenticates.
enum Auth {
    ApiToken(&'static str),
    ServiceApp(ServiceAppKey),
}

impl Org {
    async fn start(options: OktaOptions, auth: Auth) -> Self {
        let okta = OktaStandIn::start(options).await.unwrap();
        okta.seed(USERS, GROUPS);
        let store = Store::start("okta").await;
        let mut connection = store.context(
            json!({"domain": "acme.okta.com"}),
            Some(okta.url().to_owned()),
        );
        let connector = builtin_connector("okta");
        let (kind, fields) = match auth {
            Auth::ApiToken(token) => ("api_key", json!({"api_key": token})),
            Auth::ServiceApp(key) => (
                "oauth2",
                json!({"client_id": CLIENT_ID, "private_key": key.private_key_pem}),
            ),
        };
        connection.auth_mode = Some(kind.to_owned());
        let fields: Map<String, Value> = fields.as_object().cloned().unwrap();
        let held = HeldCredential::new(
            local_broker(),
            connector.manifest(),
            Some(kind),
            &connection,
            fields,
        )
        .unwrap();
        Self {
            okta,
            connector,
            connection,
            calls: provider_client(held),
            store,
        }
    }

    async fn with_api_token() -> Self {
        Self::start(
            OktaOptions {
                api_token: Some(API_TOKEN.into()),
                ..Default::default()
            },
            Auth::ApiToken(API_TOKEN),
        )
        .await
    }

    fn cx(&self) -> CallContext<'_> {
        CallContext {
            calls: &self.calls,
            connection: &self.connection,
        }
    }

    async fn sync(&self, stream: &str) -> SyncCounts {
        self.try_sync(stream).await.unwrap()
    }

    async fn try_sync(&self, stream: &str) -> Result<SyncCounts, sync::SyncError> {
        self.store
            .sync(&self.connector, &self.calls, &self.connection, stream)
            .await
    }

    /// The live records of `stream` by primary key.
    async fn stored(&self, stream: &str) -> Records {
        self.store.stored(stream).await
    }
}

fn by_id(values: Vec<Value>, key: &str) -> Records {
    values
        .into_iter()
        .map(|value| (value[key].as_str().unwrap().to_owned(), value))
        .collect()
}

/// `(parent id, record)` pairs as a partitioned stream stores them: the parent's id in
/// `field`, keyed `{parent}/{id}`.
fn partitioned(pairs: Vec<(String, Value)>, field: &str) -> Records {
    pairs
        .into_iter()
        .map(|(parent, mut record)| {
            record[field] = json!(parent);
            let key = format!("{parent}/{}", record["id"].as_str().unwrap());
            (key, record)
        })
        .collect()
}

/// Every stream's records as the org holds them now.
fn expected(okta: &OktaStandIn) -> BTreeMap<String, Records> {
    BTreeMap::from([
        ("users".to_owned(), by_id(okta.users_json(), "id")),
        ("groups".to_owned(), by_id(okta.groups_json(), "id")),
        (
            "group_members".to_owned(),
            partitioned(okta.members_json(), "group_id"),
        ),
        (
            "user_factors".to_owned(),
            partitioned(okta.factors_json(), "user_id"),
        ),
        ("applications".to_owned(), by_id(okta.apps_json(), "id")),
        ("system_log".to_owned(), by_id(okta.log_json(), "uuid")),
    ])
}

/// A profile change, a suspension, a newcomer in a group with an active factor.
fn change(okta: &OktaStandIn) -> BTreeMap<String, Records> {
    okta.advance(Duration::from_secs(120));
    let ids: Vec<String> = okta
        .users_json()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    okta.update_user(&ids[2], |user| user.last_name = "Renamed".into());
    okta.update_user(&ids[4], |user| user.status = UserStatus::Suspended);
    let ada = okta.add_user("Ada", "Lovelace", "ada@example.test");
    let group = okta.groups_json()[0]["id"].as_str().unwrap().to_owned();
    okta.add_member(&group, &ada.id);
    okta.enroll_factor(&ada.id, "push", "ACTIVE");
    expected(okta)
}

/// The newest log event of `event_type`, in an event hook delivery.
fn hook_for(okta: &OktaStandIn, event_type: &str) -> Value {
    let event = okta
        .log_events()
        .into_iter()
        .rev()
        .find(|event| event.event_type == event_type)
        .unwrap_or_else(|| panic!("no {event_type} event"));
    okta.event_hook(&[event]).body
}

fn first_user_with(okta: &OktaStandIn, status: &str) -> String {
    okta.users_json()
        .into_iter()
        .find(|user| user["status"] == status)
        .map(|user| user["id"].as_str().unwrap().to_owned())
        .unwrap()
}

#[tokio::test]
async fn the_okta_manifest_conforms_against_the_stand_in() {
    let org = Org::with_api_token().await;
    let okta = org.okta.clone();
    let active = first_user_with(&okta, "ACTIVE");
    let suspended = first_user_with(&okta, "SUSPENDED");
    okta.update_user(&active, |user| user.first_name = "Updated".into());
    let (group, member) = okta.members_json().remove(0);
    let member = member["id"].as_str().unwrap().to_owned();
    let kit = conformance(&org.connector, org.cx(), expected(&okta));
    let changed = okta.clone();
    // The newest `event_type` event in a delivery, and the stream it must sync.
    let hook_syncing = |event_type: &str, stream: &str| {
        WebhookSample::new(event_type, hook_for(&okta, event_type)).syncs([stream])
    };
    let report = kit
        .between_reads(move || change(&changed))
        .webhook(hook_syncing("user.lifecycle.create", "users"))
        .webhook(hook_syncing("user.account.update_profile", "users"))
        .webhook(hook_syncing("group.user_membership.add", "group_members"))
        .webhook(hook_syncing("user.mfa.factor.activate", "user_factors"))
        .webhook(WebhookSample::new("user.session.start", json!({})))
        .action(ActionSample::new(
            "suspend_user",
            json!({"user_id": active}),
        ))
        .action(ActionSample::new(
            "unsuspend_user",
            json!({"user_id": suspended}),
        ))
        .action(ActionSample::new(
            "remove_group_member",
            json!({"group_id": group, "user_id": member}),
        ))
        .action(
            ActionSample::new("suspend_user", json!({"user_id": "../../groups"}))
                .failing_with("invalid_input"),
        )
        .run()
        .await;
    if let Err(failure) = report {
        // One line per kind of problem, with how many records have it.
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for problem in &failure.problems {
            let line = format!(
                "{:?} {:?} {:?} {:?}: {}",
                problem.kind, problem.stream, problem.read, problem.pointer, problem.message
            );
            *kinds.entry(line).or_default() += 1;
        }
        panic!("{failure}\nby kind: {kinds:#?}");
    }
}

#[tokio::test]
async fn a_second_users_sync_asks_okta_for_changes_since_the_first() {
    let org = Org::with_api_token().await;
    let first = org.sync("users").await;
    assert_eq!(first.added, USERS);
    assert_eq!(first.pages, 2, "200 users a page");
    assert_eq!(
        org.stored("users").await,
        by_id(org.okta.users_json(), "id")
    );
    let newest = org
        .okta
        .users_json()
        .iter()
        .map(|u| u["lastUpdated"].as_str().unwrap().to_owned())
        .max()
        .unwrap();

    org.okta.advance(Duration::from_secs(600));
    let id = first_user_with(&org.okta, "ACTIVE");
    org.okta
        .update_user(&id, |user| user.first_name = "Changed".into());
    org.okta.clear_requests();
    let second = org.sync("users").await;
    assert_eq!((second.added, second.updated, second.deleted), (0, 1, 0));
    assert_eq!(
        org.stored("users").await,
        by_id(org.okta.users_json(), "id")
    );

    // The filter Okta wants: milliseconds and `Z`, a minute before the newest change seen.
    let newest =
        time::OffsetDateTime::parse(&newest, &time::format_description::well_known::Rfc3339)
            .unwrap();
    let since = newest - time::Duration::minutes(1);
    let expected = format!(
        "lastUpdated gt \"{}\"",
        since
            .format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
            ))
            .unwrap()
    );
    let requests = org.okta.requests();
    assert_eq!(requests.len(), 1);
    let query: BTreeMap<String, String> =
        url::form_urlencoded::parse(requests[0].query.as_deref().unwrap().as_bytes())
            .into_owned()
            .collect();
    assert_eq!(query.get("filter"), Some(&expected));
    assert_eq!(query.get("limit").map(String::as_str), Some("200"));
    assert_eq!(
        requests[0].headers.get("authorization").map(String::as_str),
        Some("SSWS")
    );
}

#[tokio::test]
async fn memberships_and_factors_are_read_per_parent_with_its_id() {
    let org = Org::with_api_token().await;
    org.sync("group_members").await;
    assert_eq!(
        org.stored("group_members").await,
        partitioned(org.okta.members_json(), "group_id")
    );
    org.sync("user_factors").await;
    let factors = org.stored("user_factors").await;
    assert_eq!(factors, partitioned(org.okta.factors_json(), "user_id"));
    // Users 8, 16, … have no factor; 4, 12, … only a pending one.
    let active = factors.values().filter(|f| f["status"] == "ACTIVE").count();
    assert_eq!(active as u64, USERS - USERS / 4);

    // A membership removed at Okta is gone after the next (full) read.
    let (group, member) = org.okta.members_json().remove(0);
    let member = member["id"].as_str().unwrap().to_owned();
    org.connector
        .execute_action(
            org.cx(),
            "remove_group_member",
            &json!({"group_id": group, "user_id": member}),
            None,
        )
        .await
        .unwrap();
    let counts = org.sync("group_members").await;
    assert_eq!(counts.deleted, 1);
    assert!(
        !org.stored("group_members")
            .await
            .contains_key(&format!("{group}/{member}"))
    );
}

#[tokio::test]
async fn the_system_log_is_polled_until_an_empty_page_then_from_the_newest_event() {
    let org = Org::with_api_token().await;
    let first = org.sync("system_log").await;
    assert_eq!(first.added as usize, org.okta.log_events().len());
    // Okta links onwards from every polling page; the empty one ends the read.
    let logs: Vec<_> = org
        .okta
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v1/logs")
        .collect();
    assert!(logs.len() >= 2);
    assert!(
        logs[0]
            .query
            .as_deref()
            .unwrap()
            .contains("sortOrder=ASCENDING")
    );
    assert!(!logs[0].query.as_deref().unwrap().contains("since="));

    org.okta.advance(Duration::from_secs(3_600));
    org.okta.add_user("Grace", "Hopper", "grace@example.test");
    org.okta.clear_requests();
    let second = org.sync("system_log").await;
    assert_eq!(second.added, 1, "only the new event is new");
    let asked = org.okta.requests()[0].query.clone().unwrap();
    assert!(asked.contains("since="), "{asked}");
    assert_eq!(
        org.stored("system_log").await,
        by_id(org.okta.log_json(), "uuid")
    );
}

#[tokio::test]
async fn an_api_token_is_sent_as_ssws_and_a_wrong_one_is_auth_failed() {
    let org = Org::with_api_token().await;
    let report = org.connector.test_connection(org.cx()).await.unwrap();
    assert!(report.success, "{report:?}");
    assert!(report.permissions_missing.is_empty());
    let sent = &org.okta.requests()[0];
    assert_eq!(
        (sent.path.as_str(), sent.query.as_deref()),
        ("/api/v1/users", Some("limit=1"))
    );
    assert_eq!(
        sent.headers.get("authorization").map(String::as_str),
        Some("SSWS")
    );

    let wrong = Org::start(
        OktaOptions {
            api_token: Some(API_TOKEN.into()),
            ..Default::default()
        },
        Auth::ApiToken("00not-the-token"),
    )
    .await;
    let report = wrong.connector.test_connection(wrong.cx()).await.unwrap();
    assert!(!report.success);
    assert_eq!(report.error_code.as_deref(), Some("auth_failed"));
    assert!(!format!("{report:?}").contains("00not-the-token"));
    let error = wrong.try_sync("users").await.unwrap_err();
    assert_eq!(error.code(), "auth_failed", "{error}");
    assert!(error.to_string().contains("E0000011"), "{error}");
}

fn service_app(key: &ServiceAppKey, scopes: &[&str]) -> OktaOptions {
    OktaOptions {
        service_apps: vec![ServiceApp {
            client_id: CLIENT_ID.into(),
            public_key_pem: key.public_key_pem.clone(),
            key_id: None,
            granted_scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn a_service_app_signs_an_assertion_and_uses_one_cached_token() {
    let key = ServiceAppKey::generate();
    let org = Org::start(service_app(&key, &ALL_SCOPES), Auth::ServiceApp(key)).await;
    let report = org.connector.test_connection(org.cx()).await.unwrap();
    assert!(report.success, "{report:?}");
    // The token answer's `scope` says what the app was granted.
    assert_eq!(report.permissions_verified, ALL_SCOPES);
    assert!(report.permissions_missing.is_empty(), "{report:?}");
    org.sync("users").await;
    org.sync("groups").await;
    assert_eq!(
        org.stored("users").await,
        by_id(org.okta.users_json(), "id")
    );
    assert_eq!(org.okta.token_grants(), 1, "the token is cached");
    let requests = org.okta.requests();
    assert_eq!(requests[0].path, "/oauth2/v1/token");
    assert!(
        requests
            .iter()
            .filter(|r| r.path.starts_with("/api/"))
            .all(|r| r.headers.get("authorization").map(String::as_str) == Some("Bearer"))
    );
}

#[tokio::test]
async fn a_service_app_with_a_wrong_key_or_missing_scope_is_refused() {
    let registered = ServiceAppKey::generate();
    let other = ServiceAppKey::generate();
    let org = Org::start(
        service_app(&registered, &ALL_SCOPES),
        Auth::ServiceApp(other),
    )
    .await;
    let report = org.connector.test_connection(org.cx()).await.unwrap();
    assert_refused(&report, "invalid_client");
    assert_eq!(org.okta.token_grants(), 0);

    let key = ServiceAppKey::generate();
    let narrow = Org::start(
        service_app(&key, &["okta.users.read", "okta.groups.read"]),
        Auth::ServiceApp(key),
    )
    .await;
    let report = narrow.connector.test_connection(narrow.cx()).await.unwrap();
    assert_refused(&report, "invalid_scope");
    assert_eq!(narrow.okta.token_grants(), 0);
}

/// The token endpoint's refusal reaches the check report as `auth_failed`, with its OAuth
/// error code in the message.
fn assert_refused(report: &switchyard_connectors::CheckReport, oauth_error: &str) {
    assert!(!report.success);
    assert_eq!(
        report.error_code.as_deref(),
        Some("auth_failed"),
        "{report:?}"
    );
    let message = report.error_message.as_deref().unwrap_or_default();
    assert!(message.contains(oauth_error), "{report:?}");
}

#[tokio::test]
async fn a_429_waits_for_the_reset_and_the_read_goes_on() {
    let org = Org::with_api_token().await;
    org.okta.limit_next("/api/v1/users", 1);
    let counts = org.sync("users").await;
    assert_eq!(counts.added, USERS);
    let statuses: Vec<u16> = org
        .okta
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/users")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [429, 200, 200]);
}

#[tokio::test]
async fn actions_send_okta_lifecycle_and_membership_calls() {
    let org = Org::with_api_token().await;
    let id = first_user_with(&org.okta, "ACTIVE");
    org.okta.clear_requests();
    let output = org
        .connector
        .execute_action(org.cx(), "suspend_user", &json!({"user_id": id}), None)
        .await
        .unwrap();
    assert_eq!(output, Value::Null, "Okta answers 200 without a body");
    assert_eq!(org.okta.user(&id).unwrap().status, UserStatus::Suspended);
    let sent = &org.okta.requests()[0];
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        (
            "POST",
            format!("/api/v1/users/{id}/lifecycle/suspend").as_str()
        )
    );

    // Okta refuses to suspend a user who is not active.
    let error = org
        .connector
        .execute_action(org.cx(), "suspend_user", &json!({"user_id": id}), None)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "provider_error");
    assert!(error.to_string().contains("E0000001"), "{error}");

    org.connector
        .execute_action(org.cx(), "unsuspend_user", &json!({"user_id": id}), None)
        .await
        .unwrap();
    assert_eq!(org.okta.user(&id).unwrap().status, UserStatus::Active);
    let sent = org.okta.requests().pop().unwrap();
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str(), sent.status),
        (
            "POST",
            format!("/api/v1/users/{id}/lifecycle/unsuspend").as_str(),
            200
        )
    );

    let (group, member) = org.okta.members_json().remove(0);
    let member = member["id"].as_str().unwrap().to_owned();
    org.connector
        .execute_action(
            org.cx(),
            "remove_group_member",
            &json!({"group_id": group, "user_id": member}),
            None,
        )
        .await
        .unwrap();
    let sent = org.okta.requests().pop().unwrap();
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str(), sent.status),
        (
            "DELETE",
            format!("/api/v1/groups/{group}/users/{member}").as_str(),
            204
        )
    );

    let error = org
        .connector
        .execute_action(
            org.cx(),
            "remove_group_member",
            &json!({"group_id": "00gnosuchgroup000x0g4", "user_id": id}),
            None,
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("E0000007"), "{error}");
    let last = org.okta.requests().pop().unwrap();
    assert_eq!(last.method, "DELETE");
    assert_eq!(last.status, 404);
}

#[tokio::test]
async fn event_hook_types_sync_the_matching_streams() {
    let org = Org::with_api_token().await;
    let cases = [
        ("user.lifecycle.suspend", vec!["users"]),
        ("user.lifecycle.deactivate", vec!["users"]),
        ("user.account.update_profile", vec!["users"]),
        ("group.user_membership.remove", vec!["group_members"]),
        ("user.mfa.factor.deactivate", vec!["user_factors"]),
        ("user.session.start", vec![]),
    ];
    for (event_type, streams) in cases {
        let event = WebhookEvent {
            event_type: Some(event_type.into()),
            headers: Vec::new(),
            body: json!({}),
        };
        let outcome = org
            .connector
            .handle_webhook(org.cx(), &event)
            .await
            .unwrap();
        assert_eq!(outcome.sync, streams, "{event_type}");
        assert!(!outcome.acknowledged_only);
    }
}

/// What the stand-in answers on the wire, as Okta does: separate `Link` headers, the
/// rate-limit headers on every answer, and Okta's error bodies.
#[tokio::test]
async fn the_stand_in_answers_in_okta_wire_format() {
    let key = ServiceAppKey::generate();
    let okta = OktaStandIn::start(OktaOptions {
        api_token: Some(API_TOKEN.into()),
        ..service_app(&key, &["okta.users.read"])
    })
    .await
    .unwrap();
    okta.seed(3, 1);
    let http = reqwest::Client::new();
    let get = |path: &str, auth: Option<String>| {
        let mut request = http.get(format!("{}{path}", okta.url()));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.send()
    };
    let ssws = || Some(format!("SSWS {API_TOKEN}"));

    let page = get("/api/v1/users?limit=2", ssws()).await.unwrap();
    assert_eq!(page.status(), 200);
    let links: Vec<&str> = page
        .headers()
        .get_all("link")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(links.len(), 2, "{links:?}");
    assert!(
        links[0].ends_with("/api/v1/users?limit=2>; rel=\"self\""),
        "{links:?}"
    );
    assert!(
        links[1].contains("after=") && links[1].ends_with("rel=\"next\""),
        "{links:?}"
    );
    for name in [
        "x-rate-limit-limit",
        "x-rate-limit-remaining",
        "x-rate-limit-reset",
    ] {
        assert!(page.headers().contains_key(name), "{name}");
    }

    let error = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        (status, body["errorCode"].as_str().unwrap().to_owned())
    };
    let missing = get("/api/v1/users", None).await.unwrap();
    assert_eq!(error(missing).await, (401, "E0000005".to_owned()));
    let wrong = get("/api/v1/users", Some("SSWS 00wrong".into()))
        .await
        .unwrap();
    assert_eq!(error(wrong).await, (401, "E0000011".to_owned()));
    let filter = get(
        "/api/v1/users?filter=lastUpdated%20gt%20%222024-01-01T00:00:00Z%22",
        ssws(),
    )
    .await
    .unwrap();
    assert_eq!(
        error(filter).await,
        (400, "E0000031".to_owned()),
        "milliseconds are required"
    );

    // A service app's token: its scopes only, and no user behind `/users/me`.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "aud": format!("{}/oauth2/v1/token", okta.url()),
        "iat": now,
        "exp": now + 300,
        "jti": "wire-format-test",
    });
    let assertion = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(key.private_key_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "client_credentials"),
            ("scope", "okta.users.read"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
        ])
        .finish();
    let grant = || {
        http.post(format!("{}/oauth2/v1/token", okta.url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.clone())
            .send()
    };
    let token: Value = grant().await.unwrap().json().await.unwrap();
    // An assertion (its `jti`) is good for one token.
    let replayed = grant().await.unwrap();
    assert_eq!(replayed.status(), 401);
    let refusal: Value = replayed.json().await.unwrap();
    assert_eq!(refusal["error"], "invalid_client");
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], 3600);
    assert_eq!(token["scope"], "okta.users.read");
    let bearer = || {
        Some(format!(
            "Bearer {}",
            token["access_token"].as_str().unwrap()
        ))
    };
    assert_eq!(get("/api/v1/users", bearer()).await.unwrap().status(), 200);
    let me = get("/api/v1/users/me", bearer()).await.unwrap();
    assert_eq!(error(me).await, (404, "E0000007".to_owned()));
    let groups = get("/api/v1/groups", bearer()).await.unwrap();
    let challenge = groups.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    assert_eq!(error(groups).await, (403, "E0000006".to_owned()));

    okta.limit_next("/api/v1/users", 1);
    let limited = get("/api/v1/users", ssws()).await.unwrap();
    assert_eq!(limited.headers()["x-rate-limit-remaining"], "0");
    assert!(!limited.headers().contains_key("retry-after"));
    assert_eq!(error(limited).await, (429, "E0000047".to_owned()));
}

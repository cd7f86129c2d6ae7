//! The built-in Slack connector against the Slack stand-in: conformance, each stream's first
//! sync and a change, both auth modes, Slack's `ok:false` errors, rate limits, actions and
//! Events API routing.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_connectors::conformance::{ActionSample, Conformance, Records, WebhookSample};
use switchyard_connectors::sync::{self, SyncCounts};
use switchyard_connectors::{CallContext, ConnectionContext, Connector, WebhookEvent};
use switchyard_http::{InMemoryBackend, ProviderClient};
use switchyard_test_support::providers::slack::{
    self, BOT_TOKEN, SlackChannel, SlackOptions, SlackStandIn, SlackUser, events, workspace,
};
use switchyard_test_support::standin::{BearerToken, provider_client};

use crate::support::{Store, builtin_connector};

const USERS: u32 = 45;
const CHANNELS: u32 = 6;

type Calls = ProviderClient<InMemoryBackend, BearerToken>;

/// The stand-in, a call stack presenting `token`, a stored connection and a record store.
struct Slack {
    standin: SlackStandIn,
    calls: Calls,
    connection: ConnectionContext,
    store: Store,
}

impl Slack {
    async fn start() -> Self {
        Self::start_with(SlackOptions::default(), BOT_TOKEN).await
    }

    async fn start_with(options: SlackOptions, token: &str) -> Self {
        let standin = SlackStandIn::start(options).await.unwrap();
        standin.seed(USERS, CHANNELS);
        let store = Store::start("slack").await;
        Self {
            connection: store.context(
                json!({"team_id": workspace::TEAM_ID}),
                Some(standin.api_url()),
            ),
            calls: provider_client(BearerToken(token.to_owned())),
            standin,
            store,
        }
    }

    fn cx(&self) -> CallContext<'_> {
        CallContext {
            calls: &self.calls,
            connection: &self.connection,
        }
    }

    async fn sync(&self, connector: &dyn Connector, stream: &str) -> SyncCounts {
        self.try_sync(connector, stream).await.unwrap()
    }

    async fn try_sync(
        &self,
        connector: &dyn Connector,
        stream: &str,
    ) -> Result<SyncCounts, sync::SyncError> {
        self.store
            .sync(connector, &self.calls, &self.connection, stream)
            .await
    }

    /// The live records of `stream` by primary key.
    async fn stored(&self, stream: &str) -> Records {
        self.store.stored(stream).await
    }
}

fn users(standin: &SlackStandIn) -> Records {
    standin
        .listed_users()
        .into_iter()
        .map(|u| (u["id"].as_str().unwrap().to_owned(), u))
        .collect()
}

fn channels(standin: &SlackStandIn) -> Records {
    standin
        .listed_channels(false)
        .into_iter()
        .map(|c| (c["id"].as_str().unwrap().to_owned(), c))
        .collect()
}

/// Every membership of the conversations the bot can list, keyed `{channel}/{user}` as the
/// `conversation_members` stream keys them.
fn memberships(standin: &SlackStandIn) -> Records {
    let mut all = Records::new();
    for channel in standin.listed_channels(false) {
        let channel = channel["id"].as_str().unwrap();
        for user in standin.members(channel) {
            all.insert(
                format!("{channel}/{user}"),
                json!({"value": user, "channel_id": channel}),
            );
        }
    }
    all
}

fn new_user(n: u32) -> SlackUser {
    SlackUser::new(
        &slack::user_id(n),
        &format!("new{n}"),
        &format!("New Person{n}"),
        &format!("new{n}@example.test"),
    )
}

/// What a member joining or leaving a channel syncs.
const MEMBERSHIP: &[&str] = &["conversations", "conversation_members"];

/// Every event type the manifest declares, with a delivery body and the streams it syncs.
fn webhook_samples(standin: &SlackStandIn) -> Vec<WebhookSample> {
    let user = standin.user(&slack::user_id(1)).unwrap();
    let public = standin.channel(&slack::channel_id(2)).unwrap();
    let private = standin.channel(&slack::channel_id(3)).unwrap();
    let inner: [(Value, &[&str]); 13] = [
        // These two carry the member whole: stored, not synced (see `user_events`).
        (events::team_join(&user), &[]),
        (events::user_change(&user), &[]),
        (events::channel_created(&public), &["conversations"]),
        (events::channel_rename(&public), &["conversations"]),
        (
            events::channel_archive(&public, &user.id),
            &["conversations"],
        ),
        (
            json!({"type": "channel_unarchive", "channel": public.id, "user": user.id}),
            &["conversations"],
        ),
        (
            json!({"type": "channel_deleted", "channel": public.id}),
            &["conversations"],
        ),
        (events::channel_rename(&private), &["conversations"]),
        (
            events::channel_archive(&private, &user.id),
            &["conversations"],
        ),
        (
            json!({"type": "group_unarchive", "channel": private.id}),
            &["conversations"],
        ),
        (
            json!({"type": "group_deleted", "channel": private.id}),
            &["conversations"],
        ),
        (events::member_joined_channel(&public, &user.id), MEMBERSHIP),
        (events::member_left_channel(&public, &user.id), MEMBERSHIP),
    ];
    inner
        .into_iter()
        .map(|(event, streams)| {
            let delivery = standin.event(event);
            let kind = delivery.body["event"]["type"].as_str().unwrap().to_owned();
            let stored = match kind.as_str() {
                "team_join" | "user_change" => vec![
                    delivery.body["event"]["user"]["id"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                ],
                _ => Vec::new(),
            };
            let emitted = match kind.as_str() {
                "team_join" => vec!["slack.user.created"],
                "user_change" => vec!["slack.user.updated"],
                _ => Vec::new(),
            };
            let sample = WebhookSample::new(kind, delivery.body)
                .syncs(streams.iter().copied())
                .emits(emitted);
            if stored.is_empty() {
                sample
            } else {
                sample.stores("users", stored)
            }
        })
        .collect()
}

#[tokio::test]
async fn the_slack_connector_conforms() {
    let slack = Slack::start().await;
    let connector = builtin_connector("slack");
    let changed = slack.standin.clone();
    let samples = webhook_samples(&slack.standin);
    let mut kit = Conformance::for_manifest(&connector, slack.cx())
        .expect_records("users", users(&slack.standin))
        .expect_records("conversations", channels(&slack.standin))
        .expect_records("conversation_members", memberships(&slack.standin))
        .between_reads(move || {
            // A new member, a changed profile, a deactivation; a new channel, a rename, an
            // archive; one member joins a channel and one leaves.
            changed.upsert_user(new_user(90));
            changed.change_user(&slack::user_id(3), |u| u.real_name = "Renamed Three".into());
            changed.change_user(&slack::user_id(4), |u| u.deleted = true);
            changed.upsert_channel(SlackChannel::new("C00000090", "launch", false), true);
            changed.rename_channel(&slack::channel_id(2), "channel-two");
            changed.archive_channel(&slack::channel_id(4));
            changed.join(&slack::channel_id(2), &slack::user_id(1));
            changed.leave(&slack::channel_id(1), &slack::user_id(2));
            BTreeMap::from([
                ("users".to_owned(), users(&changed)),
                ("conversations".to_owned(), channels(&changed)),
                ("conversation_members".to_owned(), memberships(&changed)),
            ])
        })
        .action(ActionSample::new(
            "post_message",
            json!({"channel": slack::channel_id(1), "text": "Deploy finished"}),
        ))
        .action(ActionSample::new(
            "post_message",
            json!({
                "channel": slack::channel_id(1),
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*Deploy* finished"}}],
                "thread_ts": "1704067200.000001",
            }),
        ))
        .action(
            ActionSample::new("post_message", json!({"channel": "C0NOWHERE", "text": "hi"}))
                .failing_with("provider_error"),
        )
        .action(
            ActionSample::new("post_message", json!({"channel": slack::channel_id(1)}))
                .failing_with("invalid_input"),
        )
        .action(ActionSample::new(
            "open_conversation",
            json!({"users": [slack::user_id(1)]}),
        ))
        .action(
            ActionSample::new("open_conversation", json!({"users": ["U0NOBODY0"]}))
                .failing_with("provider_error"),
        );
    for sample in samples {
        kit = kit.webhook(sample);
    }
    let report = kit
        .run()
        .await
        .unwrap_or_else(|failure| panic!("{failure}"));
    let check = report.check.unwrap();
    assert!(check.success);
    assert!(check.permissions_missing.is_empty(), "{check:?}");
}

#[tokio::test]
async fn a_first_sync_stores_the_workspace_and_a_second_sees_exactly_the_change() {
    let slack = Slack::start().await;
    let connector = builtin_connector("slack");

    let first = slack.sync(&connector, "users").await;
    assert_eq!(first.added, u64::from(USERS));
    assert_eq!(slack.stored("users").await, users(&slack.standin));
    // 45 users at 200 a page: one page, asked with `limit=200`.
    let asked: Vec<_> = slack
        .standin
        .calls()
        .into_iter()
        .filter(|c| c.method == "users.list")
        .collect();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].args["limit"], "200");

    slack.standin.advance(Duration::from_secs(60));
    slack
        .standin
        .change_user(&slack::user_id(6), |u| u.is_admin = true);
    slack.standin.upsert_user(new_user(70));
    let second = slack.sync(&connector, "users").await;
    assert_eq!(
        (
            second.added,
            second.updated,
            second.deleted,
            second.unchanged
        ),
        (1, 1, 0, u64::from(USERS) - 1)
    );
    assert_eq!(slack.stored("users").await, users(&slack.standin));

    let first = slack.sync(&connector, "conversations").await;
    assert_eq!(
        slack.stored("conversations").await,
        channels(&slack.standin)
    );
    // The bot is not in the last channel, a private one when its number is a multiple of
    // three: six channels, one of them private and hidden.
    assert_eq!(first.added, u64::from(CHANNELS) - 1);
    slack
        .standin
        .rename_channel(&slack::channel_id(2), "renamed");
    let second = slack.sync(&connector, "conversations").await;
    assert_eq!((second.added, second.updated, second.deleted), (0, 1, 0));
    assert_eq!(
        slack.stored("conversations").await[&slack::channel_id(2)]["previous_names"],
        json!(["channel-2"])
    );
}

#[tokio::test]
async fn conversation_members_are_one_record_per_channel_and_member() {
    let slack = Slack::start().await;
    let connector = builtin_connector("slack");
    // One person in two channels is two memberships.
    let user = slack::user_id(7);
    slack.standin.join(&slack::channel_id(1), &user);
    slack.standin.join(&slack::channel_id(2), &user);

    let first = slack.sync(&connector, "conversation_members").await;
    let expected = memberships(&slack.standin);
    assert_eq!(slack.stored("conversation_members").await, expected);
    assert_eq!(first.added, expected.len() as u64);
    for channel in [slack::channel_id(1), slack::channel_id(2)] {
        assert_eq!(
            expected[&format!("{channel}/{user}")],
            json!({"value": user, "channel_id": channel})
        );
    }
    // One `conversations.members` read per listed conversation, none for the private channel
    // the bot is not in.
    let asked: Vec<String> = slack
        .standin
        .calls()
        .into_iter()
        .filter(|c| c.method == "conversations.members")
        .map(|c| c.args["channel"].as_str().unwrap().to_owned())
        .collect();
    let listed: Vec<String> = channels(&slack.standin).into_keys().collect();
    assert_eq!(asked, listed);

    // Leaving one channel removes that membership only, on the next full read.
    slack.standin.leave(&slack::channel_id(1), &user);
    let second = slack.sync(&connector, "conversation_members").await;
    assert_eq!(
        (second.added, second.updated, second.deleted),
        (0, 0, 1),
        "{second:?}"
    );
    let stored = slack.stored("conversation_members").await;
    assert_eq!(stored, memberships(&slack.standin));
    assert!(!stored.contains_key(&format!("{}/{user}", slack::channel_id(1))));
    assert!(stored.contains_key(&format!("{}/{user}", slack::channel_id(2))));
}

#[tokio::test]
async fn the_check_reports_the_scopes_the_token_lacks() {
    let slack = Slack::start().await;
    let limited = Slack::start_with(SlackOptions::default(), "xoxb-limited").await;
    limited
        .standin
        .add_token("xoxb-limited", &["users:read", "channels:read"]);
    let connector = builtin_connector("slack");

    let full = connector.test_connection(slack.cx()).await.unwrap();
    assert!(full.success, "{full:?}");
    assert_eq!(full.permissions_verified.len(), slack::ALL_SCOPES.len());
    assert!(full.permissions_missing.is_empty());
    let auth_test = slack.standin.requests();
    assert_eq!(
        (auth_test[0].method.as_str(), auth_test[0].path.as_str()),
        ("POST", "/api/auth.test")
    );
    assert_eq!(auth_test[0].headers["authorization"], "Bearer");

    let partial = connector.test_connection(limited.cx()).await.unwrap();
    assert!(partial.success);
    assert_eq!(
        partial.permissions_verified,
        ["users:read", "channels:read"]
    );
    assert_eq!(
        partial.permissions_missing,
        ["users:read.email", "groups:read", "chat:write", "im:write"]
    );
    // Without `users:read.email` Slack leaves emails out, so identities have none.
    limited.sync(&connector, "users").await;
    let stored = limited.stored("users").await;
    assert!(stored.values().all(|u| u["profile"].get("email").is_none()));
    // Without `groups:read` private channels cannot be listed: `missing_scope`.
    let error = limited
        .try_sync(&connector, "conversations")
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("permission_denied") && text.contains("groups:read"),
        "{text}"
    );
}

#[tokio::test]
async fn a_wrong_or_revoked_token_is_auth_failed_everywhere() {
    let connector = builtin_connector("slack");
    let wrong = Slack::start_with(SlackOptions::default(), "xoxb-not-a-real-token").await;
    let report = connector.test_connection(wrong.cx()).await.unwrap();
    assert!(!report.success);
    assert_eq!(report.error_code.as_deref(), Some("auth_failed"));
    let error = wrong.try_sync(&connector, "users").await.unwrap_err();
    assert!(error.to_string().contains("invalid_auth"), "{error}");
    let error = connector
        .execute_action(
            wrong.cx(),
            "post_message",
            &json!({"channel": "C00000001", "text": "x"}),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "auth_failed");
    // Slack answered all of them HTTP 200 with `ok: false`.
    assert!(wrong.standin.requests().iter().all(|r| r.status == 200));

    let revoked = Slack::start().await;
    revoked.standin.revoke_token(BOT_TOKEN);
    let report = connector.test_connection(revoked.cx()).await.unwrap();
    assert_eq!(report.error_code.as_deref(), Some("auth_failed"));
    assert!(report.error_message.unwrap().contains("token_revoked"));
}

#[tokio::test]
async fn an_oauth_access_token_is_sent_as_a_bearer_token() {
    // The oauth2 mode's stored `access_token` goes out as `Authorization: Bearer`, exactly as
    // a bot token does; the stand-in accepts only the token it issued.
    let access_token = "xoxb-oauth-v2-access-token";
    let options = SlackOptions {
        tokens: vec![(
            access_token.to_owned(),
            slack::ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        )],
        ..SlackOptions::default()
    };
    let slack = Slack::start_with(options, access_token).await;
    let connector = builtin_connector("slack");
    let modes: Vec<_> = connector.manifest().auth.iter().map(|a| a.kind()).collect();
    assert_eq!(modes, ["bearer", "oauth2"]);
    assert!(connector.test_connection(slack.cx()).await.unwrap().success);
    slack.sync(&connector, "users").await;
    assert_eq!(slack.stored("users").await.len(), USERS as usize);
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_and_retried() {
    let slack = Slack::start().await;
    let connector = builtin_connector("slack");
    slack.standin.rate_limit_next("users.list", 1, 1);
    slack.sync(&connector, "users").await;
    // The stand-in saw the retry no sooner than its `Retry-After: 1` allowed, on its own clock.
    let arrivals: Vec<_> = slack
        .standin
        .arrivals()
        .into_iter()
        .filter(|a| a.path == "/api/users.list")
        .collect();
    assert_eq!(arrivals.len(), 2);
    let pause = arrivals[1].at.duration_since(arrivals[0].at);
    assert!(
        pause >= Duration::from_secs(1),
        "retried after {pause:?}, before Retry-After"
    );
    let statuses: Vec<u16> = slack
        .standin
        .requests()
        .iter()
        .filter(|r| r.path == "/api/users.list")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [429, 200]);
    assert_eq!(slack.stored("users").await, users(&slack.standin));
}

#[tokio::test]
async fn the_tier_budget_of_the_stand_in_answers_like_slack() {
    // Slack's own 429: Retry-After in seconds and `ratelimited` in the body, no other
    // rate-limit headers.
    let slack = Slack::start().await;
    let client = reqwest::Client::new();
    let url = format!("{}/users.list?limit=1", slack.standin.api_url());
    let mut last = None;
    for _ in 0..21 {
        last = Some(
            client
                .get(&url)
                .bearer_auth(BOT_TOKEN)
                .send()
                .await
                .unwrap(),
        );
    }
    let last = last.unwrap();
    assert_eq!(last.status(), 429);
    let wait: u64 = last.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait));
    assert!(last.headers().get("x-ratelimit-remaining").is_none());
    let body: Value = last.json().await.unwrap();
    assert_eq!(body, json!({"ok": false, "error": "ratelimited"}));
}

#[tokio::test]
async fn post_message_sends_slacks_request_and_maps_its_errors() {
    let slack = Slack::start().await;
    let connector = builtin_connector("slack");
    let output = connector
        .execute_action(
            slack.cx(),
            "post_message",
            &json!({"channel": slack::channel_id(2), "text": "Hello from Switchyard"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(output["ok"], true);
    assert_eq!(output["channel"], slack::channel_id(2));
    let posted = slack.standin.messages();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].text.as_deref(), Some("Hello from Switchyard"));
    assert_eq!(output["ts"], posted[0].ts.as_str());
    let call = slack.standin.calls().pop().unwrap();
    assert_eq!(call.method, "chat.postMessage");
    assert_eq!(
        call.content_type.as_deref(),
        Some("application/json; charset=utf-8")
    );
    // With the charset Slack has nothing to warn about.
    assert!(output.get("warning").is_none(), "{output}");
    assert_eq!(call.args["channel"], slack::channel_id(2));
    assert_eq!(call.args["text"], "Hello from Switchyard");
    // Inputs not given are left out of the body, not sent as null.
    assert_eq!(
        call.args.keys().map(String::as_str).collect::<Vec<_>>(),
        ["channel", "text"]
    );
    let request = slack.standin.requests().pop().unwrap();
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/api/chat.postMessage")
    );

    // A reply in a thread, with blocks and no text.
    let blocks = json!([{"type": "section", "text": {"type": "plain_text", "text": "Threaded"}}]);
    connector
        .execute_action(
            slack.cx(),
            "post_message",
            &json!({"channel": slack::channel_id(2), "blocks": blocks, "thread_ts": posted[0].ts}),
            None,
        )
        .await
        .unwrap();
    let reply = slack.standin.messages().pop().unwrap();
    assert_eq!(reply.thread_ts, Some(posted[0].ts.clone()));
    assert_eq!(reply.blocks, Some(blocks));

    // Slack's refusals, all HTTP 200 `ok: false`.
    let refused = |input: Value| {
        let connector = &connector;
        let cx = slack.cx();
        async move {
            connector
                .execute_action(cx, "post_message", &input, None)
                .await
                .unwrap_err()
        }
    };
    // A public channel the bot was never added to.
    slack
        .standin
        .upsert_channel(SlackChannel::new("C00000077", "elsewhere", false), false);
    let not_in = refused(json!({"channel": "C00000077", "text": "x"})).await;
    assert_eq!(not_in.code(), "provider_error");
    assert!(not_in.to_string().contains("not_in_channel"), "{not_in}");
    slack.standin.archive_channel(&slack::channel_id(2));
    let archived = refused(json!({"channel": slack::channel_id(2), "text": "x"})).await;
    assert!(archived.to_string().contains("is_archived"), "{archived}");
    // Input that breaks the schema never reaches Slack.
    let before = slack.standin.requests().len();
    let invalid = refused(json!({"channel": slack::channel_id(1), "text": ""})).await;
    assert_eq!(invalid.code(), "invalid_input");
    assert_eq!(slack.standin.requests().len(), before);
}

#[tokio::test]
async fn post_message_without_chat_write_is_permission_denied() {
    let slack = Slack::start_with(SlackOptions::default(), "xoxb-reader").await;
    slack.standin.add_token("xoxb-reader", &["users:read"]);
    let error = builtin_connector("slack")
        .execute_action(
            slack.cx(),
            "post_message",
            &json!({"channel": slack::channel_id(1), "text": "x"}),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "permission_denied");
    assert!(error.to_string().contains("chat:write"), "{error}");
}

#[tokio::test]
async fn open_conversation_opens_a_direct_message_once() {
    let slack = Slack::start().await;
    let connector = builtin_connector("slack");
    let input = json!({"users": [slack::user_id(8)]});
    let first = connector
        .execute_action(slack.cx(), "open_conversation", &input, None)
        .await
        .unwrap();
    let dm = slack
        .standin
        .direct_message_with(&slack::user_id(8))
        .unwrap();
    assert_eq!(first, json!({"id": dm}));
    let again = connector
        .execute_action(slack.cx(), "open_conversation", &input, None)
        .await
        .unwrap();
    assert_eq!(again, first, "the same conversation");
    let call = slack.standin.calls().pop().unwrap();
    assert_eq!(call.method, "conversations.open");
    assert_eq!(call.args["users"], slack::user_id(8));
    // A group conversation sends the ids comma-separated.
    connector
        .execute_action(
            slack.cx(),
            "open_conversation",
            &json!({"users": [slack::user_id(1), slack::user_id(2)]}),
            None,
        )
        .await
        .unwrap_err();
    let call = slack.standin.calls().pop().unwrap();
    assert_eq!(
        call.args["users"],
        format!("{},{}", slack::user_id(1), slack::user_id(2))
    );
    assert_eq!(
        call.error.as_deref(),
        Some("missing_scope"),
        "mpim:write is not granted"
    );
    // Messages then go to the conversation.
    connector
        .execute_action(
            slack.cx(),
            "post_message",
            &json!({"channel": dm, "text": "Your access review is due"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(slack.standin.messages()[0].channel, dm);
}

#[tokio::test]
async fn events_trigger_the_matching_stream() {
    let slack = Slack::start().await;
    let connector = builtin_connector("slack");
    let cases = [
        // Without the member they usually carry, these two have nothing to store.
        ("team_join", vec![]),
        ("user_change", vec![]),
        ("channel_created", vec!["conversations"]),
        ("group_rename", vec!["conversations"]),
        ("member_joined_channel", MEMBERSHIP.to_vec()),
        ("member_left_channel", MEMBERSHIP.to_vec()),
        ("message", vec![]),
        ("app_mention", vec![]),
    ];
    for (kind, streams) in cases {
        let delivery = slack.standin.event(json!({"type": kind}));
        let outcome = connector
            .handle_webhook(
                slack.cx(),
                &WebhookEvent {
                    event_type: Some(kind.to_owned()),
                    headers: Vec::new(),
                    body: delivery.body,
                },
            )
            .await
            .unwrap();
        assert_eq!(outcome.sync, streams, "{kind}");
        assert!(!outcome.acknowledged_only);
    }
    let webhooks = connector.manifest().webhooks.as_ref().unwrap();
    assert_eq!(webhooks.scheme, "slack");
}

/// `team_join` and `user_change` carry the member as users.list lists it: the outcome stores
/// it into `users` and emits it; a member that breaks the stream's schema is refused, and
/// `users` is synced instead.
#[tokio::test]
async fn user_events_store_the_member_they_carry() {
    let slack = Slack::start().await;
    let connector = builtin_connector("slack");
    let mut user = slack.standin.user(&slack::user_id(3)).unwrap();
    user.real_name = "Renamed Three".into();
    for (event, emitted) in [
        (events::user_change(&user), "slack.user.updated"),
        (events::team_join(&new_user(91)), "slack.user.created"),
    ] {
        let delivery = slack.standin.event(event);
        let member = delivery.body["event"]["user"].clone();
        let outcome = connector
            .handle_webhook(
                slack.cx(),
                &WebhookEvent {
                    event_type: None,
                    headers: Vec::new(),
                    body: delivery.body,
                },
            )
            .await
            .unwrap();
        assert!(
            outcome.sync.is_empty() && outcome.refused.is_empty(),
            "{outcome:?}"
        );
        assert_eq!(outcome.records.len(), 1);
        assert_eq!(outcome.records[0].stream, "users");
        assert_eq!(outcome.records[0].upserts.len(), 1);
        assert_eq!(outcome.records[0].upserts[0].primary_key, member["id"]);
        assert_eq!(outcome.records[0].upserts[0].data, member);
        assert_eq!(outcome.emit.len(), 1);
        assert_eq!(outcome.emit[0].event_type, emitted);
        assert_eq!(outcome.emit[0].data, member);
    }

    let mut broken = events::user_change(&user);
    broken["user"]["id"] = json!("not-a-slack-id");
    broken["user"]["deleted"] = json!("no");
    let outcome = connector
        .handle_webhook(
            slack.cx(),
            &WebhookEvent {
                event_type: None,
                headers: Vec::new(),
                body: slack.standin.event(broken).body,
            },
        )
        .await
        .unwrap();
    assert!(
        outcome.records.iter().all(|r| r.upserts.is_empty()),
        "{outcome:?}"
    );
    assert_eq!(outcome.sync, ["users"]);
    assert_eq!(outcome.refused.len(), 1);
    let refused = &outcome.refused[0];
    assert_eq!(refused.primary_key.as_deref(), Some("not-a-slack-id"));
    let problems = refused.problems.join("; ");
    assert!(
        problems.contains("/id") && problems.contains("/deleted"),
        "{problems}"
    );
    // Where and which rule, never the values.
    assert!(
        !problems.contains("not-a-slack-id") && !problems.contains("\"no\""),
        "{problems}"
    );
    // The event still goes out.
    assert_eq!(outcome.emit.len(), 1);
}

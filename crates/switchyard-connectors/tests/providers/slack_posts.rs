//! Slack's `chat.postMessage` limits through the built-in connector: about one message a
//! second per channel (the manifest's `post_message` class, keyed by channel), and a 429 that
//! Slack documents as "nothing was posted" sent again after its `Retry-After`, while a 5xx is
//! never repeated. Assertions are made on what reached the stand-in, on its clock.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard_connectors::{CallContext, ConnectionContext, Connector, ConnectorError};
use switchyard_http::{InMemoryBackend, ProviderClient};
use switchyard_test_support::providers::slack::{
    self, BOT_TOKEN, ChannelPost, SlackOptions, SlackStandIn, workspace,
};
use switchyard_test_support::standin::{BearerToken, Failure, provider_client};

use crate::support::{Store, builtin_connector};

/// The stand-in's spacing for one channel: a second, less its allowance for jitter.
const ONE_A_SECOND: Duration = Duration::from_millis(900);

struct Posts {
    standin: SlackStandIn,
    calls: ProviderClient<InMemoryBackend, BearerToken>,
    connection: ConnectionContext,
    _store: Store,
}

impl Posts {
    async fn start() -> Self {
        let standin = SlackStandIn::start(SlackOptions::default()).await.unwrap();
        standin.seed(10, 3);
        let store = Store::start("slack").await;
        Self {
            connection: store.context(
                json!({"team_id": workspace::TEAM_ID}),
                Some(standin.api_url()),
            ),
            calls: provider_client(BearerToken(BOT_TOKEN.to_owned())),
            standin,
            _store: store,
        }
    }

    fn cx(&self) -> CallContext<'_> {
        CallContext {
            calls: &self.calls,
            connection: &self.connection,
        }
    }

    async fn post(
        &self,
        connector: &dyn Connector,
        channel: &str,
        text: &str,
    ) -> Result<Value, ConnectorError> {
        let input = json!({"channel": channel, "text": text});
        connector
            .execute_action(self.cx(), "post_message", &input, None)
            .await
    }

    /// Each channel's posts as the stand-in saw them, in arrival order.
    fn by_channel(&self) -> BTreeMap<String, Vec<ChannelPost>> {
        let mut channels: BTreeMap<String, Vec<ChannelPost>> = BTreeMap::new();
        for post in self.standin.channel_posts() {
            channels.entry(post.channel.clone()).or_default().push(post);
        }
        channels
    }

    /// The HTTP statuses the stand-in answered `chat.postMessage` with, in order.
    fn statuses(&self) -> Vec<u16> {
        self.standin
            .requests()
            .iter()
            .filter(|r| r.path == "/api/chat.postMessage")
            .map(|r| r.status)
            .collect()
    }
}

#[tokio::test]
async fn posts_are_limited_per_channel_and_channels_do_not_wait_for_each_other() {
    let slack = Posts::start().await;
    let connector = builtin_connector("slack");
    let (a, b) = (slack::channel_id(1), slack::channel_id(2));
    let results = tokio::join!(
        slack.post(&connector, &a, "A1"),
        slack.post(&connector, &a, "A2"),
        slack.post(&connector, &a, "A3"),
        slack.post(&connector, &b, "B1"),
        slack.post(&connector, &b, "B2"),
        slack.post(&connector, &b, "B3"),
    );
    for output in [
        results.0, results.1, results.2, results.3, results.4, results.5,
    ] {
        assert_eq!(output.unwrap()["ok"], true);
    }

    let channels = slack.by_channel();
    assert_eq!(channels.len(), 2, "{channels:?}");
    let first = channels.values().flatten().map(|p| p.at).min().unwrap();
    let mut last = first;
    for (channel, posts) in &channels {
        // Spaced by the client: none refused by the stand-in's one-a-second limit.
        assert_eq!(posts.len(), 3, "{channel}: {posts:?}");
        assert!(posts.iter().all(|p| p.accepted), "{channel}: {posts:?}");
        for pair in posts.windows(2) {
            let gap = pair[1].at.duration_since(pair[0].at);
            assert!(gap >= ONE_A_SECOND, "{channel}: two posts {gap:?} apart");
        }
        // Each channel starts at once: neither waits behind the other's budget.
        let start = posts[0].at.duration_since(first);
        assert!(
            start < Duration::from_millis(500),
            "{channel} began {start:?} late"
        );
        last = last.max(posts[2].at);
    }
    // Three a channel at one a second: about two seconds, not the five of one shared budget.
    let span = last.duration_since(first);
    assert!(span < Duration::from_millis(3_000), "took {span:?}");
    assert!(span >= 2 * ONE_A_SECOND, "took {span:?}");

    // Every post reached Slack once: six messages, no duplicates.
    let mut texts: Vec<String> = slack
        .standin
        .messages()
        .into_iter()
        .filter_map(|m| m.text)
        .collect();
    texts.sort();
    assert_eq!(texts, ["A1", "A2", "A3", "B1", "B2", "B3"]);
    assert_eq!(slack.statuses(), [200; 6]);
}

#[tokio::test]
async fn a_rate_limited_post_is_sent_again_after_retry_after_and_posted_once() {
    // Slack rejects a rate-limited call before acting on it, and the manifest declares 429
    // unprocessed: the post is repeated once its Retry-After has passed.
    let slack = Posts::start().await;
    let connector = builtin_connector("slack");
    slack.standin.rate_limit_next("chat.postMessage", 1, 1);
    let output = slack
        .post(&connector, &slack::channel_id(1), "Once")
        .await
        .unwrap();
    assert_eq!(output["ok"], true);
    assert_eq!(slack.statuses(), [429, 200]);
    let arrivals: Vec<Instant> = slack
        .standin
        .arrivals()
        .into_iter()
        .filter(|a| a.path == "/api/chat.postMessage")
        .map(|a| a.at)
        .collect();
    let pause = arrivals[1].duration_since(arrivals[0]);
    assert!(
        pause >= Duration::from_secs(1),
        "sent again after {pause:?}, before Retry-After"
    );
    let posted = slack.standin.messages();
    assert_eq!(posted.len(), 1, "posted exactly once");
    assert_eq!(output["ts"], posted[0].ts.as_str());
}

#[tokio::test]
async fn the_stand_in_s_own_per_channel_429_is_waited_out() {
    // Someone else (another app, another process) just posted to the channel: the
    // connector's budget does not know, Slack refuses, and the post goes again a second
    // later.
    let slack = Posts::start().await;
    let connector = builtin_connector("slack");
    let channel = slack::channel_id(2);
    let elsewhere = reqwest::Client::new()
        .post(format!("{}/chat.postMessage", slack.standin.api_url()))
        .bearer_auth(BOT_TOKEN)
        .header("content-type", "application/json; charset=utf-8")
        .body(json!({"channel": channel, "text": "elsewhere"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 200);
    let output = slack.post(&connector, &channel, "mine").await.unwrap();
    assert_eq!(output["ok"], true);
    let outcomes: Vec<bool> = slack.by_channel()[&channel]
        .iter()
        .map(|p| p.accepted)
        .collect();
    assert_eq!(outcomes, [true, false, true]);
    let texts: Vec<String> = slack
        .standin
        .messages()
        .into_iter()
        .filter_map(|m| m.text)
        .collect();
    assert_eq!(texts, ["elsewhere", "mine"]);
}

#[tokio::test]
async fn a_post_answered_with_a_5xx_is_not_sent_again() {
    // A 5xx may come after the message was posted: repeating it could post twice.
    let slack = Posts::start().await;
    let connector = builtin_connector("slack");
    slack.standin.inject(
        Failure::new("/api/chat.postMessage", 503)
            .times(1)
            .header("content-type", "application/json; charset=utf-8")
            .json_body(json!({"ok": false, "error": "service_unavailable"})),
    );
    let error = slack
        .post(&connector, &slack::channel_id(1), "Maybe")
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectorError::Provider(_)), "{error:?}");
    assert_eq!(slack.statuses(), [503]);
}

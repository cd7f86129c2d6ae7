//! The stand-in's answers for `scripts/dev/slack-shapes.py`, which compares them field by field
//! with Slack's Web API and Events API descriptions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::*;

/// `(answer name, method, JSON body for a POST, token, expected HTTP status)`; the
/// method carries its query (`users.list?limit=4`).
type ShapeCall = (
    &'static str,
    String,
    Option<Value>,
    Option<&'static str>,
    u16,
);

fn write_answer(dir: &Path, name: &str, answer: &Value) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join(format!("{name}.json")),
        serde_json::to_string_pretty(answer).unwrap(),
    )
    .unwrap();
}

/// Writes the stand-in's answers (Web API methods, their errors and Events API deliveries),
/// one file each, into `SWITCHYARD_SLACK_SHAPES_DIR` for `scripts/dev/slack-shapes.py`;
/// without that variable it only checks each status and `ok`.
#[tokio::test]
async fn answers_for_the_shape_check() {
    let slack = SlackStandIn::start(SlackOptions::default()).await.unwrap();
    // Channel 3 is private; the bot is in every channel but the last (4).
    slack.seed(10, 4);
    slack.add_token("xoxb-chat-only", &["chat:write"]);
    let bot = Some(BOT_TOKEN);
    let get = |name, method: &str| (name, method.to_owned(), None, bot, 200);
    let post = |name, method: &str, body: Value| (name, method.to_owned(), Some(body), bot, 200);
    let blocks = json!([{"type": "section", "text": {"type": "mrkdwn", "text": "*Hello*"}}]);
    let calls: Vec<ShapeCall> = vec![
        get("auth_test", "auth.test"),
        get("users_list", "users.list?limit=4"),
        get(
            "conversations_list",
            "conversations.list?types=public_channel,private_channel&limit=3",
        ),
        get(
            "conversations_members",
            "conversations.members?channel=C00000001&limit=2",
        ),
        post(
            "chat_post_message",
            "chat.postMessage",
            json!({"channel": "C00000001", "text": "Hello", "blocks": blocks}),
        ),
        post(
            "chat_post_message_thread",
            "chat.postMessage",
            // Another channel: a channel takes one post a second.
            json!({"channel": "C00000002", "text": "A reply", "thread_ts": "1704067200.000001"}),
        ),
        post(
            "conversations_open",
            "conversations.open",
            json!({"users": "U00000001"}),
        ),
        post(
            "conversations_open_again",
            "conversations.open",
            json!({"users": "U00000001"}),
        ),
        ("error_not_authed", "auth.test".into(), None, None, 200),
        (
            "error_invalid_auth",
            "users.list".into(),
            None,
            Some("xoxb-unknown"),
            200,
        ),
        // Each error from a method whose description lists it.
        (
            "error_missing_scope",
            "conversations.list".into(),
            None,
            Some("xoxb-chat-only"),
            200,
        ),
        get("error_invalid_cursor", "users.list?cursor=bm90LW91cnM%3D"),
        get(
            "error_channel_not_found",
            "conversations.members?channel=C99999999",
        ),
        post(
            "error_not_in_channel",
            "chat.postMessage",
            json!({"channel": "C00000004", "text": "Hello"}),
        ),
        post(
            "error_user_not_found",
            "conversations.open",
            json!({"users": "U99999999"}),
        ),
        ("error_ratelimited", "users.list".into(), None, bot, 429),
    ];
    let dir = std::env::var_os("SWITCHYARD_SLACK_SHAPES_DIR").map(PathBuf::from);
    let client = reqwest::Client::new();
    for (name, method, body, token, status) in calls {
        if name == "error_ratelimited" {
            slack.rate_limit_next("users.list", 1, 30);
        }
        let url = format!("{}/{method}", slack.api_url());
        let mut request = match &body {
            Some(body) => client
                .post(url)
                .header("content-type", "application/json; charset=utf-8")
                .body(body.to_string()),
            None => client.get(url),
        };
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{name}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(
            answer["ok"],
            !name.starts_with("error_"),
            "{name}: {answer}"
        );
        if let Some(dir) = &dir {
            write_answer(dir, name, &answer);
        }
    }

    let user = slack.user("U00000002").unwrap();
    let channel = slack.channel("C00000002").unwrap();
    let private = slack.channel("C00000003").unwrap();
    let deliveries = [
        ("event_team_join", events::team_join(&user)),
        ("event_user_change", events::user_change(&user)),
        ("event_channel_created", events::channel_created(&channel)),
        ("event_channel_rename", events::channel_rename(&channel)),
        ("event_group_rename", events::channel_rename(&private)),
        (
            "event_channel_archive",
            events::channel_archive(&channel, "U00000001"),
        ),
        (
            "event_group_archive",
            events::channel_archive(&private, "U00000001"),
        ),
        (
            "event_member_joined_channel",
            events::member_joined_channel(&channel, "U00000002"),
        ),
        (
            "event_member_left_channel",
            events::member_left_channel(&channel, "U00000002"),
        ),
    ];
    for (name, event) in deliveries {
        let delivery = slack.event(event);
        assert_eq!(delivery.body["type"], "event_callback");
        if let Some(dir) = &dir {
            write_answer(dir, name, &delivery.body);
        }
    }
    if let Some(dir) = &dir {
        write_answer(
            dir,
            "event_url_verification",
            &events::url_verification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"),
        );
    }
}

//! The stand-in answers as Slack's Web API does: errors at HTTP 200, scope headers, cursors,
//! limits, and every method's arguments from the query, a form or a JSON body.

use serde_json::{Value, json};

use super::*;

async fn started() -> SlackStandIn {
    let slack = SlackStandIn::start(SlackOptions::default()).await.unwrap();
    slack.seed(10, 3);
    slack
}

/// `(status, headers, body)` of a call.
async fn call(request: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap())
}

fn encode(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

fn get(slack: &SlackStandIn, method_and_query: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new().get(format!("{}/{method_and_query}", slack.api_url()))
}

#[tokio::test]
async fn tokens_are_refused_with_http_200_and_slacks_codes() {
    let slack = started().await;
    let (status, _, body) = call(get(&slack, "auth.test")).await;
    assert_eq!(
        (status, body),
        (200, json!({"ok": false, "error": "not_authed"}))
    );
    let (status, headers, body) = call(get(&slack, "auth.test").bearer_auth("xoxb-wrong")).await;
    assert_eq!(
        (status, body),
        (200, json!({"ok": false, "error": "invalid_auth"}))
    );
    assert!(headers.get("x-oauth-scopes").is_none());
    assert_eq!(headers["content-type"], "application/json; charset=utf-8");
    // The `token` argument works as well as the header.
    let (_, headers, body) = call(get(&slack, &format!("auth.test?token={BOT_TOKEN}"))).await;
    assert_eq!(body["ok"], true);
    assert_eq!(body["team_id"], workspace::TEAM_ID);
    assert_eq!(headers["x-oauth-scopes"], ALL_SCOPES.join(","));
    slack.revoke_token(BOT_TOKEN);
    let (_, _, body) = call(get(&slack, "auth.test").bearer_auth(BOT_TOKEN)).await;
    assert_eq!(body["error"], "token_revoked");
}

#[tokio::test]
async fn a_missing_scope_names_the_needed_and_provided_scopes() {
    let slack = started().await;
    slack.add_token("xoxb-chat", &["chat:write", "im:write"]);
    let (status, headers, body) = call(get(&slack, "users.list").bearer_auth("xoxb-chat")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"ok": false, "error": "missing_scope", "needed": "users:read", "provided": "chat:write,im:write"})
    );
    assert_eq!(headers["x-accepted-oauth-scopes"], "users:read");
}

#[tokio::test]
async fn lists_page_with_opaque_cursors_and_bounded_limits() {
    let slack = started().await;
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let (_, _, body) = call(
            get(
                &slack,
                &format!(
                    "users.list?{}",
                    encode(&[("limit", "4"), ("cursor", &cursor)])
                ),
            )
            .bearer_auth(BOT_TOKEN),
        )
        .await;
        assert_eq!(body["ok"], true);
        ids.extend(
            body["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["id"].clone()),
        );
        cursor = body["response_metadata"]["next_cursor"]
            .as_str()
            .unwrap()
            .to_owned();
        if cursor.is_empty() {
            break;
        }
        assert!(!cursor.contains('U'), "opaque, not the id itself: {cursor}");
    }
    let expected: Vec<Value> = (1..=10).map(|n| json!(user_id(n))).collect();
    assert_eq!(ids, expected);

    let (_, _, body) = call(get(&slack, "users.list?limit=1001").bearer_auth(BOT_TOKEN)).await;
    assert_eq!(body["error"], "invalid_limit");
    let (_, _, body) = call(get(&slack, "users.list?cursor=bm9wZQ==").bearer_auth(BOT_TOKEN)).await;
    assert_eq!(body["error"], "invalid_cursor");
    // A conversations cursor does not continue users.
    let (_, _, body) = call(get(&slack, "conversations.list?limit=1").bearer_auth(BOT_TOKEN)).await;
    let other = body["response_metadata"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, _, body) = call(
        get(
            &slack,
            &format!("users.list?{}", encode(&[("cursor", &other)])),
        )
        .bearer_auth(BOT_TOKEN),
    )
    .await;
    assert_eq!(body["error"], "invalid_cursor");
}

#[tokio::test]
async fn conversations_and_their_members() {
    let slack = started().await;
    // Public only by default; the private channel 3 is not the bot's (the last one).
    let (_, _, body) = call(get(&slack, "conversations.list").bearer_auth(BOT_TOKEN)).await;
    let ids: Vec<&str> = body["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [channel_id(1), channel_id(2)]);
    assert_eq!(body["channels"][0]["is_general"], true);
    let (_, _, body) = call(
        get(
            &slack,
            "conversations.list?types=public_channel,private_channel",
        )
        .bearer_auth(BOT_TOKEN),
    )
    .await;
    assert_eq!(body["channels"].as_array().unwrap().len(), 2);
    let (_, _, body) =
        call(get(&slack, "conversations.list?types=dm").bearer_auth(BOT_TOKEN)).await;
    assert_eq!(body["error"], "invalid_types");

    let (_, _, body) = call(
        get(
            &slack,
            &format!("conversations.members?channel={}&limit=2", channel_id(2)),
        )
        .bearer_auth(BOT_TOKEN),
    )
    .await;
    assert_eq!(body["members"], json!([user_id(2), user_id(4)]));
    assert_ne!(body["response_metadata"]["next_cursor"], "");
    let (_, _, body) = call(
        get(
            &slack,
            &format!("conversations.members?channel={}", channel_id(3)),
        )
        .bearer_auth(BOT_TOKEN),
    )
    .await;
    assert_eq!(
        body["error"], "channel_not_found",
        "a private channel the bot is not in"
    );
}

#[tokio::test]
async fn write_methods_take_form_and_json_bodies() {
    // Three posts to one channel at once: without the one-a-second limit.
    let options = SlackOptions {
        enforce_tiers: false,
        ..SlackOptions::default()
    };
    let slack = SlackStandIn::start(options).await.unwrap();
    slack.seed(10, 3);
    let url = format!("{}/chat.postMessage", slack.api_url());
    let client = reqwest::Client::new();
    let (_, _, body) = call(
        client
            .post(&url)
            .bearer_auth(BOT_TOKEN)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(&[("channel", &channel_id(1)), ("text", "form")])),
    )
    .await;
    assert_eq!(body["ok"], true);
    assert!(body.get("warning").is_none());
    let (_, _, body) = call(
        client
            .post(&url)
            .bearer_auth(BOT_TOKEN)
            .header("content-type", "application/json; charset=utf-8")
            .body(json!({"channel": channel_id(1), "text": "json"}).to_string()),
    )
    .await;
    assert_eq!(body["ok"], true);
    assert!(body.get("warning").is_none());
    // JSON without a charset is accepted with Slack's warning.
    let (_, _, body) = call(
        client
            .post(&url)
            .bearer_auth(BOT_TOKEN)
            .json(&json!({"channel": channel_id(1), "text": "no charset"})),
    )
    .await;
    assert_eq!(body["warning"], "missing_charset");
    assert_eq!(
        body["response_metadata"]["warnings"],
        json!(["missing_charset"])
    );
    let texts: Vec<_> = slack
        .messages()
        .into_iter()
        .filter_map(|m| m.text)
        .collect();
    assert_eq!(texts, ["form", "json", "no charset"]);
    let (_, _, body) = call(
        client
            .post(&url)
            .bearer_auth(BOT_TOKEN)
            .body("x")
            .header("content-type", "text/plain"),
    )
    .await;
    assert_eq!(body["error"], "invalid_post_type");
}

#[tokio::test]
async fn a_forced_rate_limit_answers_429_with_retry_after() {
    let slack = started().await;
    slack.rate_limit_next("users.list", 1, 7);
    let (status, headers, body) = call(get(&slack, "users.list").bearer_auth(BOT_TOKEN)).await;
    assert_eq!(
        (status, body),
        (429, json!({"ok": false, "error": "ratelimited"}))
    );
    assert_eq!(headers["retry-after"], "7");
    let (status, _, _) = call(get(&slack, "users.list").bearer_auth(BOT_TOKEN)).await;
    assert_eq!(status, 200);
    let logged: Vec<u16> = slack.requests().iter().map(|r| r.status).collect();
    assert_eq!(logged, [429, 200]);
    assert_eq!(slack.requests()[0].headers["authorization"], "Bearer");
}

#[tokio::test]
async fn a_channel_takes_one_post_a_second() {
    let slack = started().await;
    let post = |channel: String| {
        reqwest::Client::new()
            .post(format!("{}/chat.postMessage", slack.api_url()))
            .bearer_auth(BOT_TOKEN)
            .header("content-type", "application/json; charset=utf-8")
            .body(json!({"channel": channel, "text": "hi"}).to_string())
    };
    let (status, _, body) = call(post(channel_id(1))).await;
    assert_eq!((status, body["ok"].clone()), (200, json!(true)));
    // The same channel at once: Slack's 429, nothing posted; another channel is not held.
    let (status, headers, body) = call(post(channel_id(1))).await;
    assert_eq!(
        (status, body),
        (429, json!({"ok": false, "error": "ratelimited"}))
    );
    assert_eq!(headers["retry-after"], "1");
    let (status, _, _) = call(post(channel_id(2))).await;
    assert_eq!(status, 200);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let (status, _, _) = call(post(channel_id(1))).await;
    assert_eq!(status, 200);
    let posts = slack.channel_posts();
    let outcomes: Vec<(&str, bool)> = posts
        .iter()
        .map(|p| (p.channel.as_str(), p.accepted))
        .collect();
    let (one, two) = (channel_id(1), channel_id(2));
    assert_eq!(
        outcomes,
        [
            (one.as_str(), true),
            (one.as_str(), false),
            (two.as_str(), true),
            (one.as_str(), true)
        ]
    );
    assert!(posts[3].at.duration_since(posts[0].at) >= std::time::Duration::from_secs(1));
    let texts = slack.messages().len();
    assert_eq!(texts, 3, "the refused post posted nothing");
}

//! Events API deliveries as Slack sends them to a Request URL: the `event_callback` envelope
//! around an inner event, and the one-time `url_verification`. Signing is left to the test
//! (with `slack_sdk`, Slack's own library), which signs the exact bytes of [`Delivery::body`].

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::workspace::{BOT_USER_ID, SlackChannel, SlackUser, TEAM_ID};

/// The app the events are for.
pub const API_APP_ID: &str = "A0SWITCHY";

/// A delivery: the JSON body, its `event_id` and the time it claims.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub event_id: String,
    pub body: Value,
}

impl Delivery {
    /// The exact bytes to sign and post.
    pub fn bytes(&self) -> Vec<u8> {
        self.body.to_string().into_bytes()
    }
}

/// `{"type":"event_callback","event":{…},"event_id":…}` for `event` happening at `at`.
/// `event_id` (`Ev…`) is what Slack repeats on a retry, with `X-Slack-Retry-Num` set.
pub fn event_callback(event_id: &str, event: Value, at: OffsetDateTime) -> Delivery {
    let event_ts = format!("{}.000100", at.unix_timestamp());
    let mut event = event;
    event["event_ts"] = json!(event_ts);
    Delivery {
        event_id: event_id.to_owned(),
        body: json!({
            "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
            "team_id": TEAM_ID,
            "context_team_id": TEAM_ID,
            "api_app_id": API_APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": at.unix_timestamp(),
            // Deprecated since 2021 but still sent, with at most one entry.
            "authed_users": [BOT_USER_ID],
            "authorizations": [{
                "enterprise_id": null,
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "is_bot": true,
                "is_enterprise_install": false,
            }],
            "is_ext_shared_channel": false,
            "event_context": format!("4-{}", hex::encode(event_id)),
        }),
    }
}

/// `{"token":…,"challenge":…,"type":"url_verification"}`: what Slack sends once when a
/// Request URL is saved; the answer must echo `challenge`.
pub fn url_verification(challenge: &str) -> Value {
    json!({
        "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
        "challenge": challenge,
        "type": "url_verification",
    })
}

/// `team_join`: a new member, with the full user object.
pub fn team_join(user: &SlackUser) -> Value {
    json!({"type": "team_join", "user": user.to_json(true)})
}

/// `user_change`: a member's profile or status changed (deactivation too).
pub fn user_change(user: &SlackUser) -> Value {
    json!({"type": "user_change", "user": user.to_json(true), "cache_ts": user.updated})
}

/// `channel_created` (`group_…` events carry a private channel the same way).
pub fn channel_created(channel: &SlackChannel) -> Value {
    json!({
        "type": "channel_created",
        "channel": {
            "id": channel.id,
            "name": channel.name,
            "created": channel.created,
            "creator": channel.creator,
        },
    })
}

/// `channel_rename`, or `group_rename` for a private channel.
pub fn channel_rename(channel: &SlackChannel) -> Value {
    let kind = if channel.is_private {
        "group_rename"
    } else {
        "channel_rename"
    };
    json!({
        "type": kind,
        "channel": {"id": channel.id, "name": channel.name, "created": channel.created},
    })
}

/// `channel_archive`, or `group_archive` for a private channel.
pub fn channel_archive(channel: &SlackChannel, by: &str) -> Value {
    if channel.is_private {
        json!({"type": "group_archive", "channel": channel.id})
    } else {
        json!({"type": "channel_archive", "channel": channel.id, "user": by})
    }
}

/// `member_joined_channel` (`channel_type` `C` public, `G` private).
pub fn member_joined_channel(channel: &SlackChannel, user: &str) -> Value {
    json!({
        "type": "member_joined_channel",
        "user": user,
        "channel": channel.id,
        "channel_type": if channel.is_private { "G" } else { "C" },
        "team": TEAM_ID,
        "inviter": BOT_USER_ID,
    })
}

/// `member_left_channel`.
pub fn member_left_channel(channel: &SlackChannel, user: &str) -> Value {
    json!({
        "type": "member_left_channel",
        "user": user,
        "channel": channel.id,
        "channel_type": if channel.is_private { "G" } else { "C" },
        "team": TEAM_ID,
    })
}

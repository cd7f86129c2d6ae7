//! The Web API methods the Slack manifest calls, each as Slack answers it: the scopes it
//! needs, its arguments and its errors (from the method's entry in the Web API description).

use serde_json::{Value, json};

use super::{
    state::{Grant, SlackShared},
    wire::{Args, SlackError, decode_cursor, ok, page},
    workspace::{BOT_ID, BOT_USER_ID, PostedMessage, TEAM_ID, TEAM_NAME},
};

/// A method the stand-in serves: its rate tier (requests a minute) and the scopes any of
/// which it accepts (`x-accepted-oauth-scopes`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct MethodSpec {
    pub(crate) name: &'static str,
    pub(crate) per_minute: u32,
    pub(crate) accepted: &'static [&'static str],
}

/// Tier 2 is 20+ a minute, Tier 3 50+, Tier 4 100+; `auth.test` is a special tier that
/// allows far more; `chat.postMessage` is about one a second per channel (enforced by the
/// server before the call) with a workspace-wide cap, counted here as a minute budget.
pub(crate) const METHODS: &[MethodSpec] = &[
    MethodSpec {
        name: "auth.test",
        per_minute: 600,
        accepted: &[],
    },
    MethodSpec {
        name: "users.list",
        per_minute: 20,
        accepted: &["users:read"],
    },
    MethodSpec {
        name: "conversations.list",
        per_minute: 20,
        accepted: &["channels:read", "groups:read", "im:read", "mpim:read"],
    },
    MethodSpec {
        name: "conversations.members",
        per_minute: 100,
        accepted: &["channels:read", "groups:read", "im:read", "mpim:read"],
    },
    MethodSpec {
        name: "conversations.open",
        per_minute: 50,
        accepted: &["channels:write", "groups:write", "im:write", "mpim:write"],
    },
    MethodSpec {
        name: "chat.postMessage",
        per_minute: 60,
        accepted: &["chat:write"],
    },
];

pub(crate) fn spec(name: &str) -> Option<&'static MethodSpec> {
    METHODS.iter().find(|m| m.name == name)
}

pub(crate) fn call(
    shared: &SlackShared,
    method: &str,
    args: &Args,
    grant: &Grant,
) -> Result<Value, SlackError> {
    match method {
        "auth.test" => Ok(auth_test(shared)),
        "users.list" => users_list(shared, args, grant),
        "conversations.list" => conversations_list(shared, args, grant),
        "conversations.members" => conversations_members(shared, args, grant),
        "conversations.open" => conversations_open(shared, args, grant),
        "chat.postMessage" => chat_post_message(shared, args, grant),
        _ => Err(SlackError::new("unknown_method")),
    }
}

fn auth_test(shared: &SlackShared) -> Value {
    ok(json!({
        "url": format!("https://{}.slack.com/", shared.options.team_domain),
        "team": TEAM_NAME,
        "user": "switchyard",
        "team_id": TEAM_ID,
        "user_id": BOT_USER_ID,
        "bot_id": BOT_ID,
        "is_enterprise_install": false,
    }))
}

/// `users.list`: every member, deactivated ones too, by id; `profile.email` only with
/// `users:read.email`.
fn users_list(shared: &SlackShared, args: &Args, grant: &Grant) -> Result<Value, SlackError> {
    grant.require("users:read")?;
    let with_email = grant.has("users:read.email");
    let limit = args.limit()?;
    let after = decode_cursor("user", args)?;
    let workspace = shared.workspace();
    let (ids, next_cursor) = page("user", workspace.users.keys(), after.as_deref(), limit);
    let members: Vec<Value> = ids
        .into_iter()
        .filter_map(|id| workspace.users.get(id))
        .map(|user| user.to_json(with_email))
        .collect();
    Ok(ok(json!({
        "members": members,
        "cache_ts": shared.clock.now().unix_timestamp(),
        "response_metadata": {"next_cursor": next_cursor},
    })))
}

/// The scope a conversation type needs to be listed or read.
fn read_scope(is_private: bool) -> &'static str {
    if is_private {
        "groups:read"
    } else {
        "channels:read"
    }
}

/// `conversations.list`: `types` (default `public_channel`), `exclude_archived`. Private
/// channels are listed only when the bot is a member, as Slack shows a bot only those.
fn conversations_list(
    shared: &SlackShared,
    args: &Args,
    grant: &Grant,
) -> Result<Value, SlackError> {
    let types = args.str("types").unwrap_or("public_channel");
    let mut public = false;
    let mut private = false;
    for kind in types.split(',').map(str::trim) {
        match kind {
            "public_channel" => public = true,
            "private_channel" => private = true,
            // The workspace has no group DMs or DMs to list.
            "mpim" => grant.require("mpim:read")?,
            "im" => grant.require("im:read")?,
            _ => return Err(SlackError::new("invalid_types")),
        }
    }
    if public {
        grant.require(read_scope(false))?;
    }
    if private {
        grant.require(read_scope(true))?;
    }
    let exclude_archived = args.flag("exclude_archived");
    let limit = args.limit()?;
    let after = decode_cursor("team", args)?;
    let workspace = shared.workspace();
    let visible: Vec<&String> = workspace
        .channels
        .values()
        .filter(|c| if c.is_private { private } else { public })
        .filter(|c| !c.is_private || workspace.is_member(&c.id, BOT_USER_ID))
        .filter(|c| !(exclude_archived && c.is_archived))
        .map(|c| &c.id)
        .collect();
    let (ids, next_cursor) = page("team", visible.into_iter(), after.as_deref(), limit);
    let channels: Vec<Value> = ids
        .into_iter()
        .filter_map(|id| workspace.channels.get(id))
        .map(|c| {
            c.to_json(
                workspace.is_member(&c.id, BOT_USER_ID),
                workspace.member_count(&c.id),
            )
        })
        .collect();
    Ok(ok(json!({
        "channels": channels,
        "response_metadata": {"next_cursor": next_cursor},
    })))
}

/// `conversations.members`: user ids of one channel, by id. A private channel the bot is
/// not in, or any private channel without `groups:read`, does not exist for it
/// (`channel_not_found`).
fn conversations_members(
    shared: &SlackShared,
    args: &Args,
    grant: &Grant,
) -> Result<Value, SlackError> {
    // Any read scope lets the method run; which one the channel needs decides what it sees.
    let accepted = spec("conversations.members").map_or(&[][..], |m| m.accepted);
    if !accepted.iter().any(|scope| grant.has(scope)) {
        grant.require(read_scope(false))?;
    }
    let workspace = shared.workspace();
    let channel = args
        .str("channel")
        .and_then(|id| workspace.channels.get(id))
        .filter(|c| !c.is_private || workspace.is_member(&c.id, BOT_USER_ID))
        // A private channel is invisible without `groups:read`.
        .filter(|c| !c.is_private || grant.has(read_scope(true)))
        .ok_or_else(|| SlackError::new("channel_not_found"))?;
    grant.require(read_scope(channel.is_private))?;
    let limit = args.limit()?;
    let after = decode_cursor("user_id", args)?;
    let empty = Default::default();
    let members = workspace.members.get(&channel.id).unwrap_or(&empty);
    let (ids, next_cursor) = page("user_id", members.iter(), after.as_deref(), limit);
    Ok(ok(json!({
        "members": ids,
        "response_metadata": {"next_cursor": next_cursor},
    })))
}

/// `conversations.open` with `users` (comma-separated ids): one user opens a direct message
/// (`im:write`), two to eight a group one (`mpim:write`). Opening one again answers the same
/// id with `no_op` and `already_open`.
fn conversations_open(
    shared: &SlackShared,
    args: &Args,
    grant: &Grant,
) -> Result<Value, SlackError> {
    let users: Vec<String> = match args.get("users") {
        Some(Value::String(list)) => list
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(_) => return Err(SlackError::new("invalid_arguments")),
        None => Vec::new(),
    };
    match users.len() {
        0 => return Err(SlackError::new("users_list_not_supplied")),
        1 => grant.require("im:write")?,
        2..=8 => grant.require("mpim:write")?,
        _ => return Err(SlackError::new("too_many_users")),
    }
    let mut workspace = shared.workspace();
    for id in &users {
        match workspace.users.get(id) {
            None => return Err(SlackError::new("user_not_found")),
            Some(user) if user.deleted => return Err(SlackError::new("user_disabled")),
            Some(_) => {}
        }
    }
    let mut key = users.clone();
    key.sort();
    key.dedup();
    if let Some(id) = workspace.conversations.get(&key) {
        return Ok(ok(json!({
            "no_op": true,
            "already_open": true,
            "channel": {"id": id},
        })));
    }
    let prefix = if key.len() == 1 { 'D' } else { 'G' };
    let id = format!("{prefix}{:08}", workspace.conversations.len() + 1);
    workspace.conversations.insert(key, id.clone());
    Ok(ok(json!({"channel": {"id": id}})))
}

/// `chat.postMessage` with `channel` and `text` or `blocks` (`thread_ts` to reply in a
/// thread). The bot must be in a channel to post there; archived channels refuse.
fn chat_post_message(
    shared: &SlackShared,
    args: &Args,
    grant: &Grant,
) -> Result<Value, SlackError> {
    grant.require("chat:write")?;
    let now = shared.clock.now();
    let mut workspace = shared.workspace();
    let channel_id = args
        .str("channel")
        .ok_or_else(|| SlackError::new("channel_not_found"))?
        .to_owned();
    let is_conversation = workspace.conversations.values().any(|id| *id == channel_id);
    if !is_conversation {
        let channel = workspace
            .channels
            .get(&channel_id)
            .filter(|c| !c.is_private || workspace.is_member(&c.id, BOT_USER_ID))
            .ok_or_else(|| SlackError::new("channel_not_found"))?;
        if channel.is_archived {
            return Err(SlackError::new("is_archived"));
        }
        if !workspace.is_member(&channel_id, BOT_USER_ID) && !grant.has("chat:write.public") {
            return Err(SlackError::new("not_in_channel"));
        }
    }
    let text = args.str("text").map(str::to_owned);
    let blocks = match args.get("blocks") {
        // A form post carries blocks as a JSON string.
        Some(Value::String(text)) => Some(
            serde_json::from_str::<Value>(text).map_err(|_| SlackError::new("invalid_blocks"))?,
        ),
        Some(Value::Array(items)) => Some(Value::Array(items.clone())),
        Some(_) => return Err(SlackError::new("invalid_blocks")),
        None => None,
    };
    if text.is_none()
        && blocks
            .as_ref()
            .is_none_or(|b| b.as_array().is_none_or(Vec::is_empty))
    {
        return Err(SlackError::new("no_text"));
    }
    let thread_ts = args.str("thread_ts").map(str::to_owned);
    let ts = workspace.next_ts(now);
    let mut message = json!({
        "type": "message",
        "subtype": "bot_message",
        "text": text.clone().unwrap_or_default(),
        "ts": ts,
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "team": TEAM_ID,
        "app_id": "A0SWITCHY",
    });
    if let Some(blocks) = &blocks {
        message["blocks"] = blocks.clone();
    }
    if let Some(thread_ts) = &thread_ts {
        message["thread_ts"] = json!(thread_ts);
    }
    workspace.messages.push(PostedMessage {
        channel: channel_id.clone(),
        ts: ts.clone(),
        text,
        blocks,
        thread_ts,
    });
    Ok(ok(
        json!({"channel": channel_id, "ts": ts, "message": message}),
    ))
}

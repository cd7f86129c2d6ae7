//! The workspace the stand-in serves: users, channels, their members, direct messages and
//! the messages the bot posted, in the shapes of the Web API description
//! (`objs_user`, `objs_conversation`, `objs_message`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use time::OffsetDateTime;

/// The workspace's id and name, and the bot user the tokens belong to.
pub const TEAM_ID: &str = "T0SWITCHY";
pub const TEAM_NAME: &str = "Switchyard Test";
pub const BOT_USER_ID: &str = "U0SWBOT01";
pub const BOT_ID: &str = "B0SWBOT01";

/// A member of the workspace, as `users.list` describes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackUser {
    pub id: String,
    /// The handle (`spengler`).
    pub name: String,
    pub real_name: String,
    pub email: String,
    pub is_admin: bool,
    pub is_owner: bool,
    pub is_bot: bool,
    /// Deactivated: Slack keeps deactivated members in `users.list` with `deleted: true`.
    pub deleted: bool,
    /// Slack shows `has_2fa` only to some tokens; `None` leaves it out, as it does then.
    pub has_2fa: Option<bool>,
    /// Epoch seconds of the last change, set by the stand-in's clock.
    pub updated: i64,
}

impl SlackUser {
    /// An active, non-admin member with 2FA unknown.
    pub fn new(id: &str, name: &str, real_name: &str, email: &str) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            real_name: real_name.to_owned(),
            email: email.to_owned(),
            is_admin: false,
            is_owner: false,
            is_bot: false,
            deleted: false,
            has_2fa: None,
            updated: 0,
        }
    }

    /// The `objs_user` object; `profile.email` only for a token with `users:read.email`.
    pub fn to_json(&self, with_email: bool) -> Value {
        let (first, last) = self
            .real_name
            .split_once(' ')
            .unwrap_or((&self.real_name, ""));
        let mut profile = json!({
            "avatar_hash": format!("g{}", &hex_of(&self.id)[..11]),
            "display_name": self.name,
            "display_name_normalized": self.name,
            "first_name": first,
            "last_name": last,
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "status_emoji": "",
            "status_text": "",
            "team": TEAM_ID,
            "title": "",
            "phone": "",
            "skype": "",
            // Custom profile fields: `users.list` sends none.
            "fields": null,
        });
        for size in [24, 32, 48, 72, 192, 512] {
            profile[format!("image_{size}")] = json!(format!(
                "https://a.slack-edge.com/80588/img/avatars/ava_0001-{size}.png"
            ));
        }
        if with_email && !self.is_bot {
            profile["email"] = json!(self.email);
        }
        let mut user = json!({
            "id": self.id,
            "team_id": TEAM_ID,
            "name": self.name,
            "deleted": self.deleted,
            "color": "9f69e7",
            "real_name": self.real_name,
            "tz": "Europe/Berlin",
            "tz_label": "Central European Time",
            "tz_offset": 3600,
            "profile": profile,
            "is_admin": self.is_admin,
            "is_owner": self.is_owner,
            "is_primary_owner": false,
            "is_restricted": false,
            "is_ultra_restricted": false,
            "is_bot": self.is_bot,
            "is_app_user": false,
            "updated": self.updated,
        });
        if let Some(has_2fa) = self.has_2fa {
            user["has_2fa"] = json!(has_2fa);
        }
        user
    }
}

/// A public or private channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackChannel {
    pub id: String,
    pub name: String,
    pub is_private: bool,
    pub is_archived: bool,
    pub is_general: bool,
    pub creator: String,
    /// Epoch seconds.
    pub created: i64,
    pub topic: String,
    pub purpose: String,
    /// Earlier names, oldest first (`previous_names`).
    pub previous_names: Vec<String>,
    /// Epoch milliseconds of the last change (`updated`, as Slack now sends it).
    pub updated: i64,
}

impl SlackChannel {
    pub fn new(id: &str, name: &str, is_private: bool) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            is_private,
            is_archived: false,
            is_general: false,
            creator: BOT_USER_ID.to_owned(),
            created: 0,
            topic: String::new(),
            purpose: String::new(),
            previous_names: Vec::new(),
            updated: 0,
        }
    }

    /// The `objs_conversation` object as `conversations.list` lists it.
    pub fn to_json(&self, is_member: bool, num_members: usize) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": !self.is_private,
            "is_group": self.is_private,
            "is_im": false,
            "is_mpim": false,
            "is_private": self.is_private,
            "is_archived": self.is_archived,
            "is_general": self.is_general,
            "is_shared": false,
            "is_ext_shared": false,
            "is_org_shared": false,
            "is_pending_ext_shared": false,
            "pending_shared": [],
            "context_team_id": TEAM_ID,
            "created": self.created,
            "updated": self.updated,
            "creator": self.creator,
            "unlinked": 0,
            "is_member": is_member,
            "num_members": num_members,
            "topic": {"value": self.topic, "creator": "", "last_set": 0},
            "purpose": {"value": self.purpose, "creator": "", "last_set": 0},
            "previous_names": self.previous_names,
        })
    }
}

/// A message the bot posted with `chat.postMessage`.
#[derive(Debug, Clone, PartialEq)]
pub struct PostedMessage {
    pub channel: String,
    pub ts: String,
    pub text: Option<String>,
    pub blocks: Option<Value>,
    pub thread_ts: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Workspace {
    pub(crate) users: BTreeMap<String, SlackUser>,
    pub(crate) channels: BTreeMap<String, SlackChannel>,
    /// Channel id → member user ids (the bot among them where it was added).
    pub(crate) members: BTreeMap<String, BTreeSet<String>>,
    /// Sorted user ids of a direct or group conversation → its id.
    pub(crate) conversations: BTreeMap<Vec<String>, String>,
    pub(crate) messages: Vec<PostedMessage>,
    /// Messages posted within one second, for unique `ts` values.
    posted_in_second: (i64, u32),
}

impl Workspace {
    /// Users `U00000001`…, changed at `at`: every fifth an admin, every seventh deactivated,
    /// 2FA on for even numbers (so `has_2fa` takes both values). Channels `C00000001`…
    /// (`general` first), every third private, every member of a channel `n` being the users
    /// whose number is divisible by `n`, plus the bot in every channel but the last.
    pub(crate) fn seed(&mut self, users: u32, channels: u32, at: OffsetDateTime) {
        let stamp = at.unix_timestamp();
        for n in 1..=users {
            let mut user = SlackUser::new(
                &user_id(n),
                &format!("user{n}"),
                &format!("User Number{n}"),
                &format!("user{n}@example.test"),
            );
            user.is_admin = n.is_multiple_of(5);
            user.is_owner = n == 5;
            user.deleted = n.is_multiple_of(7);
            user.has_2fa = Some(n.is_multiple_of(2));
            user.updated = stamp;
            self.users.insert(user.id.clone(), user);
        }
        for n in 1..=channels {
            let name = if n == 1 {
                "general".to_owned()
            } else {
                format!("channel-{n}")
            };
            let mut channel = SlackChannel::new(&channel_id(n), &name, n.is_multiple_of(3));
            channel.is_general = n == 1;
            channel.created = stamp;
            channel.updated = stamp * 1000;
            channel.purpose = format!("Channel number {n}");
            let mut members: BTreeSet<String> = (1..=users)
                .filter(|u| u.is_multiple_of(n))
                .map(user_id)
                .collect();
            if n < channels {
                members.insert(BOT_USER_ID.to_owned());
            }
            self.members.insert(channel.id.clone(), members);
            self.channels.insert(channel.id.clone(), channel);
        }
    }

    pub(crate) fn is_member(&self, channel: &str, user: &str) -> bool {
        self.members
            .get(channel)
            .is_some_and(|members| members.contains(user))
    }

    pub(crate) fn member_count(&self, channel: &str) -> usize {
        self.members.get(channel).map_or(0, BTreeSet::len)
    }

    /// A fresh message timestamp (`"1704067200.000001"`): the clock's second and a counter.
    pub(crate) fn next_ts(&mut self, now: OffsetDateTime) -> String {
        let second = now.unix_timestamp();
        let (last, count) = self.posted_in_second;
        let count = if last == second { count + 1 } else { 1 };
        self.posted_in_second = (second, count);
        format!("{second}.{count:06}")
    }
}

/// `U00000042`: nine characters, as Slack's ids are.
pub fn user_id(n: u32) -> String {
    format!("U{n:08}")
}

/// `C00000042`.
pub fn channel_id(n: u32) -> String {
    format!("C{n:08}")
}

fn hex_of(text: &str) -> String {
    let mut out = hex::encode(text.as_bytes());
    while out.len() < 12 {
        out.push('0');
    }
    out
}

//! A stand-in for Slack's Web API and Events API, built from Slack's published Web API
//! description (`slack_web_openapi_v2.json`) and method documentation.
//!
//! ```ignore
//! let slack = SlackStandIn::start(SlackOptions::default()).await?;
//! slack.seed(30, 5);
//! // base URL for a connection: slack.api_url() = "http://127.0.0.1:<port>/api"
//! ```
//!
//! # Wire format
//! - Every method is `GET` or `POST /api/{method}`. Arguments come from the query string, an
//!   `application/x-www-form-urlencoded` body, or an `application/json` body (write methods;
//!   without `; charset=utf-8` the answer carries `"warning":"missing_charset"` and
//!   `response_metadata.warnings`, as Slack's does). Another body type is `invalid_post_type`.
//! - The token is `Authorization: Bearer <token>` or the `token` argument. Errors are HTTP
//!   **200** with `{"ok":false,"error":"…"}`: no token `not_authed`, an unknown one
//!   `invalid_auth`, a revoked one `token_revoked`; a token without the method's scope
//!   `missing_scope` with `needed` (the scope) and `provided` (the token's, comma-separated).
//! - Every authenticated answer carries `x-oauth-scopes` (the token's scopes, comma-separated)
//!   and `x-accepted-oauth-scopes` (the method's); every answer `content-type:
//!   application/json; charset=utf-8` and an `x-slack-req-id`.
//! - Lists page with `limit` (absent or `0`: everything; above 1,000 `invalid_limit`) and
//!   `cursor`; `response_metadata.next_cursor` is an opaque base64 cursor, `""` on the last
//!   page. A cursor this server did not issue for the method is `invalid_cursor`.
//! - Rate limits per method per minute (wall clock), the tiers of Slack's method pages:
//!   `users.list` and `conversations.list` Tier 2 (20), `conversations.open` Tier 3 (50),
//!   `conversations.members` Tier 4 (100), `chat.postMessage` 60, `auth.test` 600. Over the
//!   budget: HTTP **429**, `Retry-After: <seconds>` and `{"ok":false,"error":"ratelimited"}`.
//!   `chat.postMessage` also allows one message a second per channel: a post that arrives
//!   within 900 ms of the channel's last accepted one is that 429 with `Retry-After: 1`, and
//!   nothing is posted ([`SlackStandIn::channel_posts`] lists every post with its arrival).
//!   Slack sends no remaining/reset headers. [`SlackOptions::enforce_tiers`] turns budgets
//!   off; [`SlackStandIn::rate_limit_next`] forces a 429 for a test.
//! - Unknown methods answer `unknown_method`.
//!
//! # Methods
//! - `auth.test` → `{ok, url, team, user, team_id, user_id, bot_id, is_enterprise_install}`.
//! - `users.list` (`users:read`) → `{ok, members: [objs_user…], cache_ts, response_metadata}`,
//!   by id, deactivated members included (`deleted: true`); `profile.email` only with
//!   `users:read.email`.
//! - `conversations.list` (`types` default `public_channel`: `channels:read`;
//!   `private_channel`: `groups:read`; `exclude_archived`) → `{ok, channels:
//!   [objs_conversation…], response_metadata}`. Private channels only where the bot is a
//!   member. `invalid_types` for an unknown type.
//! - `conversations.members` (`channel`) → `{ok, members: ["U…"], response_metadata}`;
//!   `channel_not_found` for an unknown channel or a private one the bot is not in.
//! - `conversations.open` (`users`, comma-separated; `im:write`, `mpim:write` for several) →
//!   `{ok, channel: {id: "D…"}}`, again with `no_op` and `already_open`; `user_not_found`,
//!   `user_disabled`, `users_list_not_supplied`, `too_many_users`.
//! - `chat.postMessage` (`chat:write`; `channel`, `text` and/or `blocks`, `thread_ts`) →
//!   `{ok, channel, ts, message}`; `channel_not_found`, `not_in_channel` (unless
//!   `chat:write.public`), `is_archived`, `no_text`, `invalid_blocks`.
//!
//! # Data
//! [`SlackStandIn::seed`] makes users `U00000001`… and channels `C00000001`… (see
//! [`workspace`]); tests add, change and deactivate users, create, rename and archive
//! channels and move members, each change stamped by the test clock. Webhook deliveries are
//! built by [`events`]; [`SlackStandIn::event`] numbers their `event_id`s.

pub mod events;
mod methods;
mod server;
#[cfg(test)]
mod shapes;
mod state;
#[cfg(test)]
mod tests;
mod wire;
pub mod workspace;

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use serde_json::{Value, json};
use time::{OffsetDateTime, macros::datetime};

use crate::serve::{Listener, Serving};
use crate::standin::{Failure, LoggedRequest};

pub use events::Delivery;
pub use state::{Arrival, ChannelPost, MethodCall};
pub use wire::{Args, SlackError};
pub use workspace::{PostedMessage, SlackChannel, SlackUser, channel_id, user_id};

use state::SlackShared;
use workspace::BOT_USER_ID;

/// The bot token [`SlackOptions::default`] accepts.
pub const BOT_TOKEN: &str = "xoxb-1234567890-0987654321-Sw1tchyardTestT0ken";

/// Every scope the Slack manifest's streams and actions use, and `users:read.email`.
pub const ALL_SCOPES: &[&str] = &[
    "users:read",
    "users:read.email",
    "channels:read",
    "groups:read",
    "chat:write",
    "im:write",
];

/// How the stand-in starts. `Default`: [`BOT_TOKEN`] with [`ALL_SCOPES`], tiers enforced,
/// the clock at 2024-01-01T00:00:00Z.
#[derive(Clone)]
pub struct SlackOptions {
    /// Accepted tokens and their scopes.
    pub tokens: Vec<(String, Vec<String>)>,
    /// `https://{team_domain}.slack.com/` in `auth.test`.
    pub team_domain: String,
    pub enforce_tiers: bool,
    pub clock_start: OffsetDateTime,
}

impl Default for SlackOptions {
    fn default() -> Self {
        Self {
            tokens: vec![(
                BOT_TOKEN.to_owned(),
                ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            )],
            team_domain: "switchyard-test".into(),
            enforce_tiers: true,
            clock_start: datetime!(2024-01-01 0:00 UTC),
        }
    }
}

// By hand, so tokens never reach a test's output.
impl std::fmt::Debug for SlackOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackOptions")
            .field("tokens", &self.tokens.len())
            .field("team_domain", &self.team_domain)
            .field("enforce_tiers", &self.enforce_tiers)
            .field("clock_start", &self.clock_start)
            .finish()
    }
}

/// A running stand-in; clones share it, and it stops when the last is dropped.
#[derive(Clone)]
pub struct SlackStandIn {
    shared: Arc<SlackShared>,
    base_url: Arc<str>,
    events: Arc<AtomicU64>,
    _server: Serving,
}

impl SlackStandIn {
    /// Binds `127.0.0.1:0` and serves until the last handle is dropped.
    pub async fn start(options: SlackOptions) -> std::io::Result<Self> {
        let listener = Listener::bind().await?;
        let base_url = listener.url().to_owned();
        let shared = Arc::new(SlackShared::new(options));
        let server = listener.serve(server::router(Arc::clone(&shared)));
        Ok(Self {
            shared,
            base_url: base_url.into(),
            events: Arc::new(AtomicU64::new(0)),
            _server: server,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.base_url
    }

    /// `http://127.0.0.1:<port>/api`: what replaces `https://slack.com/api` for a connection.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.base_url)
    }

    /// Adds `users` users and `channels` channels (see [`workspace`]), stamped now.
    pub fn seed(&self, users: u32, channels: u32) {
        let now = self.shared.clock.stamp();
        self.shared.workspace().seed(users, channels, now);
    }

    pub fn user(&self, id: &str) -> Option<SlackUser> {
        self.shared.workspace().users.get(id).cloned()
    }

    /// Adds or replaces a user, stamping `updated` with the clock; returns it as stored.
    pub fn upsert_user(&self, mut user: SlackUser) -> SlackUser {
        user.updated = self.shared.clock.stamp().unix_timestamp();
        self.shared
            .workspace()
            .users
            .insert(user.id.clone(), user.clone());
        user
    }

    /// Changes a stored user (stamped now). `None` when there is no such user.
    pub fn change_user(&self, id: &str, change: impl FnOnce(&mut SlackUser)) -> Option<SlackUser> {
        let mut user = self.user(id)?;
        change(&mut user);
        Some(self.upsert_user(user))
    }

    pub fn channel(&self, id: &str) -> Option<SlackChannel> {
        self.shared.workspace().channels.get(id).cloned()
    }

    /// Adds or replaces a channel, stamping `updated` (milliseconds); the bot joins a new
    /// one when `bot_member`.
    pub fn upsert_channel(&self, mut channel: SlackChannel, bot_member: bool) -> SlackChannel {
        let now = self.shared.clock.stamp();
        channel.updated = now.unix_timestamp() * 1000;
        if channel.created == 0 {
            channel.created = now.unix_timestamp();
        }
        let mut workspace = self.shared.workspace();
        let members = workspace.members.entry(channel.id.clone()).or_default();
        if bot_member {
            members.insert(BOT_USER_ID.to_owned());
        }
        workspace
            .channels
            .insert(channel.id.clone(), channel.clone());
        channel
    }

    /// Renames a channel, keeping the old name in `previous_names`.
    pub fn rename_channel(&self, id: &str, name: &str) -> Option<SlackChannel> {
        let mut channel = self.channel(id)?;
        channel
            .previous_names
            .push(std::mem::replace(&mut channel.name, name.to_owned()));
        Some(self.upsert_channel(channel, false))
    }

    pub fn archive_channel(&self, id: &str) -> Option<SlackChannel> {
        let mut channel = self.channel(id)?;
        channel.is_archived = true;
        Some(self.upsert_channel(channel, false))
    }

    pub fn join(&self, channel: &str, user: &str) {
        self.shared
            .workspace()
            .members
            .entry(channel.to_owned())
            .or_default()
            .insert(user.to_owned());
    }

    pub fn leave(&self, channel: &str, user: &str) {
        if let Some(members) = self.shared.workspace().members.get_mut(channel) {
            members.remove(user);
        }
    }

    /// Every user as `users.list` lists them (with emails), by id.
    pub fn listed_users(&self) -> Vec<Value> {
        self.shared
            .workspace()
            .users
            .values()
            .map(|u| u.to_json(true))
            .collect()
    }

    /// Every public channel and every private one the bot is in, as `conversations.list`
    /// with `types=public_channel,private_channel` lists them, by id.
    pub fn listed_channels(&self, exclude_archived: bool) -> Vec<Value> {
        let workspace = self.shared.workspace();
        workspace
            .channels
            .values()
            .filter(|c| !c.is_private || workspace.is_member(&c.id, BOT_USER_ID))
            .filter(|c| !(exclude_archived && c.is_archived))
            .map(|c| {
                c.to_json(
                    workspace.is_member(&c.id, BOT_USER_ID),
                    workspace.member_count(&c.id),
                )
            })
            .collect()
    }

    /// A channel's member ids, by id.
    pub fn members(&self, channel: &str) -> Vec<String> {
        self.shared
            .workspace()
            .members
            .get(channel)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Messages the bot posted, oldest first.
    pub fn messages(&self) -> Vec<PostedMessage> {
        self.shared.workspace().messages.clone()
    }

    /// The direct message conversation opened with `user`, if any.
    pub fn direct_message_with(&self, user: &str) -> Option<String> {
        self.shared
            .workspace()
            .conversations
            .get(&vec![user.to_owned()])
            .cloned()
    }

    /// Accepts another token with these scopes.
    pub fn add_token(&self, token: &str, scopes: &[&str]) {
        self.shared
            .add_token(token, scopes.iter().map(|s| (*s).to_owned()).collect());
    }

    /// The token is answered `token_revoked` from now on.
    pub fn revoke_token(&self, token: &str) {
        self.shared.revoke_token(token);
    }

    /// The next `times` calls of `method` answer 429 `ratelimited` with `Retry-After`.
    pub fn rate_limit_next(&self, method: &str, times: u32, retry_after_secs: u64) {
        self.inject(
            Failure::new(format!("/api/{method}"), 429)
                .times(times)
                .header("retry-after", &retry_after_secs.to_string())
                .header("content-type", "application/json; charset=utf-8")
                .json_body(json!({"ok": false, "error": "ratelimited"})),
        );
    }

    /// Queues any failure (status, body and headers as given) for paths under its prefix.
    pub fn inject(&self, failure: Failure) {
        self.shared.faults.push(failure);
    }

    /// Every HTTP request answered, oldest first (authorization kept as its scheme only).
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.log.entries()
    }

    /// Every method call that reached a method (not injected failures), with its arguments.
    pub fn calls(&self) -> Vec<MethodCall> {
        self.shared.calls()
    }

    /// Every `chat.postMessage` that named a channel (injected failures excepted), oldest
    /// first: when it arrived and whether the channel's one-a-second limit accepted it.
    pub fn channel_posts(&self) -> Vec<ChannelPost> {
        self.shared.channel_posts()
    }

    /// When each HTTP request arrived, oldest first, on the stand-in's monotonic clock
    /// (injected failures included).
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.shared.arrivals()
    }

    pub fn clear_requests(&self) {
        self.shared.log.clear();
        self.shared.clear_calls();
    }

    pub fn now(&self) -> OffsetDateTime {
        self.shared.clock.now()
    }

    pub fn advance(&self, by: std::time::Duration) {
        self.shared.clock.advance(by);
    }

    /// An `event_callback` delivery of `event` with a fresh `event_id`, at the clock's time.
    pub fn event(&self, event: Value) -> Delivery {
        let n = self.events.fetch_add(1, Ordering::Relaxed) + 1;
        events::event_callback(&format!("Ev{n:08}"), event, self.shared.clock.now())
    }
}

//! What the routes share with the test's handle: the workspace, the tokens and their
//! scopes, the per-method rate budgets, injected failures and the logs.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use serde_json::Value;

use super::{SlackOptions, wire::SlackError, workspace::Workspace};
use crate::standin::{clock::Clock, faults::Faults, request_log::RequestLog};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) struct SlackShared {
    pub(crate) options: SlackOptions,
    pub(crate) clock: Clock,
    workspace: Mutex<Workspace>,
    tokens: Mutex<BTreeMap<String, TokenState>>,
    budgets: Mutex<HashMap<&'static str, Window>>,
    pub(crate) faults: Faults,
    pub(crate) log: RequestLog,
    calls: Mutex<Vec<MethodCall>>,
    arrivals: Mutex<Vec<Arrival>>,
    /// When each channel last accepted a post, for its one-a-second limit.
    last_posts: Mutex<HashMap<String, Instant>>,
    posts: Mutex<Vec<ChannelPost>>,
}

/// `chat.postMessage` is limited to about one message a second per channel. A post is
/// refused when it arrives sooner than this after the channel's last accepted one: a
/// second, less an allowance for delivery jitter (a client that spaces its posts a second
/// apart can see the second arrive a few milliseconds early).
pub(crate) const CHANNEL_POST_SPACING: Duration = Duration::from_millis(900);

/// One `chat.postMessage` that named a channel: when it arrived, on the stand-in's
/// monotonic clock, and whether the channel's one-a-second limit let it through (`false`:
/// answered 429 `ratelimited`, nothing posted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelPost {
    pub channel: String,
    pub at: Instant,
    pub accepted: bool,
}

/// When a request reached the stand-in, on the stand-in's own monotonic clock: tests read
/// the pause a client made between two requests here, not around their own calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    pub path: String,
    pub at: Instant,
}

#[derive(Debug, Clone)]
struct TokenState {
    scopes: Vec<String>,
    revoked: bool,
}

/// A fixed one-minute window of a method's budget, on the wall clock (the client waits in
/// real time).
#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    used: u32,
}

/// One method call the stand-in answered, with the arguments as it read them.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodCall {
    pub method: String,
    pub args: BTreeMap<String, Value>,
    /// `Content-Type` as sent, if any.
    pub content_type: Option<String>,
    /// The `error` answered, `None` for `"ok": true`.
    pub error: Option<String>,
}

/// The scopes of the token a request presented.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub(crate) scopes: Vec<String>,
}

impl Grant {
    pub(crate) fn has(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// `missing_scope` naming `scope` unless the token has it.
    pub(crate) fn require(&self, scope: &str) -> Result<(), SlackError> {
        if self.has(scope) {
            Ok(())
        } else {
            Err(SlackError::missing_scope(scope, &self.scopes))
        }
    }
}

impl SlackShared {
    pub(crate) fn new(options: SlackOptions) -> Self {
        let tokens = options
            .tokens
            .iter()
            .map(|(token, scopes)| {
                (
                    token.clone(),
                    TokenState {
                        scopes: scopes.clone(),
                        revoked: false,
                    },
                )
            })
            .collect();
        Self {
            clock: Clock::starting_at(options.clock_start),
            options,
            workspace: Mutex::new(Workspace::default()),
            tokens: Mutex::new(tokens),
            budgets: Mutex::new(HashMap::new()),
            faults: Faults::default(),
            log: RequestLog::default(),
            calls: Mutex::new(Vec::new()),
            arrivals: Mutex::new(Vec::new()),
            last_posts: Mutex::new(HashMap::new()),
            posts: Mutex::new(Vec::new()),
        }
    }

    /// The workspace, locked for one read or change; never held across an await.
    pub(crate) fn workspace(&self) -> MutexGuard<'_, Workspace> {
        lock(&self.workspace)
    }

    /// The token's scopes, or the error Slack gives a missing, unknown or revoked token.
    pub(crate) fn authenticate(&self, token: Option<&str>) -> Result<Grant, SlackError> {
        let token = token.ok_or_else(|| SlackError::new("not_authed"))?;
        match lock(&self.tokens).get(token) {
            None => Err(SlackError::new("invalid_auth")),
            Some(state) if state.revoked => Err(SlackError::new("token_revoked")),
            Some(state) => Ok(Grant {
                scopes: state.scopes.clone(),
            }),
        }
    }

    pub(crate) fn add_token(&self, token: &str, scopes: Vec<String>) {
        lock(&self.tokens).insert(
            token.to_owned(),
            TokenState {
                scopes,
                revoked: false,
            },
        );
    }

    pub(crate) fn revoke_token(&self, token: &str) {
        if let Some(state) = lock(&self.tokens).get_mut(token) {
            state.revoked = true;
        }
    }

    /// Spends one call of `method`'s minute budget, or answers how many seconds until the
    /// window resets (at least one).
    pub(crate) fn spend(&self, method: &'static str, per_minute: u32) -> Result<(), u64> {
        if !self.options.enforce_tiers {
            return Ok(());
        }
        let now = Instant::now();
        let mut budgets = lock(&self.budgets);
        let window = budgets.entry(method).or_insert(Window {
            started: now,
            used: 0,
        });
        if now.duration_since(window.started) >= Duration::from_secs(60) {
            *window = Window {
                started: now,
                used: 0,
            };
        }
        if window.used >= per_minute {
            let left = Duration::from_secs(60).saturating_sub(now.duration_since(window.started));
            return Err(left.as_secs_f64().ceil().max(1.0) as u64);
        }
        window.used += 1;
        Ok(())
    }

    /// Takes `channel`'s one-a-second slot for a post, or answers the seconds to wait
    /// (`Retry-After: 1`, as Slack answers). Every post is logged with its outcome.
    pub(crate) fn spend_channel_post(&self, channel: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut last_posts = lock(&self.last_posts);
        let accepted = !self.options.enforce_tiers
            || last_posts
                .get(channel)
                .is_none_or(|last| now.duration_since(*last) >= CHANNEL_POST_SPACING);
        if accepted {
            last_posts.insert(channel.to_owned(), now);
        }
        lock(&self.posts).push(ChannelPost {
            channel: channel.to_owned(),
            at: now,
            accepted,
        });
        if accepted { Ok(()) } else { Err(1) }
    }

    pub(crate) fn channel_posts(&self) -> Vec<ChannelPost> {
        lock(&self.posts).clone()
    }

    pub(crate) fn record_call(&self, call: MethodCall) {
        lock(&self.calls).push(call);
    }

    pub(crate) fn calls(&self) -> Vec<MethodCall> {
        lock(&self.calls).clone()
    }

    pub(crate) fn clear_calls(&self) {
        lock(&self.calls).clear();
        lock(&self.arrivals).clear();
        lock(&self.posts).clear();
    }

    pub(crate) fn record_arrival(&self, path: &str) {
        lock(&self.arrivals).push(Arrival {
            path: path.to_owned(),
            at: Instant::now(),
        });
    }

    pub(crate) fn arrivals(&self) -> Vec<Arrival> {
        lock(&self.arrivals).clone()
    }
}

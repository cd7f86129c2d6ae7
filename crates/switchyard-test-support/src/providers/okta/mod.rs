//! An Okta org: a local server speaking the Okta Management API's wire format for what the
//! built-in Okta connector uses, built from Okta's OpenAPI description
//! (`okta-management-minimal.yaml`: paths, parameters, response examples, error examples).
//!
//! ```ignore
//! let okta = OktaStandIn::start(OktaOptions { api_token: Some("00abc".into()), ..Default::default() }).await?;
//! okta.seed(250, 5);
//! // GET {okta.url()}/api/v1/users with `Authorization: SSWS 00abc`
//! ```
//!
//! # Authentication
//! - `Authorization: SSWS {api token}` ([`OktaOptions::api_token`]): every route, with the
//!   rights of the admin who created the token (`/api/v1/users/me` is that admin).
//! - `Authorization: Bearer {access token}` from `POST /oauth2/v1/token` (client credentials,
//!   `private_key_jwt`, by a registered [`ServiceApp`]): only the routes its scopes allow
//!   (`okta.users.read` for `GET /api/v1/users*`, `okta.users.manage` for lifecycle calls,
//!   `okta.groups.read|manage`, `okta.apps.read`, `okta.logs.read`); a missing scope is
//!   `403 E0000006` with `WWW-Authenticate: Bearer … error="insufficient_scope"`.
//! - No or an unknown scheme: `401 E0000005 Invalid session`; a wrong or expired token:
//!   `401 E0000011 Invalid token provided`.
//!
//! # Rate limits
//! Each endpoint bucket ([`wire::DEFAULT_LIMITS`], per minute, by longest path prefix) is
//! signalled on every answer with `X-Rate-Limit-Limit`, `X-Rate-Limit-Remaining` and
//! `X-Rate-Limit-Reset` (epoch seconds, wall clock). A spent bucket answers `429` with
//! `{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests.",…}`
//! and no `Retry-After` (Okta has clients wait for the reset). [`OktaStandIn::limit_next`]
//! forces the next answers of a bucket to be that `429`, with the reset a second away.
//!
//! # Routes
//! - `GET /api/v1/users?limit=(200, max 200)&after=&filter=` (`lastUpdated gt|ge|lt|le|eq
//!   "…"`, `status eq "…"`, `id eq`, `profile.login eq`, joined with ` and `; anything else
//!   `400 E0000031`). Without a filter deprovisioned users are left out.
//! - `GET /api/v1/users/me`, `GET /api/v1/users/{id}`; `GET /api/v1/users/{id}/factors`
//!   (a plain array, no pagination).
//! - `GET /api/v1/groups?limit=(10000)&after=`, `GET /api/v1/groups/{id}/users?limit=(1000)&after=`.
//! - `GET /api/v1/apps?limit=(20, max 200)&after=`.
//! - `GET /api/v1/logs?since=&until=&after=&limit=(100, max 1000)`: oldest first, `since`
//!   inclusive (default: seven days before now). Without `until` it is a polling query: the
//!   `next` link (`after` = the last event's `uuid`) is always sent, also on an empty page.
//! - `POST /api/v1/users/{id}/lifecycle/suspend|unsuspend` → `200` without a body; a user in
//!   the wrong status is `400 E0000001`.
//! - `DELETE /api/v1/groups/{groupId}/users/{userId}` → `204`.
//! - `POST /oauth2/v1/token` (form) → `{"token_type":"Bearer","expires_in":3600,"access_token","scope"}`.
//!
//! Every list is in id order with `Link: <…>; rel="self"` and, before the last page,
//! `<…&after={last id}>; rel="next"` on the stand-in's own origin. Every change is stamped by
//! the test clock (milliseconds, `…000Z`) and published to the System Log as Okta's event
//! (`user.lifecycle.create`, `user.lifecycle.suspend`, `group.user_membership.add|remove`,
//! `user.mfa.factor.activate`, …); [`OktaStandIn::event_hook`] wraps events in an event hook
//! delivery.

mod data;
mod hook;
mod oauth;
mod routes;
#[cfg(test)]
mod shapes;
mod wire;

use std::{
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use axum::{
    Router, middleware,
    routing::{delete, get, post},
};
use serde_json::Value;
use time::{OffsetDateTime, macros::datetime};

pub use data::{LogEvent, OktaApp, OktaFactor, OktaGroup, OktaUser, UserStatus};
pub use hook::EventHookDelivery;
pub use oauth::{ServiceApp, ServiceAppKey};
pub use wire::DEFAULT_LIMITS;

use crate::serve::{Listener, Serving};
use crate::standin::{LoggedRequest, clock::Clock, request_log::RequestLog};
use data::{Org, Render};

/// How the stand-in starts. `Default`: no API token accepted, no service app, Okta's
/// per-minute limits, the clock at 2024-01-01T00:00:00Z.
#[derive(Clone)]
pub struct OktaOptions {
    /// The API token `SSWS` accepts.
    pub api_token: Option<String>,
    /// Service apps that may use `POST /oauth2/v1/token`.
    pub service_apps: Vec<ServiceApp>,
    /// Requests per window, by path prefix.
    pub rate_limits: Vec<(String, u32)>,
    pub rate_window: Duration,
    pub clock_start: OffsetDateTime,
    /// `expires_in` of issued access tokens.
    pub access_token_lifetime: Duration,
}

impl Default for OktaOptions {
    fn default() -> Self {
        Self {
            api_token: None,
            service_apps: Vec::new(),
            rate_limits: DEFAULT_LIMITS
                .iter()
                .map(|(prefix, limit)| ((*prefix).to_owned(), *limit))
                .collect(),
            rate_window: Duration::from_secs(60),
            clock_start: datetime!(2024-01-01 0:00 UTC),
            access_token_lifetime: oauth::ACCESS_TOKEN_LIFETIME,
        }
    }
}

// By hand, so the token never reaches a test's output.
impl std::fmt::Debug for OktaOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OktaOptions")
            .field("api_token", &self.api_token.as_ref().map(|_| "<redacted>"))
            .field("service_apps", &self.service_apps.len())
            .field("rate_limits", &self.rate_limits)
            .field("clock_start", &self.clock_start)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Shared {
    pub(crate) options: OktaOptions,
    pub(crate) base_url: String,
    pub(crate) clock: Clock,
    org: Mutex<Org>,
    pub(crate) budgets: wire::Budgets,
    pub(crate) oauth: oauth::Tokens,
    log: RequestLog,
}

impl Shared {
    pub(crate) fn org(&self) -> MutexGuard<'_, Org> {
        self.org.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Renders records as this org's API answers them (its links on its own base URL).
    pub(crate) fn render(&self) -> Render<'_> {
        Render {
            base: &self.base_url,
        }
    }
}

/// A running Okta stand-in. Clones share the server; it stops with the last clone.
#[derive(Clone)]
pub struct OktaStandIn {
    shared: Arc<Shared>,
    _server: Serving,
}

impl OktaStandIn {
    /// Binds `127.0.0.1:0` and serves until the last handle is dropped.
    pub async fn start(options: OktaOptions) -> std::io::Result<Self> {
        let listener = Listener::bind().await?;
        let base_url = listener.url().to_owned();
        let shared = Arc::new(Shared {
            clock: Clock::starting_at(options.clock_start),
            budgets: wire::Budgets::new(options.rate_limits.clone(), options.rate_window),
            oauth: oauth::Tokens::default(),
            org: Mutex::default(),
            log: RequestLog::default(),
            options,
            base_url,
        });
        let server = listener.serve(router(Arc::clone(&shared)));
        Ok(Self {
            shared,
            _server: server,
        })
    }

    /// `http://127.0.0.1:<port>`: a connection's `base_url`.
    pub fn url(&self) -> &str {
        &self.shared.base_url
    }

    /// A predictable org: `users` users (`User {i}`, `user{i}@example.test`, created one
    /// second apart up to now; every tenth `SUSPENDED`), `groups` groups (user `i` in group
    /// `(i - 1) % groups + 1`), factors (an `ACTIVE` TOTP for users whose number is not a
    /// multiple of four; a `PENDING_ACTIVATION` SMS for multiples of four but not of eight;
    /// none for multiples of eight) and three applications. Returns the users' ids in order.
    pub fn seed(&self, users: u64, groups: u64) -> Vec<String> {
        let now = self.shared.clock.stamp();
        let mut org = self.shared.org();
        let group_ids: Vec<String> = (1..=groups)
            .map(|j| {
                let at = now - time::Duration::seconds((users + groups) as i64);
                data::seed_group(&mut org, j, at)
            })
            .collect();
        let mut ids = Vec::new();
        for i in 1..=users {
            let at = now - time::Duration::seconds((users - i) as i64);
            let id = data::seed_user(&mut org, i, at);
            if !group_ids.is_empty() {
                let group = &group_ids[((i - 1) % groups) as usize];
                data::add_member(&mut org, group, &id, at);
            }
            let factor = match (i % 4, i % 8) {
                (0, 0) => None,
                (0, _) => Some(("sms", "PENDING_ACTIVATION")),
                _ => Some(("token:software:totp", "ACTIVE")),
            };
            if let Some((kind, status)) = factor {
                data::enroll(&mut org, &id, kind, status, at);
            }
            ids.push(id);
        }
        for (name, label, mode) in [
            ("salesforce", "Salesforce.com", "SAML_2_0"),
            ("slack", "Slack", "SAML_2_0"),
            ("oidc_client", "Internal Wiki", "OPENID_CONNECT"),
        ] {
            data::add_app(&mut org, name, label, mode, now);
        }
        ids
    }

    /// Adds an `ACTIVE` user, stamped now.
    pub fn add_user(&self, first_name: &str, last_name: &str, email: &str) -> OktaUser {
        let at = self.shared.clock.stamp();
        let mut org = self.shared.org();
        let id = data::create_user(&mut org, first_name, last_name, email, at);
        org.users[&id].clone()
    }

    /// Changes a user's profile or status through `change`, stamped now, and logs it
    /// (`user.account.update_profile`, or the lifecycle event of a status change).
    ///
    /// # Panics
    /// When there is no such user: a mistake in the test.
    pub fn update_user(&self, id: &str, change: impl FnOnce(&mut OktaUser)) -> OktaUser {
        let at = self.shared.clock.stamp();
        let mut org = self.shared.org();
        data::update_user(&mut org, id, change, at)
    }

    pub fn add_member(&self, group: &str, user: &str) {
        let at = self.shared.clock.stamp();
        data::add_member(&mut self.shared.org(), group, user, at);
    }

    /// Enrols a factor (`token:software:totp`, `sms`, `push`…) with a status (`ACTIVE`,
    /// `PENDING_ACTIVATION`).
    pub fn enroll_factor(&self, user: &str, factor_type: &str, status: &str) -> OktaFactor {
        let at = self.shared.clock.stamp();
        data::enroll(&mut self.shared.org(), user, factor_type, status, at)
    }

    pub fn user(&self, id: &str) -> Option<OktaUser> {
        self.shared.org().users.get(id).cloned()
    }

    /// Every user as `GET /api/v1/users` (no filter) lists it, by id.
    pub fn users_json(&self) -> Vec<Value> {
        let render = self.shared.render();
        let org = self.shared.org();
        org.users
            .values()
            .filter(|user| user.status != UserStatus::Deprovisioned)
            .map(|user| render.user(user))
            .collect()
    }

    pub fn groups_json(&self) -> Vec<Value> {
        let render = self.shared.render();
        self.shared
            .org()
            .groups
            .values()
            .map(|g| render.group(g))
            .collect()
    }

    /// Every membership as `(group id, the member as GET /groups/{id}/users lists it)`.
    pub fn members_json(&self) -> Vec<(String, Value)> {
        let render = self.shared.render();
        let org = self.shared.org();
        org.members
            .iter()
            .flat_map(|(group, members)| {
                members
                    .iter()
                    .filter_map(|id| org.users.get(id))
                    .map(|user| (group.clone(), render.user(user)))
            })
            .collect()
    }

    /// Every factor as `(user id, the factor as GET /users/{id}/factors lists it)`, for the
    /// users `GET /api/v1/users` lists.
    pub fn factors_json(&self) -> Vec<(String, Value)> {
        let render = self.shared.render();
        let org = self.shared.org();
        org.factors
            .iter()
            .filter(|(user, _)| {
                org.users
                    .get(*user)
                    .is_some_and(|u| u.status != UserStatus::Deprovisioned)
            })
            .flat_map(|(user, factors)| {
                factors
                    .values()
                    .map(|factor| (user.clone(), render.factor(user, factor)))
            })
            .collect()
    }

    pub fn apps_json(&self) -> Vec<Value> {
        let render = self.shared.render();
        self.shared
            .org()
            .apps
            .values()
            .map(|a| render.app(a))
            .collect()
    }

    /// The System Log, oldest first.
    pub fn log_events(&self) -> Vec<LogEvent> {
        self.shared.org().log.clone()
    }

    pub fn log_json(&self) -> Vec<Value> {
        let render = self.shared.render();
        self.shared
            .org()
            .log
            .iter()
            .map(|e| render.log_event(e))
            .collect()
    }

    /// An event hook delivery carrying `events` (the newest log events, for instance), as
    /// Okta POSTs it to the hook's URL.
    pub fn event_hook(&self, events: &[LogEvent]) -> EventHookDelivery {
        let render = self.shared.render();
        hook::delivery(
            &render,
            &self.shared.base_url,
            events,
            self.shared.clock.now(),
        )
    }

    /// The test clock's time: what the next change is stamped with.
    pub fn now(&self) -> OffsetDateTime {
        self.shared.clock.now()
    }

    pub fn advance(&self, by: Duration) {
        self.shared.clock.advance(by);
    }

    /// The next `times` requests in the bucket of `path` answer `429 E0000047`.
    pub fn limit_next(&self, path: &str, times: u32) {
        self.shared.budgets.force(path, times);
    }

    /// How many access tokens `/oauth2/v1/token` has issued.
    pub fn token_grants(&self) -> u64 {
        self.shared.oauth.grants()
    }

    /// Every request answered so far, oldest first (`authorization` as its scheme only).
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.log.entries()
    }

    pub fn clear_requests(&self) {
        self.shared.log.clear();
    }
}

fn router(shared: Arc<Shared>) -> Router {
    let log = Arc::clone(&shared);
    Router::new()
        .route("/api/v1/users", get(routes::list_users))
        .route("/api/v1/users/{id}", get(routes::get_user))
        .route("/api/v1/users/{id}/factors", get(routes::list_factors))
        .route(
            "/api/v1/users/{id}/lifecycle/suspend",
            post(routes::suspend),
        )
        .route(
            "/api/v1/users/{id}/lifecycle/unsuspend",
            post(routes::unsuspend),
        )
        .route("/api/v1/groups", get(routes::list_groups))
        .route("/api/v1/groups/{id}/users", get(routes::list_members))
        .route(
            "/api/v1/groups/{group}/users/{user}",
            delete(routes::remove_member),
        )
        .route("/api/v1/apps", get(routes::list_apps))
        .route("/api/v1/logs", get(routes::list_logs))
        .route("/oauth2/v1/token", post(oauth::token))
        .fallback(routes::not_found)
        // Outermost last: the log sees every answer; the budget counts refused credentials.
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            wire::authenticate,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            wire::rate_limit,
        ))
        .layer(middleware::from_fn(move |request, next| {
            let log = Arc::clone(&log);
            async move { crate::standin::request_log::record_into(&log.log, request, next).await }
        }))
        .with_state(shared)
}

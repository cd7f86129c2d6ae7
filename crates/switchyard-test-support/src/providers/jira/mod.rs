//! A Jira Cloud stand-in: the REST v3 paths the built-in `jira` manifest uses, with Jira's
//! authentication, pagination, search, errors and rate-limit headers, shaped after
//! Atlassian's REST v3 reference.
//!
//! # Authentication
//! - `/rest/api/3/…` is the site (`https://{site}.atlassian.net`): `Authorization: Basic
//!   base64(email:api_token)`. Anything else answers `401` with the plain-text body
//!   `Client must be authenticated to access this resource.`, as Jira does.
//! - `/ex/jira/{cloud_id}/rest/api/3/…` is the OAuth 2.0 (3LO) gateway
//!   (`https://api.atlassian.com`): `Authorization: Bearer <access token>` and the site's
//!   cloud id; a wrong token answers `401 {"code":401,"message":"Unauthorized"}`, another
//!   cloud id `404 {"code":404,"message":"Not Found"}`. Record `self` links follow the path the
//!   request came in on.
//!
//! # Routes (under either prefix)
//! - `GET /rest/api/3/myself` → the user (`accountId`, `emailAddress`, `displayName`,
//!   `active`, `timeZone`, …).
//! - `GET /rest/api/3/project/search?startAt=(0)&maxResults=(50, at most 100)` →
//!   `{"self","nextPage"(not on the last page),"maxResults","startAt","total","isLast","values"}`,
//!   projects by key.
//! - `GET /rest/api/3/users/search?startAt=(0)&maxResults=(50, at most 1000)` → a top-level
//!   array of users by account id (people and apps, active or not).
//! - `POST /rest/api/3/search/jql` `{"jql","fields","maxResults"(50; at most 100 with fields,
//!   5000 without),"nextPageToken"}` → `{"issues":[{"id","key","self","fields"}],"nextPageToken"?,"isLast"}`;
//!   `nextPageToken` is absent on the last page. JQL: see [`jql`]; an unbounded query or
//!   anything else answers `400` with Jira's `errorMessages`. Only the asked `fields` are
//!   returned (none without `fields`, every one for `*all`/`*navigable`); times are Jira's
//!   `2024-01-01T10:00:00.000+1000`, in the user's time zone. The token is a keyset
//!   position (`updated`, `id`), so an issue changed during a walk is found later in it.
//! - `POST /rest/api/3/issue` `{"fields":{"project":{"key"},"issuetype":{"name"|"id"},"summary","description"(ADF)}}`
//!   → `201 {"id","key","self"}`; a bad field → `400 {"errorMessages":[],"errors":{field: message}}`.
//! - `GET /rest/api/3/issue/{key}/transitions` → `{"transitions":[{"id","name","to":{"name"}}]}`;
//!   `POST` `{"transition":{"id"}}` → `204`, an unknown id → `400`.
//! - `POST /rest/api/3/issue/{key}/comment` `{"body": ADF}` → `201` the comment.
//! - An unknown issue → `404 {"errorMessages":["Issue does not exist or you do not have permission to see it."],"errors":{}}`.
//!
//! # Rate limits
//! Every answer carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
//! `X-RateLimit-NearLimit: true` under 20 % left. A spent budget, or a forced
//! [`JiraStandIn::throttle_next`], answers `429` with `Retry-After` (seconds),
//! `X-RateLimit-Reset` (`yyyy-MM-ddTHH:mmZ`, Atlassian's documented form) and
//! `RateLimit-Reason: jira-burst-based`.
//!
//! # Webhooks
//! Not a route: [`JiraStandIn::issue_webhook`], [`JiraStandIn::project_webhook`] and
//! [`JiraStandIn::user_webhook`] build admin webhook deliveries (body and Jira's headers) for
//! a test to sign and post to Switchyard.
//!
//! Every change is stamped by the test clock (whole seconds), so answers depend only on the
//! data and the clock.

mod data;
mod guard;
pub(crate) mod jql;
mod routes;
#[cfg(test)]
mod tests;
mod webhook;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::{
    Router, middleware,
    routing::{get, post},
};
use secrecy::SecretString;
use serde_json::Value;
use switchyard_http::{CallScope, Credential, CredentialError, CredentialSource};
use time::{OffsetDateTime, UtcOffset, macros::datetime};

pub use data::{
    ISSUE_TYPES, JiraIssue, JiraProject, JiraUser, TRANSITIONS, adf_paragraph, jira_time,
};
pub use webhook::JiraWebhook;

use crate::serve::{Listener, Serving};
use crate::standin::{
    Failure, LoggedRequest, RateLimit, clock::Clock, faults::Faults, request_log::RequestLog,
};
use data::Site;

/// How a Jira stand-in starts.
#[derive(Clone)]
pub struct JiraOptions {
    /// The site's user: `myself`, and the basic credential's user name.
    pub email: String,
    pub api_token: String,
    /// The 3LO gateway's site id and the bearer token it accepts.
    pub cloud_id: String,
    pub access_token: String,
    /// The user's time zone: its IANA name (`myself.timeZone`) and its offset, which JQL
    /// times are read in and issue times written in. Use a zone without daylight saving.
    pub time_zone: String,
    pub utc_offset: UtcOffset,
    /// Requests a window allows; `None` never runs out (forced 429s still work).
    pub rate_limit: Option<RateLimit>,
    pub clock_start: OffsetDateTime,
}

impl Default for JiraOptions {
    fn default() -> Self {
        Self {
            email: "admin@example.test".into(),
            api_token: "jira-api-token".into(),
            cloud_id: "11223344-a1b2-3b33-c444-def123456789".into(),
            access_token: "jira-oauth-access-token".into(),
            time_zone: "UTC".into(),
            utc_offset: UtcOffset::UTC,
            rate_limit: None,
            clock_start: datetime!(2024-01-01 0:00 UTC),
        }
    }
}

// By hand, so the credentials never reach a test's output.
impl std::fmt::Debug for JiraOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JiraOptions")
            .field("email", &self.email)
            .field("cloud_id", &self.cloud_id)
            .field("time_zone", &self.time_zone)
            .field("rate_limit", &self.rate_limit)
            .finish_non_exhaustive()
    }
}

/// The account id of the site's own user (`myself`).
pub const MYSELF_ACCOUNT_ID: &str = "5b10a2844c20165700ede21g";

pub(crate) struct Shared {
    pub(crate) options: JiraOptions,
    pub(crate) base_url: String,
    pub(crate) clock: Clock,
    site: Mutex<Site>,
    pub(crate) faults: Faults,
    pub(crate) log: RequestLog,
    pub(crate) budget: Option<guard::Budget>,
    /// Every JQL query searched, and every write's path and JSON body, oldest first.
    searches: Mutex<Vec<String>>,
    writes: Mutex<Vec<(String, Value)>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn site(&self) -> MutexGuard<'_, Site> {
        lock(&self.site)
    }

    pub(crate) fn searched(&self, jql: &str) {
        lock(&self.searches).push(jql.to_owned());
    }

    pub(crate) fn wrote(&self, path: &str, body: &Value) {
        lock(&self.writes).push((path.to_owned(), body.clone()));
    }
}

/// A running Jira stand-in; clones share it, and it stops with the last one.
#[derive(Clone)]
pub struct JiraStandIn {
    shared: Arc<Shared>,
    _server: Serving,
}

/// How much [`JiraStandIn::seed`] creates.
#[derive(Debug, Clone, Copy)]
pub struct Seed {
    pub users: u32,
    pub projects: u32,
    pub issues: u32,
}

impl JiraStandIn {
    pub async fn start(options: JiraOptions) -> std::io::Result<Self> {
        let listener = Listener::bind().await?;
        let base_url = listener.url().to_owned();
        let shared = Arc::new(Shared {
            clock: Clock::starting_at(options.clock_start),
            budget: options.rate_limit.map(guard::Budget::new),
            options,
            base_url,
            site: Mutex::default(),
            faults: Faults::default(),
            log: RequestLog::default(),
            searches: Mutex::default(),
            writes: Mutex::default(),
        });
        shared.site().users.insert(
            MYSELF_ACCOUNT_ID.into(),
            JiraUser {
                account_id: MYSELF_ACCOUNT_ID.into(),
                account_type: "atlassian".into(),
                email: Some(shared.options.email.clone()),
                display_name: "Site Admin".into(),
                active: true,
            },
        );
        let server = listener.serve(router(Arc::clone(&shared)));
        Ok(Self {
            shared,
            _server: server,
        })
    }

    /// `http://127.0.0.1:<port>`: the site (basic auth).
    pub fn url(&self) -> &str {
        &self.shared.base_url
    }

    /// The 3LO gateway's base for this site: `http://127.0.0.1:<port>/ex/jira/<cloud id>`.
    pub fn oauth_url(&self) -> String {
        format!(
            "{}/ex/jira/{}",
            self.shared.base_url, self.shared.options.cloud_id
        )
    }

    pub fn options(&self) -> &JiraOptions {
        &self.shared.options
    }

    /// Adds users `u001…` (every fifth an app, every seventh inactive, every third hiding
    /// its email), projects `PRJ1…` and issues spread over them round-robin, created and
    /// changed one second apart up to now.
    pub fn seed(&self, seed: Seed) {
        let now = self.shared.clock.stamp();
        let mut site = self.shared.site();
        for n in 1..=seed.users {
            let app = n.is_multiple_of(5);
            let user = JiraUser {
                account_id: format!("5f0c{n:020x}"),
                account_type: if app { "app" } else { "atlassian" }.into(),
                email: (!app && !n.is_multiple_of(3)).then(|| format!("user{n}@example.test")),
                display_name: if app {
                    format!("Automation {n}")
                } else {
                    format!("User {n}")
                },
                active: !n.is_multiple_of(7),
            };
            site.users.insert(user.account_id.clone(), user);
        }
        for n in 1..=seed.projects {
            let project = JiraProject {
                id: (10_000 + n).to_string(),
                key: format!("PRJ{n}"),
                name: format!("Project {n}"),
            };
            site.projects.insert(project.key.clone(), project);
        }
        let keys: Vec<String> = site.projects.keys().cloned().collect();
        for n in 0..seed.issues {
            let Some(project_key) = keys.get(n as usize % keys.len().max(1)).cloned() else {
                break;
            };
            let at = now - time::Duration::seconds(i64::from(seed.issues - n));
            let id = site.next_issue_id();
            let number = site.next_issue_number(&project_key);
            let (_, status, _) = TRANSITIONS[n as usize % TRANSITIONS.len()];
            let issue = JiraIssue {
                id: id.to_string(),
                key: format!("{project_key}-{number}"),
                project_key,
                summary: format!("Issue number {n}"),
                issue_type: ISSUE_TYPES[n as usize % ISSUE_TYPES.len()].1.into(),
                status: status.into(),
                priority: match n % 4 {
                    0 => None,
                    1 => Some("High".into()),
                    2 => Some("Medium".into()),
                    _ => Some("Low".into()),
                },
                description: n
                    .is_multiple_of(2)
                    .then(|| adf_paragraph(&format!("Details of {n}"))),
                created: at,
                updated: at,
                comments: Vec::new(),
            };
            site.issues.insert(id, issue);
        }
    }

    pub fn users(&self) -> Vec<JiraUser> {
        self.shared.site().users.values().cloned().collect()
    }

    pub fn projects(&self) -> Vec<JiraProject> {
        self.shared.site().projects.values().cloned().collect()
    }

    pub fn issues(&self) -> Vec<JiraIssue> {
        self.shared.site().issues.values().cloned().collect()
    }

    pub fn issue(&self, key: &str) -> Option<JiraIssue> {
        self.shared.site().issue_by_key_mut(key).map(|i| i.clone())
    }

    /// The issues as a site search answers them with `fields`, by id.
    pub fn issue_records(&self, fields: &[&str]) -> Vec<Value> {
        let fields: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
        let site = self.shared.site();
        site.issues
            .values()
            .map(|i| i.to_json(&site, self.url(), self.shared.options.utc_offset, &fields))
            .collect()
    }

    /// The projects as the site's project search lists them.
    pub fn project_records(&self) -> Vec<Value> {
        let site = self.shared.site();
        site.projects
            .values()
            .map(|p| p.to_json(self.url()))
            .collect()
    }

    /// The users as the site's user search lists them.
    pub fn user_records(&self) -> Vec<Value> {
        let site = self.shared.site();
        site.users
            .values()
            .map(|u| u.to_json(self.url(), &self.shared.options.time_zone))
            .collect()
    }

    /// Adds or replaces a user.
    pub fn upsert_user(&self, user: JiraUser) {
        self.shared
            .site()
            .users
            .insert(user.account_id.clone(), user);
    }

    pub fn remove_user(&self, account_id: &str) -> Option<JiraUser> {
        self.shared.site().users.remove(account_id)
    }

    pub fn upsert_project(&self, project: JiraProject) {
        self.shared
            .site()
            .projects
            .insert(project.key.clone(), project);
    }

    pub fn remove_project(&self, key: &str) -> Option<JiraProject> {
        self.shared.site().projects.remove(key)
    }

    /// Changes an issue and stamps `updated` now; returns it as changed.
    pub fn update_issue(
        &self,
        key: &str,
        change: impl FnOnce(&mut JiraIssue),
    ) -> Option<JiraIssue> {
        let now = self.shared.clock.stamp();
        let mut site = self.shared.site();
        let issue = site.issue_by_key_mut(key)?;
        change(issue);
        issue.updated = now;
        Some(issue.clone())
    }

    /// Creates a `Task` in a project, stamped now, as if someone filed it in Jira.
    pub fn create_issue(&self, project_key: &str, summary: &str) -> JiraIssue {
        let now = self.shared.clock.stamp();
        let mut site = self.shared.site();
        let id = site.next_issue_id();
        let issue = JiraIssue {
            id: id.to_string(),
            key: format!("{project_key}-{}", site.next_issue_number(project_key)),
            project_key: project_key.to_owned(),
            summary: summary.to_owned(),
            issue_type: "Task".into(),
            status: "To Do".into(),
            priority: None,
            description: None,
            created: now,
            updated: now,
            comments: Vec::new(),
        };
        site.issues.insert(id, issue.clone());
        issue
    }

    pub fn delete_issue(&self, key: &str) -> Option<JiraIssue> {
        let mut site = self.shared.site();
        let id = site
            .issues
            .iter()
            .find(|(_, i)| i.key == key)
            .map(|(id, _)| *id)?;
        site.issues.remove(&id)
    }

    /// The test clock: what the next change is stamped with.
    pub fn now(&self) -> OffsetDateTime {
        self.shared.clock.now()
    }

    pub fn advance(&self, by: Duration) {
        self.shared.clock.advance(by);
    }

    /// The next `times` requests under `path_prefix` answer Jira's `429` with
    /// `Retry-After: retry_after` seconds.
    pub fn throttle_next(&self, path_prefix: &str, times: u32, retry_after: u64) {
        self.inject(guard::throttled(path_prefix, retry_after).times(times));
    }

    /// Queues a failure of the test's choosing (a `503` with `Retry-After`, say).
    pub fn inject(&self, failure: Failure) {
        self.shared.faults.push(failure);
    }

    /// Every request answered so far, oldest first (credentials as their scheme only).
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.log.entries()
    }

    /// Every JQL query searched, oldest first.
    pub fn searches(&self) -> Vec<String> {
        lock(&self.shared.searches).clone()
    }

    /// Every accepted write (create, transition, comment): its path and JSON body.
    pub fn writes(&self) -> Vec<(String, Value)> {
        lock(&self.shared.writes).clone()
    }
}

/// The site's basic credential (`email:api_token`) for a provider call stack.
#[derive(Clone)]
pub struct JiraBasic {
    pub email: String,
    pub api_token: String,
}

impl CredentialSource for JiraBasic {
    async fn credential(&self, _: &CallScope) -> Result<Option<Credential>, CredentialError> {
        Ok(Some(Credential::Basic {
            username: self.email.clone(),
            password: SecretString::from(self.api_token.clone()),
        }))
    }
}

fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/rest/api/3/myself", get(routes::myself))
        .route("/rest/api/3/project/search", get(routes::project_search))
        .route("/rest/api/3/users/search", get(routes::users_search))
        .route("/rest/api/3/search/jql", post(routes::search_jql))
        .route("/rest/api/3/issue", post(routes::create_issue))
        .route(
            "/rest/api/3/issue/{key}/transitions",
            get(routes::list_transitions).post(routes::transition),
        )
        .route("/rest/api/3/issue/{key}/comment", post(routes::add_comment));
    Router::new()
        .merge(api.clone())
        .nest("/ex/jira/{cloud_id}", api)
        .fallback(routes::not_found)
        // Outermost last: the log sees every answer; forced failures come first.
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            guard::authenticate,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            guard::rate_limit,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            guard::forced_failures,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            guard::log,
        ))
        .with_state(shared)
}

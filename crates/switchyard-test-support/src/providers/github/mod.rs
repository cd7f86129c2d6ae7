//! A GitHub stand-in: the REST API paths Switchyard's built-in `github` connector reads and
//! writes, with GitHub's wire format (shapes from GitHub's OpenAPI description, npm
//! `@octokit/openapi`, `api.github.com` 2022-11-28).
//!
//! ```ignore
//! let github = GitHub::start(GitHubOptions { token: Some("ghp_test".into()), ..Default::default() }).await?;
//! github.seed(Seed::default());
//! ```
//!
//! # Authentication
//! - `Authorization: Bearer <token>` or `token <token>` with [`GitHubOptions::token`] (a
//!   personal access token; answers carry `x-oauth-scopes` from [`GitHubOptions::scopes`]),
//!   or with an installation token this server issued (see below).
//! - No `Authorization`: `401 {"message":"Requires authentication",…}`; an unknown or
//!   expired token: `401 {"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}`.
//! - GitHub App ([`GitHubOptions::app`]): `POST /app/installations/{id}/access_tokens` with
//!   `Authorization: Bearer <JWT>`: the JWT is RS256, signed by the App's key, `iss` the
//!   App id (or client id), `iat` not in the future (60 s of skew), `exp` in the future and
//!   at most 10 minutes after `iat`. It answers `201 {"token":"ghs_…","expires_at":"…",
//!   "permissions":{…},"repository_selection":"all"}`; the token works on every API route
//!   until it expires ([`GitHubApp::token_lifetime`], 1 h) or
//!   [`GitHub::expire_installation_tokens`]. JWT problems answer `401` with GitHub's
//!   messages; an unknown installation `404`. `GET /app/installations/{id}` (JWT) answers the
//!   installation with its `permissions`.
//! - An installation token on `GET /user` answers `403 Resource not accessible by
//!   integration`; a personal token on `GET /installation/repositories` answers `403`.
//!
//! # API versions
//! `X-GitHub-Api-Version` may name `2022-11-28` (the default) or `2026-03-10`; answers say
//! which in `x-github-api-version-selected`; another version is `400 API version … is not
//! supported.`
//!
//! # Rate limits
//! Every answer carries `x-ratelimit-limit`, `-remaining`, `-used`, `-reset` (epoch seconds,
//! wall clock) and `-resource: core`, counted per credential ([`GitHubOptions::rate_limit`],
//! 5,000 an hour). A `304` costs nothing (GitHub's rule for authorized conditional requests).
//! A spent budget answers `403 {"message":"API rate limit exceeded for …"}` with
//! `x-ratelimit-remaining: 0`. [`GitHub::secondary_limit`] makes the next requests answer a
//! secondary limit: `403` or `429`, `retry-after`, `{"message":"You have exceeded a secondary
//! rate limit…"}`.
//!
//! # Lists
//! `GET /orgs/{org}/members` (`filter=all|2fa_disabled`, `role=all|admin|member`),
//! `/orgs/{org}/outside_collaborators`, `/orgs/{org}/teams`,
//! `/orgs/{org}/teams/{team_slug}/members`, `/orgs/{org}/repos`,
//! `/installation/repositories` (`{"total_count","repository_selection","repositories"}`):
//! `per_page` (default 30, capped at 100) and `page`; `Link` with `prev`, `next`, `last`,
//! `first` as GitHub orders them, pointing at GitHub's id-based aliases
//! (`/organizations/{org_id}/members?…`, `/organizations/{org_id}/team/{team_id}/members?…`),
//! which are served too. Every list and single object sends a weak `ETag`; `If-None-Match`
//! with it answers `304` without a body.
//!
//! # Single objects
//! `GET /user`, `GET /orgs/{org}`, `GET /repos/{owner}/{repo}` (the full repository with
//! `security_and_analysis`), `GET /repos/{owner}/{repo}/branches/{branch}/protection`
//! (`404 {"message":"Branch not protected",…}` when it is not, `404 Branch not found` for a
//! branch the repository lacks). Anything else: `404 {"message":"Not Found",…}`.
//!
//! # Writes
//! `POST /repos/{owner}/{repo}/issues` `{"title", "body"?, "labels"?, "assignees"?}` → `201`
//! issue; `POST /repos/{owner}/{repo}/issues/{issue_number}/comments` `{"body"}` → `201`
//! comment. A missing field answers `422 {"message":"Invalid request.\n\n\"title\" wasn't
//! supplied.",…}`, an unknown repository or issue `404`.
//!
//! # Webhooks
//! Not a route: [`webhooks`] builds deliveries (`ping`, `member`, `membership`,
//! `organization`, `repository`, `branch_protection_rule`, `team`) in GitHub's format.
//!
//! # Enterprise Server
//! With [`GitHubOptions::enterprise_server`] every route is under `/api/v3`, as on
//! `https://HOST/api/v3`, and so are the links and `url`s the answers carry.
//!
//! Data changes are stamped with the test clock ([`GitHub::advance`]), so answers depend only
//! on the data set: the same data gives the same bytes and ETags.

mod app;
mod auth;
mod data;
mod errors;
mod lists;
mod rate;
mod routes;
pub mod webhooks;

pub use webhooks::{Delivery, Event};

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::{
    Router, middleware,
    routing::{get, post},
};
use serde_json::Value;
use time::{OffsetDateTime, macros::datetime};

use crate::serve::{Listener, Serving};
use crate::standin::{
    Failure, LoggedRequest, RateLimit, clock::Clock, faults::Faults, request_log::RequestLog,
};

pub use app::{AppKey, GitHubApp, JwtClaims};
pub use data::{Org, Protection, Repository, Seed, Team, User, Visibility};

use app::Installations;
use rate::Budgets;

/// Where GitHub Enterprise Server serves the REST API.
const ENTERPRISE_PREFIX: &str = "/api/v3";

/// How the stand-in starts.
#[derive(Clone)]
pub struct GitHubOptions {
    /// The personal access token the API accepts; `None` accepts none (App tokens only).
    pub token: Option<String>,
    /// `x-oauth-scopes` on answers to the personal token (a classic token's scopes).
    pub scopes: Vec<String>,
    /// The GitHub App whose installation tokens the API accepts.
    pub app: Option<GitHubApp>,
    /// The organization's login (`acme`).
    pub organization: String,
    /// The login `GET /user` answers for the personal token.
    pub login: String,
    pub rate_limit: Option<RateLimit>,
    pub clock_start: OffsetDateTime,
    /// Serve as GitHub Enterprise Server does, under `/api/v3` ([`GitHub::url`] ends with it).
    pub enterprise_server: bool,
}

impl Default for GitHubOptions {
    fn default() -> Self {
        Self {
            token: None,
            scopes: vec!["read:org".into(), "repo".into()],
            app: None,
            organization: "acme".into(),
            login: "octocat".into(),
            rate_limit: Some(RateLimit::default()),
            clock_start: datetime!(2024-01-01 0:00 UTC),
            enterprise_server: false,
        }
    }
}

// By hand, so the token never reaches a test's output.
impl std::fmt::Debug for GitHubOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubOptions")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("scopes", &self.scopes)
            .field("app", &self.app)
            .field("organization", &self.organization)
            .field("login", &self.login)
            .field("rate_limit", &self.rate_limit)
            .field("clock_start", &self.clock_start)
            .field("enterprise_server", &self.enterprise_server)
            .finish()
    }
}

/// What the routes share with the test's handle.
pub(crate) struct Shared {
    pub(crate) options: GitHubOptions,
    /// `http://127.0.0.1:<port>`, and `/api/v3` for Enterprise Server: links and `url`s.
    pub(crate) base_url: String,
    pub(crate) clock: Clock,
    org: Mutex<Org>,
    pub(crate) installations: Installations,
    pub(crate) budgets: Budgets,
    pub(crate) faults: Faults,
    pub(crate) log: RequestLog,
}

impl Shared {
    /// The data set, locked for one read or change; never held across an await.
    pub(crate) fn org(&self) -> MutexGuard<'_, Org> {
        self.org.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running stand-in. Clones share the server; it stops when the last clone is dropped.
#[derive(Clone)]
pub struct GitHub {
    shared: Arc<Shared>,
    _server: Serving,
}

impl GitHub {
    /// Binds `127.0.0.1:0` and serves until the last handle is dropped.
    pub async fn start(options: GitHubOptions) -> std::io::Result<Self> {
        let listener = Listener::bind().await?;
        let prefix = if options.enterprise_server {
            ENTERPRISE_PREFIX
        } else {
            ""
        };
        let base_url = format!("{}{prefix}", listener.url());
        let shared = Arc::new(Shared {
            clock: Clock::starting_at(options.clock_start),
            org: Mutex::new(Org::new(&options.organization, &base_url)),
            installations: Installations::default(),
            budgets: Budgets::new(options.rate_limit),
            faults: Faults::default(),
            log: RequestLog::default(),
            base_url,
            options,
        });
        let server = listener.serve(match prefix {
            "" => router(Arc::clone(&shared)),
            prefix => Router::new().nest(prefix, router(Arc::clone(&shared))),
        });
        Ok(Self {
            shared,
            _server: server,
        })
    }

    /// `http://127.0.0.1:<port>` (`…/api/v3` for Enterprise Server), without a trailing
    /// slash: a connection's `base_url`.
    pub fn url(&self) -> &str {
        &self.shared.base_url
    }

    /// The organization's login.
    pub fn organization(&self) -> &str {
        &self.shared.options.organization
    }

    /// Adds the seed's members, outside collaborators, teams and repositories.
    pub fn seed(&self, seed: Seed) {
        let at = self.shared.clock.stamp();
        self.shared.org().seed(&seed, at);
    }

    /// Runs `change` on the data set; what it stamps gets the test clock's time.
    pub fn change<T>(&self, change: impl FnOnce(&mut Org) -> T) -> T {
        let at = self.shared.clock.stamp();
        let mut org = self.shared.org();
        org.now = at;
        change(&mut org)
    }

    /// A list exactly as the API answers it, every page joined: `"members"`,
    /// `"members_2fa_disabled"`, `"outside_collaborators"`, `"teams"`, `"repositories"`.
    pub fn list(&self, what: &str) -> Vec<Value> {
        self.shared.org().list(what).unwrap_or_default()
    }

    /// `GET /orgs/{org}/teams/{slug}/members`, every page joined.
    pub fn team_members(&self, slug: &str) -> Vec<Value> {
        self.shared
            .org()
            .team_members_json(slug)
            .unwrap_or_default()
    }

    /// `GET /repos/{owner}/{repo}`.
    pub fn repository(&self, name: &str) -> Option<Value> {
        self.shared.org().full_repository_json(name)
    }

    /// `GET /repos/{owner}/{repo}/branches/{default branch}/protection`, when protected.
    pub fn default_branch_protection(&self, repository: &str) -> Option<Value> {
        let org = self.shared.org();
        let branch = org.repository(repository)?.default_branch.clone();
        org.protection_json(repository, &branch)
    }

    /// Opens an issue as the token's user, as if through the API; returns it.
    ///
    /// # Panics
    /// When there is no such repository: a mistake in the test.
    pub fn open_issue(&self, repository: &str, title: &str) -> Value {
        let at = self.shared.clock.stamp();
        let mut org = self.shared.org();
        org.now = at;
        let author = org.user_json(1, &self.shared.options.login, "User");
        org.create_issue(
            repository,
            title.to_owned(),
            None,
            Vec::new(),
            Vec::new(),
            author,
        )
        .unwrap_or_else(|| panic!("no repository {repository}"))
    }

    /// Issues created through the API, oldest first, as `GET` would answer them.
    pub fn issues(&self, repository: &str) -> Vec<Value> {
        self.shared.org().issues_json(repository)
    }

    /// Comments created through the API on one issue, oldest first.
    pub fn comments(&self, repository: &str, number: u64) -> Vec<Value> {
        self.shared.org().comments_json(repository, number)
    }

    /// The test clock's time: what the next change is stamped with.
    pub fn now(&self) -> OffsetDateTime {
        self.shared.clock.now()
    }

    pub fn advance(&self, by: Duration) {
        self.shared.clock.advance(by);
    }

    /// The next `times` requests answer GitHub's secondary rate limit: `status` (403 or 429),
    /// `retry-after: <retry_after_secs>` and its message.
    pub fn secondary_limit(&self, status: u16, retry_after_secs: u64, times: u32) {
        self.shared
            .budgets
            .secondary_limit(status, retry_after_secs, times);
    }

    /// Queues a failure exactly as given (no rate-limit headers), before authentication.
    pub fn inject(&self, failure: Failure) {
        self.shared.faults.push(failure);
    }

    /// How many installation tokens `POST /app/installations/{id}/access_tokens` issued.
    pub fn installation_tokens_issued(&self) -> usize {
        self.shared.installations.issued()
    }

    /// The claims of every JWT the access-token route accepted, oldest first.
    pub fn accepted_jwts(&self) -> Vec<JwtClaims> {
        self.shared.installations.accepted()
    }

    /// Makes every installation token issued so far answer `401 Bad credentials`.
    pub fn expire_installation_tokens(&self) {
        self.shared.installations.expire_all();
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
    Router::new()
        .route("/user", get(routes::user))
        .route("/orgs/{org}", get(routes::organization))
        .route("/orgs/{org}/members", get(lists::org_members))
        .route("/organizations/{id}/members", get(lists::org_members_by_id))
        .route(
            "/orgs/{org}/outside_collaborators",
            get(lists::outside_collaborators),
        )
        .route(
            "/organizations/{id}/outside_collaborators",
            get(lists::outside_collaborators_by_id),
        )
        .route("/orgs/{org}/teams", get(lists::teams))
        .route("/organizations/{id}/teams", get(lists::teams_by_id))
        .route("/orgs/{org}/teams/{slug}/members", get(lists::team_members))
        .route(
            "/organizations/{id}/team/{team_id}/members",
            get(lists::team_members_by_id),
        )
        .route("/orgs/{org}/repos", get(lists::repositories))
        .route("/organizations/{id}/repos", get(lists::repositories_by_id))
        .route(
            "/installation/repositories",
            get(lists::installation_repositories),
        )
        .route("/repos/{owner}/{repo}", get(routes::repository))
        .route(
            "/repos/{owner}/{repo}/branches/{branch}/protection",
            get(routes::branch_protection),
        )
        .route("/repos/{owner}/{repo}/issues", post(routes::create_issue))
        .route(
            "/repos/{owner}/{repo}/issues/{number}/comments",
            post(routes::create_comment),
        )
        .route(
            "/app/installations/{id}/access_tokens",
            post(app::access_token),
        )
        .route("/app/installations/{id}", get(app::installation))
        .fallback(routes::not_found)
        // The innermost layer runs last: log → faults → API version → auth → rate limit →
        // route.
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            rate::enforce,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            auth::authenticate,
        ))
        .layer(middleware::from_fn(auth::api_version))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            inject_faults,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            record_request,
        ))
        .with_state(shared)
}

async fn inject_faults(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    match shared.faults.take(request.uri().path()) {
        Some(response) => response,
        None => next.run(request).await,
    }
}

async fn record_request(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    crate::standin::request_log::record_into(&shared.log, request, next).await
}

#[cfg(test)]
mod tests;

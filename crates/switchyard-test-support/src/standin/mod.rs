//! A stand-in provider: a local HTTP server that lists one data set in every pagination
//! style and incremental mode Switchyard's connector manifests describe, with the header
//! names, status codes and body shapes of the providers each style comes from.
//!
//! ```ignore
//! let standin = StandIn::start(StandInOptions { token: Some("t0k".into()), ..Default::default() }).await?;
//! standin.seed(250);
//! let page = reqwest::Client::new()
//!     .get(format!("{}/link/items?per_page=100", standin.url()))
//!     .bearer_auth("t0k")
//!     .send()
//!     .await?;
//! ```
//!
//! # Data
//! Items `{"id":"u00042","name":"User 42","email":"user42@example.test","status":"active"|"suspended","updated_at":"2024-01-01T00:00:00Z"}`,
//! listed by `id` (byte order). [`StandIn::seed`] adds items `u00001`…, changed one second
//! apart up to the clock's current time (every tenth is `suspended`). Every change sets
//! `updated_at` from the test clock ([`StandIn::advance`]; it starts at
//! [`StandInOptions::clock_start`], 2024-01-01T00:00:00Z by default) in whole seconds, so
//! several changes can share one timestamp. A deleted item is simply gone from every list.
//!
//! [`DataMode::Virtual`] serves `count` items computed from their position instead, built
//! only when a page asks for them: item `n` is the seeded item `n`, the last one changed at
//! `clock_start`; ids have at least five digits, more when `count` needs them (a million
//! items are `u0000001`…`u1000000`). It is read-only: `POST /items` answers `405`, and the
//! handle's mutating methods panic.
//!
//! # Every route
//! - Authentication: when [`StandInOptions::token`] is set, every route requires
//!   `Authorization: Bearer <token>`; otherwise `401` with `WWW-Authenticate: Bearer` and the
//!   route's error body (codes below).
//! - Rate limit, on by default at 5,000 requests an hour (GitHub's), `None` turns it off:
//!   every response carries `x-ratelimit-limit`, `x-ratelimit-remaining` and
//!   `x-ratelimit-reset` (epoch seconds, wall clock). A spent budget answers `429` with
//!   `Retry-After: <seconds>` and the error body; a `304` does not count.
//! - Every list page sends a strong `ETag` (a SHA-256 of the body and the `Link` header);
//!   `If-None-Match` naming it (weak comparison, lists and `*` accepted) answers
//!   `304 Not Modified` with the `ETag`, no body.
//! - Page sizes outside `1..=max`, negative or non-numeric numbers, a bad `updated_since` or
//!   a cursor this server did not issue answer `400` with the route's error body.
//! - Error bodies by route family (codes in brackets):
//!   - REST (`/me`, `/link`, `/next`, `/offset`, `/page`, `/items`):
//!     `{"message":"…","code":"…"}` [`unauthorized`, `rate_limited`, `invalid_parameter`,
//!     `invalid_cursor`, `invalid_json`, `missing_field`, `read_only`, `not_found`];
//!     `422` adds `"errors":[{"resource":"Item","field":"email","code":"missing_field"}]`.
//!   - Slack (`/cursor`): `{"ok":false,"error":"…"}` [`not_authed`, `invalid_auth`,
//!     `ratelimited`, `invalid_arguments`, `invalid_cursor`].
//!   - Graph (`/delta`): `{"error":{"code":"…","message":"…"}}` [`InvalidAuthenticationToken`,
//!     `TooManyRequests`, `BadRequest`, `resyncRequired`].
//!   - GraphQL (`/graphql`): `{"errors":[{"type":"…","message":"…"}]}` [`UNAUTHENTICATED`,
//!     `RATE_LIMITED`, `INVALID_ARGUMENT`, `INVALID_CURSOR_ARGUMENTS`, `PARSE_ERROR`,
//!     `UNKNOWN_QUERY`].
//!
//!   Statuses are HTTP's own on every route: Slack itself answers most errors `200` with
//!   `"ok":false`, and the stand-in does not, so one error policy covers every style;
//!   GraphQL errors are `400`, as the GraphQL-over-HTTP spec allows.
//! - Injected failures ([`StandIn::inject`]) answer first, exactly as given, after
//!   [`StandInOptions::latency`] (zero by default), which every answer waits.
//!
//! # Routes
//! - `GET /me` → `200 {"id":1,"login":"<login>"}`, `x-oauth-scopes: items:read, items:write`
//!   ([`StandInOptions::scopes`] joined with `", "`).
//! - **link_header** (GitHub) `GET /link/items?per_page=(30, max 100)&page=(1…)` → a JSON
//!   array; `Link: <abs>; rel="next", <abs>; rel="last"` before the last page and
//!   `<abs>; rel="prev", <abs>; rel="first"` after the first, each URL
//!   `http://127.0.0.1:<port>/link/items?per_page=N&page=K`. No `Link` when one page holds
//!   everything; a page past the end is `[]`.
//! - **cursor** (Slack) `GET /cursor/items?limit=(100, max 1000)&cursor=&updated_since=` →
//!   `{"ok":true,"items":[…],"response_metadata":{"next_cursor":"…"}}`; `next_cursor` is `""`
//!   on the last page. An absent or empty `cursor` starts the walk.
//! - **next_url** `GET /next/items?page_size=(50, max 100)` →
//!   `{"results":[…],"next":"http://127.0.0.1:<port>/next/items?page_size=N&cursor=…"}`,
//!   `"next":null` on the last page.
//! - **offset** `GET /offset/items?offset=(0)&limit=(50, max 100)&updated_since=` →
//!   `{"items":[…],"total":N}`, `total` counting what the filter matches.
//! - **page** `GET /page/items?page=(1…)&page_size=(25, max 100)` →
//!   `{"items":[…],"page":K,"total_pages":M}`; `M = ceil(total / page_size)`, `0` when empty;
//!   a page past the end has no items.
//! - **graphql_relay** `POST /graphql` with `{"query":"…items…","variables":{"first":N,"after":"…"|null}}`
//!   (`first` required, 1 to 100) →
//!   `{"data":{"items":{"edges":[{"cursor":"…","node":{…}}],"pageInfo":{"hasNextPage":true,"endCursor":"…"|null}}}}`.
//!   Not an ETag route (a `POST`).
//! - **updated_since** on `/cursor/items` and `/offset/items`: RFC 3339, *inclusive*; items
//!   with `updated_at >= since` ordered by `(updated_at, id)`. A client that saves the
//!   largest `updated_at` it saw (minus any lookback) and passes it back sees every later
//!   change at least once: the bound is inclusive, so changes sharing the last second are
//!   not lost, and duplicates are for the client's upsert to absorb. Walk it with the
//!   cursor route: its cursor is a keyset position `(updated_at, id)`, so an item changed
//!   during the walk moves past the cursor and is still found. With `offset`, a change
//!   during the walk shifts later items back and one can be skipped, as on real offset
//!   APIs. A cursor from one order cannot continue the other (`400 invalid_cursor`).
//! - **delta_token** (Microsoft Graph) `GET /delta/items`, page size from
//!   `Prefer: odata.maxpagesize=N` (100, max 999; answered with `preference-applied`) →
//!   `{"value":[…],"@odata.nextLink":"http://127.0.0.1:<port>/delta/items?$skiptoken=…"}`,
//!   and on a round's last page
//!   `{"value":[…],"@odata.deltaLink":"http://127.0.0.1:<port>/delta/items?$deltatoken=…"}`.
//!   The first round lists every item; following the delta link lists, in id order, the
//!   items changed since the token's round began (as they are now) and the deleted ones as
//!   `{"id":"…","@removed":{"reason":"deleted"}}`, then a fresh delta link. A change made
//!   during a round is listed again next round (at least once). An unknown token, or one
//!   issued before [`StandIn::expire_delta_tokens`], answers `410 Gone`
//!   `{"error":{"code":"resyncRequired",…}}`: start again without a token.
//! - **cursor in the body** (Jira's `POST /rest/api/3/search/jql`) `POST /search/items`
//!   with `{"maxResults":(50, max 100),"nextPageToken":"…"}` →
//!   `{"items":[…],"nextPageToken":"…","isLast":false}`; the last page has no
//!   `nextPageToken` and `"isLast":true`. Not an ETag route (a `POST`).
//! - **offset with `isLast`** (Jira's capped lists) `GET /capped/items?startAt=(0)&maxResults=(50, max 1000)`
//!   → `{"startAt":S,"maxResults":M,"total":N,"isLast":bool,"values":[…]}`, at most
//!   [`CAPPED_PAGE`] (20) items whatever was asked, so a short page is not the end.
//! - **polling log** (Okta's System Log) `GET /log/items?limit=(100, max 1000)&after=` → a
//!   JSON array by id with `Link: <…>; rel="self", <…>; rel="next"` on *every* page: the
//!   `next` of an empty page is its own position. Only an empty page ends a read.
//! - **actions** `POST /items` with `{"name":"…","email":"…"}` → `201` and the new item
//!   (the next unused generated id). A missing or empty field → `422`; a body that is not
//!   JSON → `400 invalid_json`. With `Idempotency-Key: <key>`, the first response for the key
//!   (whatever its status) is replayed to every later request with it, with
//!   `idempotent-replayed: true`.
//! - Webhooks are not a route: [`github_webhook`] builds a signed delivery for an
//!   [`ItemChange`] to post to Switchyard.
//!
//! Responses depend only on the data set and the test clock: the same data gives the same
//! bytes, ETags and cursors.

mod actions;
mod auth;
mod client;
pub(crate) mod clock;
mod dataset;
mod delta;
pub(crate) mod faults;
mod generated;
mod graphql;
mod item;
mod listing;
mod params;
mod polling;
mod problem;
mod rate_limit;
pub(crate) mod request_log;
mod rest;
mod search;
mod slack;
mod state;
mod stored;
mod tokens;
mod webhook;

use std::sync::Arc;

use axum::{
    Router, middleware,
    routing::{get, post},
};
use time::{OffsetDateTime, macros::datetime};

pub use client::{BearerToken, provider_client};
pub use faults::Failure;
pub use item::{Item, ItemStatus};
pub use rate_limit::RateLimit;
pub use request_log::LoggedRequest;
pub use search::CAPPED_PAGE;
pub use webhook::{ItemChange, SignedWebhook, github_signature, github_webhook};

use crate::serve::{Listener, Serving};
use dataset::DataSet;
use generated::Generated;
use problem::{Dialect, Problem};
use state::Shared;
use stored::Stored;

/// How a stand-in starts. `Default` is: no token required, GitHub's rate limit, an empty
/// stored data set, the clock at 2024-01-01T00:00:00Z.
#[derive(Clone)]
pub struct StandInOptions {
    /// The bearer token every route requires; `None` accepts any request.
    pub token: Option<String>,
    /// `login` in `GET /me`.
    pub login: String,
    /// `x-oauth-scopes` of `GET /me`.
    pub scopes: Vec<String>,
    pub rate_limit: Option<RateLimit>,
    pub data: DataMode,
    pub clock_start: OffsetDateTime,
    /// Added before every answer (a slow provider, so a test can stop a sync mid-way).
    pub latency: std::time::Duration,
}

impl Default for StandInOptions {
    fn default() -> Self {
        Self {
            token: None,
            login: "standin".into(),
            scopes: vec!["items:read".into(), "items:write".into()],
            rate_limit: Some(RateLimit::default()),
            data: DataMode::Stored,
            clock_start: datetime!(2024-01-01 0:00 UTC),
            latency: std::time::Duration::ZERO,
        }
    }
}

// By hand, so the token never reaches a test's output.
impl std::fmt::Debug for StandInOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandInOptions")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("login", &self.login)
            .field("scopes", &self.scopes)
            .field("rate_limit", &self.rate_limit)
            .field("data", &self.data)
            .field("clock_start", &self.clock_start)
            .field("latency", &self.latency)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataMode {
    /// Items the test seeds and changes.
    #[default]
    Stored,
    /// `count` read-only items generated per page, for benchmarks.
    Virtual { count: u64 },
}

/// A running stand-in. Clones share the server; it stops when the last clone is dropped.
///
/// The methods that change data (`seed`, `upsert`, `delete`, `expire_delta_tokens`) panic on
/// a virtual data set, which is read-only.
#[derive(Clone)]
pub struct StandIn {
    shared: Arc<Shared>,
    _server: Serving,
}

impl StandIn {
    /// Binds `127.0.0.1:0` and serves until the last handle is dropped.
    pub async fn start(options: StandInOptions) -> std::io::Result<Self> {
        let listener = Listener::bind().await?;
        let base_url = listener.url().to_owned();
        let data = match options.data {
            DataMode::Stored => DataSet::Stored(Stored::default()),
            DataMode::Virtual { count } => {
                DataSet::Generated(Generated::new(count, options.clock_start))
            }
        };
        let shared = Arc::new(Shared::new(options, base_url, data));
        let server = listener.serve(router(Arc::clone(&shared)));
        Ok(Self {
            shared,
            _server: server,
        })
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.shared.base_url
    }

    /// Adds (or replaces) items `u00001`…`u<count>`, changed one second apart up to now.
    pub fn seed(&self, count: u64) {
        let at = self.shared.clock.stamp();
        self.with_stored(|set| set.seed(count, at));
    }

    /// Stores the item under its id, stamped now; returns it as stored.
    pub fn upsert(&self, item: Item) -> Item {
        let at = self.shared.clock.stamp();
        self.with_stored(|set| set.upsert(item, at))
    }

    /// Deletes the item; returns it, or `None` when there was none.
    pub fn delete(&self, id: &str) -> Option<Item> {
        self.with_stored(|set| set.delete(id))
    }

    pub fn get(&self, id: &str) -> Option<Item> {
        self.shared.data().get(id)
    }

    /// The whole data set by id: what a complete sync must end up equal to. For a virtual
    /// set this builds every item.
    pub fn items(&self) -> Vec<Item> {
        self.shared.data().after_id(None, usize::MAX).items
    }

    pub fn len(&self) -> usize {
        self.shared.data().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The test clock's time: what the next change is stamped with (to the second).
    pub fn now(&self) -> OffsetDateTime {
        self.shared.clock.now()
    }

    pub fn advance(&self, by: std::time::Duration) {
        self.shared.clock.advance(by);
    }

    /// Makes every delta token issued so far answer `410 Gone`.
    pub fn expire_delta_tokens(&self) {
        self.with_stored(Stored::expire_delta_tokens);
    }

    /// The next `times` requests under `path_prefix` answer `status` with no body.
    pub fn fail_next(&self, path_prefix: &str, status: u16, times: u32) {
        self.inject(Failure::new(path_prefix, status).times(times));
    }

    /// Queues a failure with a body and headers of its choosing.
    pub fn inject(&self, failure: Failure) {
        self.shared.faults.push(failure);
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.log.entries()
    }

    pub fn clear_requests(&self) {
        self.shared.log.clear();
    }

    /// # Panics
    /// On a virtual data set, which is read-only: a mistake in the test.
    fn with_stored<T>(&self, change: impl FnOnce(&mut Stored) -> T) -> T {
        let mut data = self.shared.data();
        match data.stored_mut() {
            Ok(set) => change(set),
            Err(_) => panic!("a virtual data set is read-only"),
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/me", get(actions::me))
        .route("/items", post(actions::create_item))
        .route("/link/items", get(rest::link_items))
        .route("/next/items", get(rest::next_items))
        .route("/offset/items", get(rest::offset_items))
        .route("/page/items", get(rest::page_items))
        .route("/cursor/items", get(slack::cursor_items))
        .route("/delta/items", get(delta::delta_items))
        .route("/graphql", post(graphql::graphql))
        .route("/search/items", post(search::search_items))
        .route("/capped/items", get(search::capped_items))
        .route("/log/items", get(polling::log_items))
        .fallback(not_found)
        // Outermost last: the log sees every answer, injected failures come before
        // authentication and the rate limit, the budget counts rejected credentials too.
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            auth::require_token,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            rate_limit::enforce,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            faults::inject,
        ))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            request_log::record,
        ))
        .with_state(shared)
}

async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    Problem::NotFound.response(Dialect::of_path(uri.path()))
}

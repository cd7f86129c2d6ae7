//! Styles shaped like Jira Cloud's lists, whose last page says so with `isLast`:
//! - a search whose cursor and page size travel in the JSON request body
//!   (`POST /rest/api/3/search/jql`: `nextPageToken`, `maxResults`);
//! - an offset list that gives fewer items than asked (Jira caps `maxResults` per endpoint),
//!   so only `isLast`, not a short page, tells the end.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, Uri},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{
    dataset::Slice,
    listing::list_response,
    params::{PageLimits, Params, check_page_size},
    problem::{Dialect, Problem, respond},
    state::Shared,
    tokens::Cursor,
};

/// `maxResults` in a search body: 50 unless asked, at most 100.
pub(crate) const SEARCH_LIMITS: PageLimits = PageLimits {
    default: 50,
    max: 100,
};
/// `maxResults` on the capped list: any size up to 1,000 is accepted, at most
/// [`CAPPED_PAGE`] are given.
pub(crate) const CAPPED_LIMITS: PageLimits = PageLimits {
    default: 50,
    max: 1_000,
};
/// The most items a capped page holds, whatever was asked.
pub const CAPPED_PAGE: usize = 20;

/// `POST /search/items` with `{"maxResults":N,"nextPageToken":"…"}` (both optional) →
/// `{"items":[…],"nextPageToken":"…","isLast":false}`; the last page has no
/// `nextPageToken` and `"isLast":true`.
pub(crate) async fn search_items(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    respond(Dialect::Rest, search_page(&shared, &body))
}

fn search_page(shared: &Shared, body: &[u8]) -> Result<Response, Problem> {
    let request: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|_| Problem::InvalidJson)?
    };
    let max_results = match request.get("maxResults") {
        None | Some(Value::Null) => SEARCH_LIMITS.default,
        Some(value) => value
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| Problem::InvalidParameter {
                name: "maxResults",
                reason: "must be a whole number".into(),
            })?,
    };
    let max_results = check_page_size("maxResults", max_results, SEARCH_LIMITS)?;
    let after = match request.get("nextPageToken") {
        None | Some(Value::Null) => None,
        Some(Value::String(token)) => match Cursor::decode(token) {
            Ok(Cursor::Id(id)) => Some(id),
            _ => return Err(Problem::InvalidCursor),
        },
        Some(_) => return Err(Problem::InvalidCursor),
    };
    let window = shared.data().after_id(after.as_deref(), max_results);
    let mut page = json!({ "items": window.items, "isLast": !window.more });
    if window.more
        && let Some(last) = window.items.last()
    {
        page["nextPageToken"] = Value::String(Cursor::Id(last.id.clone()).encode());
    }
    // A search is a POST: no ETag, as on the real API.
    Ok(axum::Json(page).into_response())
}

/// `GET /capped/items?startAt=(0)&maxResults=(50)` →
/// `{"startAt":S,"maxResults":M,"total":N,"isLast":bool,"values":[…]}` with
/// `M = min(asked, CAPPED_PAGE)`.
pub(crate) async fn capped_items(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    respond(Dialect::Rest, capped_page(&shared, &uri, &headers))
}

fn capped_page(shared: &Shared, uri: &Uri, headers: &HeaderMap) -> Result<Response, Problem> {
    let params = Params::of(uri)?;
    let asked = params.page_size("maxResults", CAPPED_LIMITS)?;
    let start_at = params.number_at_least("startAt", 0, 0)?;
    let given = asked.min(CAPPED_PAGE);
    let Slice { items, total } = shared.data().offset_by_id(start_at, given);
    let body = json!({
        "startAt": start_at,
        "maxResults": given,
        "total": total,
        "isLast": start_at + items.len() >= total,
        "values": items,
    });
    Ok(list_response(headers, &body, None))
}

//! The `link_header` style of a log read by polling, shaped like Okta's System Log
//! (`GET /api/v1/logs`): every page links to a `next` one, the last included, because new
//! events may arrive there later. Only an empty page tells a reader it has caught up.

use std::sync::Arc;

use axum::{
    extract::State,
    http::{HeaderMap, Uri},
    response::Response,
};
use serde_json::json;

use super::{
    listing::list_response,
    params::{PageLimits, Params},
    problem::{Dialect, Problem, respond},
    state::Shared,
    tokens::Cursor,
};

/// Okta's `limit` on the System Log: 100 unless asked, at most 1,000.
pub(crate) const LOG_LIMITS: PageLimits = PageLimits {
    default: 100,
    max: 1_000,
};

/// `GET /log/items?limit=&after=` → a JSON array by id, with
/// `Link: <…?limit=N&after=…>; rel="self", <…?limit=N&after=…>; rel="next"` on every page;
/// an empty page's `next` repeats its own position.
pub(crate) async fn log_items(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    respond(Dialect::Rest, log_page(&shared, &uri, &headers))
}

fn log_page(shared: &Shared, uri: &Uri, headers: &HeaderMap) -> Result<Response, Problem> {
    let params = Params::of(uri)?;
    let limit = params.page_size("limit", LOG_LIMITS)?;
    let after = match params.get("after").map(Cursor::decode) {
        None => None,
        Some(Ok(Cursor::Id(id))) => Some(id),
        Some(_) => return Err(Problem::InvalidCursor),
    };
    let window = shared.data().after_id(after.as_deref(), limit);
    let url = |after: Option<&str>| {
        let cursor = after.map(|id| Cursor::Id(id.to_owned()).encode());
        shared.url(&format!(
            "/log/items?limit={limit}&after={}",
            cursor.unwrap_or_default()
        ))
    };
    let next = window
        .items
        .last()
        .map(|item| item.id.as_str())
        .or(after.as_deref());
    let link = format!(
        "<{}>; rel=\"self\", <{}>; rel=\"next\"",
        url(after.as_deref()),
        url(next)
    );
    Ok(list_response(headers, &json!(window.items), Some(link)))
}

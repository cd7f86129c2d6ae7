//! The `cursor` style, shaped like Slack's Web API: the cursor travels in the body, and an
//! empty `next_cursor` ends the walk.

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

/// Slack's `limit`: 100 unless asked, at most 1,000.
pub(crate) const CURSOR_LIMITS: PageLimits = PageLimits {
    default: 100,
    max: 1_000,
};

/// `GET /cursor/items?limit=&cursor=[&updated_since=]`:
/// `{"ok":true,"items":[…],"response_metadata":{"next_cursor":"…"}}`.
pub(crate) async fn cursor_items(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    respond(Dialect::Slack, cursor_page(&shared, &uri, &headers))
}

fn cursor_page(shared: &Shared, uri: &Uri, headers: &HeaderMap) -> Result<Response, Problem> {
    let params = Params::of(uri)?;
    let limit = params.page_size("limit", CURSOR_LIMITS)?;
    let cursor = params
        .get("cursor")
        .map(Cursor::decode)
        .transpose()
        .map_err(|_| Problem::InvalidCursor)?;
    let since = params.updated_since()?;
    // A cursor keeps its order: an id cursor cannot continue an `updated_since` walk.
    let window = match (since, &cursor) {
        (None, None) => shared.data().after_id(None, limit),
        (None, Some(Cursor::Id(id))) => shared.data().after_id(Some(id), limit),
        (Some(since), None) => shared.data().updated_after(since, None, limit),
        (Some(since), Some(Cursor::Updated(at, id))) => {
            shared.data().updated_after(since, Some((*at, id)), limit)
        }
        (None, Some(Cursor::Updated(..))) | (Some(_), Some(Cursor::Id(_))) => {
            return Err(Problem::InvalidCursor);
        }
    };
    let next_cursor = match window.items.last() {
        Some(last) if window.more => match since {
            Some(_) => Cursor::Updated(last.updated_at, last.id.clone()),
            None => Cursor::Id(last.id.clone()),
        }
        .encode(),
        _ => String::new(),
    };
    let body = json!({
        "ok": true,
        "items": window.items,
        "response_metadata": { "next_cursor": next_cursor },
    });
    Ok(list_response(headers, &body, None))
}

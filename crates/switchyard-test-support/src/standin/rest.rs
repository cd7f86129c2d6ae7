//! The REST list styles that page by position or by a link: `link_header` (GitHub),
//! `next_url` (a link in the body), `offset` and `page` (page numbers).

use std::sync::Arc;

use axum::{
    extract::State,
    http::{HeaderMap, Uri},
    response::Response,
};
use serde_json::{Value, json};

use super::{
    dataset::Slice,
    listing::list_response,
    params::{PageLimits, Params},
    problem::{Dialect, Problem, respond},
    state::Shared,
    tokens::Cursor,
};

/// GitHub's `per_page`: 30 unless asked, at most 100.
pub(crate) const LINK_LIMITS: PageLimits = PageLimits {
    default: 30,
    max: 100,
};
pub(crate) const NEXT_LIMITS: PageLimits = PageLimits {
    default: 50,
    max: 100,
};
pub(crate) const OFFSET_LIMITS: PageLimits = PageLimits {
    default: 50,
    max: 100,
};
pub(crate) const PAGE_LIMITS: PageLimits = PageLimits {
    default: 25,
    max: 100,
};

/// `GET /link/items?per_page=&page=`: a JSON array, and GitHub's `Link` header with absolute
/// URLs (`next` and `last` before the last page, `prev` and `first` after the first).
pub(crate) async fn link_items(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    respond(Dialect::Rest, link_page(&shared, &uri, &headers))
}

fn link_page(shared: &Shared, uri: &Uri, headers: &HeaderMap) -> Result<Response, Problem> {
    let params = Params::of(uri)?;
    let per_page = params.page_size("per_page", LINK_LIMITS)?;
    let page = params.number_at_least("page", 1, 1)?;
    let slice = shared
        .data()
        .offset_by_id((page - 1).saturating_mul(per_page), per_page);
    let last = slice.total.div_ceil(per_page);
    let url = |page: usize| shared.url(&format!("/link/items?per_page={per_page}&page={page}"));
    let mut links = Vec::new();
    if page < last {
        links.push(format!("<{}>; rel=\"next\"", url(page + 1)));
        links.push(format!("<{}>; rel=\"last\"", url(last)));
    }
    if page > 1 {
        links.push(format!("<{}>; rel=\"prev\"", url(page - 1)));
        links.push(format!("<{}>; rel=\"first\"", url(1)));
    }
    let link = (!links.is_empty()).then(|| links.join(", "));
    Ok(list_response(headers, &json!(slice.items), link))
}

/// `GET /next/items?page_size=&cursor=`: `{"results":[…],"next":"<absolute url>"|null}`.
pub(crate) async fn next_items(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    respond(Dialect::Rest, next_page(&shared, &uri, &headers))
}

fn next_page(shared: &Shared, uri: &Uri, headers: &HeaderMap) -> Result<Response, Problem> {
    let params = Params::of(uri)?;
    let page_size = params.page_size("page_size", NEXT_LIMITS)?;
    let after = match params.get("cursor").map(Cursor::decode) {
        None => None,
        Some(Ok(Cursor::Id(id))) => Some(id),
        Some(_) => return Err(Problem::InvalidCursor),
    };
    let window = shared.data().after_id(after.as_deref(), page_size);
    let next = match window.items.last() {
        Some(last) if window.more => {
            let cursor = Cursor::Id(last.id.clone()).encode();
            Value::String(shared.url(&format!(
                "/next/items?page_size={page_size}&cursor={cursor}"
            )))
        }
        _ => Value::Null,
    };
    let body = json!({ "results": window.items, "next": next });
    Ok(list_response(headers, &body, None))
}

/// `GET /offset/items?offset=&limit=[&updated_since=]`: `{"items":[…],"total":N}`.
pub(crate) async fn offset_items(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    respond(Dialect::Rest, offset_page(&shared, &uri, &headers))
}

fn offset_page(shared: &Shared, uri: &Uri, headers: &HeaderMap) -> Result<Response, Problem> {
    let params = Params::of(uri)?;
    let limit = params.page_size("limit", OFFSET_LIMITS)?;
    let offset = params.number_at_least("offset", 0, 0)?;
    let Slice { items, total } = match params.updated_since()? {
        Some(since) => shared.data().offset_updated(since, offset, limit),
        None => shared.data().offset_by_id(offset, limit),
    };
    Ok(list_response(
        headers,
        &json!({ "items": items, "total": total }),
        None,
    ))
}

/// `GET /page/items?page=&page_size=`: `{"items":[…],"page":k,"total_pages":m}`.
pub(crate) async fn page_items(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    respond(Dialect::Rest, numbered_page(&shared, &uri, &headers))
}

fn numbered_page(shared: &Shared, uri: &Uri, headers: &HeaderMap) -> Result<Response, Problem> {
    let params = Params::of(uri)?;
    let page_size = params.page_size("page_size", PAGE_LIMITS)?;
    let page = params.number_at_least("page", 1, 1)?;
    let Slice { items, total } = shared
        .data()
        .offset_by_id((page - 1).saturating_mul(page_size), page_size);
    let body = json!({ "items": items, "page": page, "total_pages": total.div_ceil(page_size) });
    Ok(list_response(headers, &body, None))
}

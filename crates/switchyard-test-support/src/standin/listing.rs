//! A list page as every style sends it: JSON with a strong `ETag`, and `304 Not Modified`
//! for a request whose `If-None-Match` already names that page.

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The page's body and its `Link` header when the style sends one.
pub(crate) fn list_response(request: &HeaderMap, body: &Value, link: Option<String>) -> Response {
    let body = body.to_string();
    let etag = entity_tag(&body, link.as_deref());
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if let Some(link) = link.and_then(|link| HeaderValue::from_str(&link).ok()) {
        headers.insert(header::LINK, link);
    }
    if if_none_match_names(request, &etag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    (headers, body).into_response()
}

/// A strong tag of what the page says: its body and its links, so a page whose neighbours
/// changed (a new last page) is not reported unchanged.
fn entity_tag(body: &str, link: Option<&str>) -> String {
    let mut digest = Sha256::new();
    digest.update(body.as_bytes());
    digest.update(b"\n");
    digest.update(link.unwrap_or_default().as_bytes());
    format!("\"{}\"", hex::encode(digest.finalize()))
}

/// `If-None-Match` compares weakly (RFC 9110 §13.1.2): `W/"x"` names `"x"`, and `*` names
/// any current page.
fn if_none_match_names(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matching_tag_among_several_is_not_modified() {
        let body = serde_json::json!([1]);
        let first = list_response(&HeaderMap::new(), &body, None);
        let etag = first.headers()[header::ETAG].to_str().unwrap().to_owned();
        let mut request = HeaderMap::new();
        request.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"other\", W/{etag}")).unwrap(),
        );
        let second = list_response(&request, &body, None);
        assert_eq!(second.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(second.headers()[header::ETAG], etag.as_str());
        let changed = list_response(&request, &serde_json::json!([2]), None);
        assert_eq!(changed.status(), StatusCode::OK);
    }
}

//! Where the next page of a stream is, from the answer to this one.

use serde_json::Value;
use switchyard_http::ProviderResponse;
use url::Url;

use super::checkpoint::PageState;
use super::compile::CompiledStream;
use super::{link, request, select};
use crate::connector::ConnectorError;
use crate::manifest::{Pagination, StreamSpec};

/// Where the next page is, or `None` when this partition is complete.
pub(super) fn next_state(
    spec: &StreamSpec,
    compiled: &CompiledStream,
    current: &PageState,
    response: &ProviderResponse,
    body: &Value,
    count: usize,
    base: &Url,
) -> Result<Option<PageState>, ConnectorError> {
    let follow = |link: &str| -> Result<Option<PageState>, ConnectorError> {
        Ok(Some(PageState::Url {
            url: request::same_origin(base, link)?.to_string(),
        }))
    };
    // `stop_path`: `true` ends the partition, `false` says there is more after a non-empty
    // page, whatever its size.
    let stop = compiled
        .stop
        .as_ref()
        .and_then(|p| select::first(body, p))
        .and_then(Value::as_bool);
    if stop == Some(true) {
        return Ok(None);
    }
    let told_more = stop == Some(false) && count > 0;
    // A delta read's pages link onwards with the stream's own next links.
    match &spec.pagination {
        Pagination::None => Ok(None),
        Pagination::LinkHeader { stop_on_empty, .. } if *stop_on_empty && count == 0 => Ok(None),
        Pagination::LinkHeader { .. } => {
            // Okta sends each relation in a `Link` header of its own; GitHub all in one.
            match response
                .headers
                .get_all(reqwest::header::LINK)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(link::next)
            {
                Some(link) => follow(&link),
                None => Ok(None),
            }
        }
        Pagination::NextUrl { .. } => match compiled
            .next_url
            .as_ref()
            .and_then(|p| select::first(body, p))
            .and_then(Value::as_str)
        {
            Some(link) if !link.is_empty() => follow(link),
            _ => Ok(None),
        },
        Pagination::Cursor { .. } => match compiled
            .cursor
            .as_ref()
            .and_then(|p| select::first(body, p))
            .and_then(select::text)
        {
            Some(cursor) if !cursor.is_empty() && count > 0 => {
                Ok(Some(PageState::Cursor { cursor }))
            }
            _ => Ok(None),
        },
        Pagination::Offset { page_size, .. } => {
            let offset = match current {
                PageState::Offset { offset } => *offset,
                _ => 0,
            };
            let next = offset + count as u64;
            let total = compiled
                .total
                .as_ref()
                .and_then(|p| select::first(body, p))
                .and_then(Value::as_u64);
            let more = told_more
                || (count > 0
                    && count as u64 >= u64::from(*page_size)
                    && total.is_none_or(|t| next < t));
            Ok(more.then_some(PageState::Offset { offset: next }))
        }
        Pagination::Page {
            start_page,
            page_size,
            ..
        } => {
            let page = match current {
                PageState::Page { page } => *page,
                _ => *start_page,
            };
            let total = compiled
                .total
                .as_ref()
                .and_then(|p| select::first(body, p))
                .and_then(Value::as_u64);
            let more = told_more
                || (count > 0
                    && count as u64 >= u64::from(*page_size)
                    && total.is_none_or(|t| page < t));
            Ok(more.then_some(PageState::Page { page: page + 1 }))
        }
        Pagination::GraphqlRelay { .. } => {
            let info = compiled
                .page_info
                .as_ref()
                .and_then(|p| select::first(body, p));
            let has_next = info
                .and_then(|i| i.get("hasNextPage"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let cursor = info
                .and_then(|i| i.get("endCursor"))
                .and_then(Value::as_str);
            Ok(match (has_next, cursor) {
                (true, Some(cursor)) => Some(PageState::Cursor {
                    cursor: cursor.to_owned(),
                }),
                _ => None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use reqwest::StatusCode;
    use serde_json::json;

    use super::*;
    use crate::engine::compile::compile;

    fn stream(pagination: &str) -> StreamSpec {
        serde_norway::from_str(&format!(
            "{{name: s, request: {{path: /s}}, records: '$.items[*]', primary_key: ['$.id'], pagination: {pagination}}}"
        ))
        .unwrap()
    }

    fn next(
        spec: &StreamSpec,
        headers: &[(&str, &str)],
        body: &Value,
        count: usize,
    ) -> Option<PageState> {
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            map.append(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let response = ProviderResponse {
            status: StatusCode::OK,
            headers: map,
            body: body.to_string().into(),
            attempts: 1,
        };
        let base = Url::parse("https://x.test/").unwrap();
        next_state(
            spec,
            &compile(spec, &[]).unwrap(),
            &PageState::First,
            &response,
            body,
            count,
            &base,
        )
        .unwrap()
    }

    #[test]
    fn a_true_stop_path_ends_a_cursor_that_still_has_a_token() {
        let spec =
            stream("{type: cursor, cursor_path: '$.next', param: next, stop_path: '$.isLast'}");
        assert_eq!(
            next(&spec, &[], &json!({"next": "t", "isLast": true}), 5),
            None
        );
        assert_eq!(
            next(&spec, &[], &json!({"next": "t", "isLast": false}), 5),
            Some(PageState::Cursor { cursor: "t".into() })
        );
        assert_eq!(
            next(&spec, &[], &json!({"next": "t"}), 5),
            Some(PageState::Cursor { cursor: "t".into() })
        );
    }

    #[test]
    fn a_false_stop_path_goes_on_after_a_short_page_but_not_an_empty_one() {
        let spec = stream("{type: page, page_size: 50, stop_path: '$.isLast'}");
        assert_eq!(
            next(&spec, &[], &json!({"isLast": false}), 20),
            Some(PageState::Page { page: 2 })
        );
        assert_eq!(next(&spec, &[], &json!({"isLast": false}), 0), None);
        assert_eq!(
            next(&spec, &[], &json!({}), 20),
            None,
            "a short page without a word"
        );
    }

    #[test]
    fn stop_on_empty_ignores_the_next_link_of_an_empty_page() {
        let link = [("link", "<https://x.test/s?after=9>; rel=\"next\"")];
        let stopping = stream("{type: link_header, stop_on_empty: true}");
        assert_eq!(next(&stopping, &link, &json!([]), 0), None);
        assert!(next(&stopping, &link, &json!([1]), 1).is_some());
        let following = stream("{type: link_header}");
        assert!(next(&following, &link, &json!([]), 0).is_some());
    }

    #[test]
    fn the_next_link_may_come_in_a_link_header_of_its_own() {
        let spec = stream("{type: link_header}");
        let links = [
            ("link", "<https://x.test/s?after=1>; rel=\"self\""),
            ("link", "<https://x.test/s?after=9>; rel=\"next\""),
        ];
        assert_eq!(
            next(&spec, &links, &json!([1]), 1),
            Some(PageState::Url {
                url: "https://x.test/s?after=9".into()
            })
        );
    }
}

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
    // A delta read's pages link onwards with the stream's own next links.
    match &spec.pagination {
        Pagination::None => Ok(None),
        Pagination::LinkHeader { .. } => {
            match response
                .headers
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(link::next)
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
            let more = count > 0
                && count as u64 >= u64::from(*page_size)
                && total.is_none_or(|t| next < t);
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
            let more = count > 0
                && count as u64 >= u64::from(*page_size)
                && total.is_none_or(|t| page < t);
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

//! Turning a manifest request and a page position into an HTTP request.

use reqwest::{
    Method, Request,
    header::{HeaderName, HeaderValue},
};
use serde_json::Value;
use url::Url;

use super::checkpoint::PageState;
use crate::connector::ConnectorError;
use crate::manifest::{CursorLocation, Pagination, RequestSpec};
use crate::template;

/// A request before credentials: the call stack adds those per attempt.
pub struct Built {
    pub request: Request,
    /// The route template for spans and metrics (never the filled-in path).
    pub route: String,
}

/// Everything a request is built from.
pub struct Parts<'a> {
    pub base: &'a Url,
    pub spec: &'a RequestSpec,
    pub headers: &'a std::collections::BTreeMap<String, String>,
    pub context: &'a Value,
    pub pagination: &'a Pagination,
    pub state: &'a PageState,
    /// Extra query parameters (an `updated_since` value).
    pub extra_query: Vec<(String, String)>,
}

fn invalid(what: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::InvalidResponse(what.to_string())
}

/// The connection's base URL, rendered from its config or taken from its override.
pub fn base_url(
    template_text: &str,
    override_url: Option<&str>,
    context: &Value,
) -> Result<Url, ConnectorError> {
    let text = match override_url {
        Some(url) => url.to_owned(),
        None => template::render(template_text, context)?,
    };
    Url::parse(&text)
        .map_err(|e| ConnectorError::InvalidConfig(vec![format!("base URL `{text}`: {e}")]))
}

/// A URL the provider handed back may be followed only on the connection's own origin.
pub fn same_origin(base: &Url, link: &str) -> Result<Url, ConnectorError> {
    let url = base
        .join(link)
        .map_err(|_| ConnectorError::ForeignUrl(link.to_owned()))?;
    if url.origin() != base.origin() {
        return Err(ConnectorError::ForeignUrl(link.to_owned()));
    }
    Ok(url)
}

pub fn build(parts: Parts<'_>) -> Result<Built, ConnectorError> {
    let method = Method::from_bytes(parts.spec.method.as_bytes()).map_err(invalid)?;
    let mut url = match parts.state {
        PageState::Url { url } => same_origin(parts.base, url)?,
        _ => {
            let path = template::render(&parts.spec.path, parts.context)?;
            join_path(parts.base, &path)?
        }
    };
    let following_link = matches!(parts.state, PageState::Url { .. });
    if !following_link {
        let mut query: Vec<(String, String)> = Vec::new();
        for (name, value) in &parts.spec.query {
            let value = template::render(value, parts.context)?;
            // An empty value leaves the parameter out: `filter` on a first read, say.
            if !value.is_empty() {
                query.push((name.clone(), value));
            }
        }
        query.extend(parts.extra_query);
        query.extend(page_query(parts.pagination, parts.state));
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in &query {
                pairs.append_pair(name, value);
            }
        }
    }
    let mut request = Request::new(method, url);
    for (name, value) in parts.headers.iter().chain(&parts.spec.headers) {
        let value = template::render(value, parts.context)?;
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(invalid)?;
        let value = HeaderValue::from_str(&value).map_err(invalid)?;
        request.headers_mut().insert(name, value);
    }
    let body_cursor = match parts.pagination {
        Pagination::Cursor {
            location: CursorLocation::Body,
            param,
            page_size_param,
            page_size,
            ..
        } => {
            let mut keys = Vec::new();
            if let (Some(name), Some(size)) = (page_size_param, page_size) {
                keys.push((name.clone(), Value::from(*size)));
            }
            if let PageState::Cursor { cursor } = parts.state {
                keys.push((param.clone(), Value::String(cursor.clone())));
            }
            Some(keys)
        }
        _ => None,
    };
    // A body cursor needs a body to go in, even when the manifest declares none.
    let body = match (&parts.spec.body, &body_cursor) {
        (Some(body), _) => Some(template::render_value(body, parts.context)?),
        (None, Some(_)) => Some(Value::Object(serde_json::Map::new())),
        (None, None) => None,
    };
    if let Some(mut body) = body {
        if parts.spec.omit_null_members
            && let Some(object) = body.as_object_mut()
        {
            object.retain(|_, value| !value.is_null());
        }
        if let Some(keys) = body_cursor {
            let object = body
                .as_object_mut()
                .ok_or_else(|| invalid("a body cursor needs a JSON object as the request body"))?;
            for (name, value) in keys {
                object.insert(name, value);
            }
        }
        if let (
            Pagination::GraphqlRelay {
                cursor_variable, ..
            },
            PageState::Cursor { cursor },
        ) = (parts.pagination, parts.state)
            && let Some(object) = body.as_object_mut()
        {
            let variables = object
                .entry("variables")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Some(variables) = variables.as_object_mut() {
                variables.insert(cursor_variable.clone(), Value::String(cursor.clone()));
            }
        }
        let bytes = serde_json::to_vec(&body).map_err(invalid)?;
        // A manifest's own `Content-Type` wins (Slack asks for `; charset=utf-8`).
        request
            .headers_mut()
            .entry(reqwest::header::CONTENT_TYPE)
            .or_insert(HeaderValue::from_static("application/json"));
        *request.body_mut() = Some(bytes.into());
    }
    // A manifest's own `Accept` wins (GitHub's `application/vnd.github+json`).
    request
        .headers_mut()
        .entry(reqwest::header::ACCEPT)
        .or_insert(HeaderValue::from_static("application/json"));
    Ok(Built {
        request,
        route: parts.spec.path.clone(),
    })
}

/// The base URL's path, then the request's (`https://h/api` + `/users` = `https://h/api/users`).
fn join_path(base: &Url, path: &str) -> Result<Url, ConnectorError> {
    let mut url = base.clone();
    let joined = format!("{}{}", base.path().trim_end_matches('/'), path);
    url.set_path(&joined);
    url.set_query(None);
    if url.origin() != base.origin() {
        return Err(ConnectorError::ForeignUrl(path.to_owned()));
    }
    Ok(url)
}

/// The pagination parameters of a page position.
fn page_query(pagination: &Pagination, state: &PageState) -> Vec<(String, String)> {
    let mut query = Vec::new();
    let size = |query: &mut Vec<(String, String)>, param: &Option<String>, size: Option<u32>| {
        if let (Some(param), Some(size)) = (param, size) {
            query.push((param.clone(), size.to_string()));
        }
    };
    match pagination {
        Pagination::LinkHeader {
            page_size_param,
            page_size,
            ..
        } => {
            size(&mut query, page_size_param, *page_size);
        }
        Pagination::Cursor {
            page_size_param,
            page_size,
            param,
            location: CursorLocation::Query,
            ..
        } => {
            size(&mut query, page_size_param, *page_size);
            if let PageState::Cursor { cursor } = state {
                query.push((param.clone(), cursor.clone()));
            }
        }
        Pagination::Offset {
            offset_param,
            limit_param,
            page_size,
            ..
        } => {
            let offset = match state {
                PageState::Offset { offset } => *offset,
                _ => 0,
            };
            query.push((offset_param.clone(), offset.to_string()));
            query.push((limit_param.clone(), page_size.to_string()));
        }
        Pagination::Page {
            page_param,
            start_page,
            page_size_param,
            page_size,
            ..
        } => {
            let page = match state {
                PageState::Page { page } => *page,
                _ => *start_page,
            };
            query.push((page_param.clone(), page.to_string()));
            size(&mut query, page_size_param, Some(*page_size));
        }
        Pagination::None
        | Pagination::Cursor { .. }
        | Pagination::NextUrl { .. }
        | Pagination::GraphqlRelay { .. } => {}
    }
    query
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    /// The request built for `spec` with the manifest-wide `headers`.
    fn built(spec: Value, headers: &[(&str, &str)]) -> Request {
        let spec: RequestSpec = serde_json::from_value(spec).unwrap();
        let headers: BTreeMap<String, String> = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        let base = Url::parse("https://api.example.com/v1").unwrap();
        build(Parts {
            base: &base,
            spec: &spec,
            headers: &headers,
            context: &json!({}),
            pagination: &Pagination::None,
            state: &PageState::First,
            extra_query: Vec::new(),
        })
        .unwrap()
        .request
    }

    fn header<'r>(request: &'r Request, name: &str) -> Vec<&'r str> {
        request
            .headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    #[test]
    fn json_is_the_default_accept_and_content_type() {
        let request = built(
            json!({"method": "POST", "path": "/x", "body": {"a": 1}}),
            &[],
        );
        assert_eq!(header(&request, "accept"), ["application/json"]);
        assert_eq!(header(&request, "content-type"), ["application/json"]);
        let request = built(json!({"path": "/x"}), &[]);
        assert_eq!(header(&request, "accept"), ["application/json"]);
        assert!(header(&request, "content-type").is_empty());
    }

    #[test]
    fn a_manifest_accept_header_wins() {
        let request = built(
            json!({"path": "/x"}),
            &[("Accept", "application/vnd.github+json")],
        );
        assert_eq!(header(&request, "accept"), ["application/vnd.github+json"]);
        let request = built(
            json!({"path": "/x", "headers": {"accept": "text/csv"}}),
            &[("Accept", "application/vnd.github+json")],
        );
        assert_eq!(header(&request, "accept"), ["text/csv"]);
    }

    #[test]
    fn a_manifest_content_type_wins_for_a_json_body() {
        let spec = json!({
            "method": "POST",
            "path": "/chat.postMessage",
            "headers": {"Content-Type": "application/json; charset=utf-8"},
            "body": {"channel": "C1"},
        });
        let request = built(spec, &[]);
        assert_eq!(
            header(&request, "content-type"),
            ["application/json; charset=utf-8"]
        );
        let top_level = built(
            json!({"method": "POST", "path": "/x", "body": {}}),
            &[("content-type", "application/json; charset=utf-8")],
        );
        assert_eq!(
            header(&top_level, "content-type"),
            ["application/json; charset=utf-8"]
        );
    }

    fn body_of(request: &Request) -> Value {
        serde_json::from_slice(request.body().unwrap().as_bytes().unwrap()).unwrap()
    }

    #[test]
    fn null_members_are_left_out_only_when_asked() {
        let body = json!({"channel": "C1", "thread_ts": "{{ none }}", "blocks": null, "nested": {"x": null}});
        let kept = built(json!({"method": "POST", "path": "/x", "body": body}), &[]);
        assert_eq!(
            body_of(&kept),
            json!({"channel": "C1", "thread_ts": null, "blocks": null, "nested": {"x": null}})
        );
        let omitted = built(
            json!({"method": "POST", "path": "/x", "body": body, "omit_null_members": true}),
            &[],
        );
        // Only the top level: a null inside a member is the caller's value.
        assert_eq!(
            body_of(&omitted),
            json!({"channel": "C1", "nested": {"x": null}})
        );
    }
}

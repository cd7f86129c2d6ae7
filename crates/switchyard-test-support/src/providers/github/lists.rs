//! The list routes: `per_page`/`page` pagination with GitHub's `Link` header, and weak ETags
//! answered `304` on `If-None-Match`.

use std::sync::Arc;

use axum::{
    Extension,
    body::Body,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Shared, auth::Caller, errors};

const DEFAULT_PER_PAGE: usize = 30;
const MAX_PER_PAGE: usize = 100;

/// The query parameters, in order, as sent.
fn params(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|q| {
            url_pairs(q)
                .into_iter()
                .filter(|(k, _)| !k.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// `a=1&b=2` into pairs, percent-decoding `%XX` and `+`.
fn url_pairs(query: &str) -> Vec<(String, String)> {
    let decode = |text: &str| -> String {
        let bytes = text.replace('+', " ").into_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%'
                && i + 2 < bytes.len()
                && let Ok(byte) =
                    u8::from_str_radix(&String::from_utf8_lossy(&bytes[i + 1..i + 3]), 16)
            {
                out.push(byte);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// GitHub caps `per_page` at 100 and falls back to 30 on anything it cannot read.
fn per_page(params: &[(String, String)]) -> usize {
    match param(params, "per_page").and_then(|v| v.parse::<usize>().ok()) {
        Some(0) | None => DEFAULT_PER_PAGE,
        Some(n) => n.min(MAX_PER_PAGE),
    }
}

fn page_number(params: &[(String, String)]) -> usize {
    match param(params, "page").and_then(|v| v.parse::<usize>().ok()) {
        Some(0) | None => 1,
        Some(n) => n,
    }
}

/// One page of `items` at `link_path`, wrapped by `wrap` (a bare array for most lists).
pub(crate) fn page(
    shared: &Shared,
    link_path: &str,
    query: Option<&str>,
    request_headers: &HeaderMap,
    items: Vec<Value>,
    wrap: impl FnOnce(Vec<Value>, usize) -> Value,
) -> Response {
    let params = params(query);
    let per_page = per_page(&params);
    let page = page_number(&params);
    let total = items.len();
    let pages = total.div_ceil(per_page).max(1);
    let start = (page - 1).saturating_mul(per_page).min(total);
    let end = (start + per_page).min(total);
    let slice = items[start..end].to_vec();
    let body = wrap(slice, total).to_string();

    let kept: Vec<String> = params
        .iter()
        .filter(|(k, _)| k != "per_page" && k != "page")
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let link_to = |target: usize| {
        let mut query = kept.clone();
        query.push(format!("per_page={per_page}"));
        query.push(format!("page={target}"));
        format!("<{}{link_path}?{}>", shared.base_url, query.join("&"))
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("{}; rel=\"prev\"", link_to((page - 1).min(pages))));
    }
    if page < pages {
        links.push(format!("{}; rel=\"next\"", link_to(page + 1)));
        links.push(format!("{}; rel=\"last\"", link_to(pages)));
    }
    if page > 1 {
        links.push(format!("{}; rel=\"first\"", link_to(1)));
    }
    let link = links.join(", ");
    let mut response = json_response(StatusCode::OK, body.clone(), request_headers, &link);
    if !link.is_empty()
        && let Ok(value) = HeaderValue::from_str(&link)
    {
        response.headers_mut().insert(header::LINK, value);
    }
    response
}

/// `%`-encodes what a query value cannot carry as is.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A JSON answer with its weak ETag, or `304` when `If-None-Match` names that ETag.
pub(crate) fn json_response(
    status: StatusCode,
    body: String,
    request_headers: &HeaderMap,
    link: &str,
) -> Response {
    let mut digest = Sha256::new();
    digest.update(body.as_bytes());
    digest.update(link.as_bytes());
    let etag = format!("W/\"{}\"", hex::encode(digest.finalize()));
    let unchanged = status == StatusCode::OK
        && request_headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|tag| tag.trim().trim_start_matches("W/"))
            .any(|tag| tag == "*" || tag == etag.trim_start_matches("W/"));
    let mut response = if unchanged {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        response
    };
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

fn array(items: Vec<Value>, _total: usize) -> Value {
    Value::Array(items)
}

/// The organization's id when `org` names it (case-insensitively, as GitHub matches logins).
fn org_id(shared: &Shared, org: &str) -> Option<u64> {
    let data = shared.org();
    data.login.eq_ignore_ascii_case(org).then_some(data.id)
}

fn by_id(shared: &Shared, id: &str) -> Option<u64> {
    let data = shared.org();
    (id.parse::<u64>().ok() == Some(data.id)).then_some(data.id)
}

fn members(shared: &Shared, id: u64, query: Option<&str>, headers: &HeaderMap) -> Response {
    let params = params(query);
    let items = {
        let data = shared.org();
        match (param(&params, "filter"), param(&params, "role")) {
            (Some("2fa_disabled"), _) => data.list("members_2fa_disabled"),
            (_, Some(role @ ("admin" | "member"))) => Some(data.admins_json(role)),
            _ => data.list("members"),
        }
        .unwrap_or_default()
    };
    page(
        shared,
        &format!("/organizations/{id}/members"),
        query,
        headers,
        items,
        array,
    )
}

fn simple_list(
    shared: &Shared,
    id: u64,
    what: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Response {
    let items = shared.org().list(what).unwrap_or_default();
    let segment = match what {
        "repositories" => "repos",
        other => other,
    };
    page(
        shared,
        &format!("/organizations/{id}/{segment}"),
        query,
        headers,
        items,
        array,
    )
}

/// The two routes of an organization's list, by login (`/orgs/{org}/…`) and by id
/// (`/organizations/{id}/…`, where GitHub's `next` links point), answered by `$list`
/// (`fn(&Shared, org id, query, headers) -> Response`), or by [`simple_list`] of `$what`.
macro_rules! org_list {
    ($by_login:ident, $by_id:ident, $what:literal) => {
        org_list!($by_login, $by_id, |shared, id, query, headers| {
            simple_list(shared, id, $what, query, headers)
        });
    };
    ($by_login:ident, $by_id:ident, $list:expr) => {
        pub(crate) async fn $by_login(
            State(shared): State<Arc<Shared>>,
            Path(org): Path<String>,
            RawQuery(query): RawQuery,
            headers: HeaderMap,
        ) -> Response {
            match org_id(&shared, &org) {
                Some(id) => ($list)(&shared, id, query.as_deref(), &headers),
                None => errors::not_found(),
            }
        }

        pub(crate) async fn $by_id(
            State(shared): State<Arc<Shared>>,
            Path(id): Path<String>,
            RawQuery(query): RawQuery,
            headers: HeaderMap,
        ) -> Response {
            match by_id(&shared, &id) {
                Some(id) => ($list)(&shared, id, query.as_deref(), &headers),
                None => errors::not_found(),
            }
        }
    };
}

org_list!(org_members, org_members_by_id, members);
org_list!(
    outside_collaborators,
    outside_collaborators_by_id,
    "outside_collaborators"
);
org_list!(teams, teams_by_id, "teams");
org_list!(repositories, repositories_by_id, "repositories");

fn members_of_team(
    shared: &Shared,
    org_id: u64,
    team_id: u64,
    slug: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Response {
    let Some(items) = shared.org().team_members_json(slug) else {
        return errors::not_found();
    };
    page(
        shared,
        &format!("/organizations/{org_id}/team/{team_id}/members"),
        query,
        headers,
        items,
        array,
    )
}

pub(crate) async fn team_members(
    State(shared): State<Arc<Shared>>,
    Path((org, slug)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(id) = org_id(&shared, &org) else {
        return errors::not_found();
    };
    let team_id = shared.org().team_id(&slug);
    match team_id {
        Some(team_id) => members_of_team(&shared, id, team_id, &slug, query.as_deref(), &headers),
        None => errors::not_found(),
    }
}

pub(crate) async fn team_members_by_id(
    State(shared): State<Arc<Shared>>,
    Path((id, team_id)): Path<(String, u64)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(id) = by_id(&shared, &id) else {
        return errors::not_found();
    };
    let slug = shared.org().team_slug(team_id);
    match slug {
        Some(slug) => members_of_team(&shared, id, team_id, &slug, query.as_deref(), &headers),
        None => errors::not_found(),
    }
}

/// `GET /installation/repositories`: an installation token's repositories.
pub(crate) async fn installation_repositories(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if caller != Caller::Installation {
        return errors::error(
            StatusCode::FORBIDDEN,
            "You must authenticate with an installation access token in order to list repositories for an installation.",
            "https://docs.github.com/rest/apps/installations#list-repositories-accessible-to-the-app-installation",
        );
    }
    let items = shared.org().list("repositories").unwrap_or_default();
    page(
        &shared,
        "/installation/repositories",
        query.as_deref(),
        &headers,
        items,
        |repositories, total| {
            json!({
                "total_count": total,
                "repository_selection": "all",
                "repositories": repositories,
            })
        },
    )
}

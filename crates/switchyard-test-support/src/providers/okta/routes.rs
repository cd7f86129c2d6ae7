//! The Management API routes the Okta connector uses, with Okta's `Link` pagination: each
//! page is in id order, `limit` is clamped to the endpoint's maximum, and a
//! `<…?after={last id}&limit=N>; rel="next"` link follows every page but the last (the System
//! Log in polling mode always sends one).

use std::sync::Arc;

use axum::{
    Extension, Json,
    extract::{Path, RawQuery, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use reqwest::Url;
use serde_json::Value;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::{
    Shared,
    data::{ADMIN_ID, OktaUser, Org, UserStatus},
    wire::{Caller, OktaError},
};

/// The query as ordered pairs, so a next link keeps every parameter but `after`.
fn pairs(query: Option<&str>) -> Vec<(String, String)> {
    let Ok(url) = Url::parse(&format!("http://q/?{}", query.unwrap_or_default())) else {
        return Vec::new();
    };
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn limit(pairs: &[(String, String)], default: usize, max: usize) -> Result<usize, OktaError> {
    match param(pairs, "limit") {
        None => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(0) | Err(_) => Err(OktaError::Validation {
                what: "limit".into(),
                cause: "limit: The limit must be a positive integer.".into(),
            }),
            Ok(n) => Ok(n.min(max)),
        },
    }
}

fn link(base: &str, path: &str, pairs: &[(String, String)], after: Option<&str>) -> String {
    let mut url = Url::parse(&format!("{base}{path}")).unwrap_or_else(|_| {
        Url::parse("http://127.0.0.1/").unwrap_or_else(|_| unreachable!("a literal URL"))
    });
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in pairs.iter().filter(|(k, _)| k != "after") {
            query.append_pair(k, v);
        }
        if let Some(after) = after {
            query.append_pair("after", after);
        }
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    url.to_string()
}

/// A JSON array page with `Link: <self>; rel="self"` and, when there is one,
/// `<next>; rel="next"`.
fn page(
    shared: &Shared,
    path: &str,
    pairs: &[(String, String)],
    items: Vec<Value>,
    next: Option<String>,
) -> Response {
    let mut links = vec![format!(
        "<{}>; rel=\"self\"",
        link(&shared.base_url, path, pairs, param(pairs, "after"))
    )];
    if let Some(next) = next {
        links.push(format!("<{next}>; rel=\"next\""));
    }
    let mut response = Json(Value::Array(items)).into_response();
    for value in links {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::LINK, value);
        }
    }
    response
}

/// The page of `items` (keyed, in key order) after the query's `after`, at most `limit`,
/// with a next link when more follow.
fn keyed_page(
    shared: &Shared,
    path: &str,
    pairs: &[(String, String)],
    items: Vec<(String, Value)>,
    limit: usize,
) -> Response {
    let (items, next_after) = window(items, param(pairs, "after"), limit);
    let next = next_after.map(|after| link(&shared.base_url, path, pairs, Some(&after)));
    page(shared, path, pairs, items, next)
}

/// The items after `after` (by key), at most `limit`, and the key to continue after.
fn window<T>(
    items: Vec<(String, T)>,
    after: Option<&str>,
    limit: usize,
) -> (Vec<T>, Option<String>) {
    let mut rest = items
        .into_iter()
        .filter(|(key, _)| after.is_none_or(|after| key.as_str() > after))
        .peekable();
    let mut taken = Vec::new();
    let mut last = None;
    while taken.len() < limit {
        let Some((key, item)) = rest.next() else {
            break;
        };
        last = Some(key);
        taken.push(item);
    }
    let next = rest.peek().and(last);
    (taken, next)
}

/// One `field op "value"` clause of a users `filter` (`lastUpdated gt "…"`, `status eq "…"`),
/// joined with ` and `.
fn matches_filter(user: &OktaUser, filter: &str) -> Result<bool, OktaError> {
    for clause in filter.split(" and ") {
        let mut parts = clause.trim().splitn(3, ' ');
        let (Some(field), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(OktaError::InvalidSearch);
        };
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .ok_or(OktaError::InvalidSearch)?;
        let ok = match field {
            "lastUpdated" => {
                // Okta takes exactly `YYYY-MM-DDTHH:mm:ss.SSSZ` here.
                let exact =
                    value.len() == 24 && value.as_bytes()[19] == b'.' && value.ends_with('Z');
                if !exact {
                    return Err(OktaError::InvalidSearch);
                }
                let bound =
                    OffsetDateTime::parse(value, &Rfc3339).map_err(|_| OktaError::InvalidSearch)?;
                let at = user.last_updated;
                match op {
                    "gt" => at > bound,
                    "ge" => at >= bound,
                    "lt" => at < bound,
                    "le" => at <= bound,
                    "eq" => at == bound,
                    _ => return Err(OktaError::InvalidSearch),
                }
            }
            "status" if op == "eq" => user.status.as_str() == value,
            "id" if op == "eq" => user.id == value,
            "profile.login" | "profile.email" if op == "eq" => user.email == value,
            _ => return Err(OktaError::InvalidSearch),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `GET /api/v1/users?limit=(200, max 200)&after=&filter=`. Without a filter, deprovisioned
/// users are left out, as Okta does; a filter sees every status.
pub(crate) async fn list_users(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Result<Response, OktaError> {
    let pairs = pairs(query.as_deref());
    let limit = limit(&pairs, 200, 200)?;
    let render = shared.render();
    let org = shared.org();
    let mut items = Vec::new();
    for user in org.users.values() {
        let listed = match param(&pairs, "filter") {
            Some(filter) => matches_filter(user, filter)?,
            None => user.status != UserStatus::Deprovisioned,
        };
        if listed {
            items.push((user.id.clone(), render.user(user)));
        }
    }
    drop(org);
    Ok(keyed_page(&shared, "/api/v1/users", &pairs, items, limit))
}

/// `GET /api/v1/users/{id}`: only `me` is served, the API token's admin. A service app's
/// token belongs to no user: `404`.
pub(crate) async fn get_user(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, OktaError> {
    let render = shared.render();
    if id == "me" && caller == Caller::ApiToken {
        let at = shared.options.clock_start;
        let admin = OktaUser {
            id: ADMIN_ID.into(),
            status: UserStatus::Active,
            first_name: "Org".into(),
            last_name: "Admin".into(),
            email: "admin@example.test".into(),
            created: at,
            status_changed: at,
            last_updated: at,
        };
        return Ok(Json(render.user(&admin)).into_response());
    }
    let org = shared.org();
    match org.users.get(&id) {
        Some(user) if id != "me" => Ok(Json(render.user(user)).into_response()),
        _ => Err(OktaError::NotFound { id, kind: "User" }),
    }
}

/// `GET /api/v1/users/{id}/factors`: every enrolled factor, one page, no pagination.
pub(crate) async fn list_factors(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, OktaError> {
    let render = shared.render();
    let org = shared.org();
    if !org.users.contains_key(&id) {
        return Err(OktaError::NotFound { id, kind: "User" });
    }
    let factors: Vec<Value> = org
        .factors
        .get(&id)
        .into_iter()
        .flat_map(|factors| factors.values())
        .map(|factor| render.factor(&id, factor))
        .collect();
    Ok(Json(Value::Array(factors)).into_response())
}

/// `GET /api/v1/groups?limit=(10000, max 10000)&after=`.
pub(crate) async fn list_groups(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Result<Response, OktaError> {
    let pairs = pairs(query.as_deref());
    let limit = limit(&pairs, 10_000, 10_000)?;
    let render = shared.render();
    let items: Vec<(String, Value)> = shared
        .org()
        .groups
        .values()
        .map(|group| (group.id.clone(), render.group(group)))
        .collect();
    Ok(keyed_page(&shared, "/api/v1/groups", &pairs, items, limit))
}

/// `GET /api/v1/groups/{id}/users?limit=(1000, max 1000)&after=`: the members as users.
pub(crate) async fn list_members(
    State(shared): State<Arc<Shared>>,
    Path(group): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, OktaError> {
    let pairs = pairs(query.as_deref());
    let limit = limit(&pairs, 1_000, 1_000)?;
    let render = shared.render();
    let org = shared.org();
    let Some(members) = org.members.get(&group) else {
        return Err(OktaError::NotFound {
            id: group,
            kind: "UserGroup",
        });
    };
    let items: Vec<(String, Value)> = members
        .iter()
        .filter_map(|id| org.users.get(id))
        .map(|user| (user.id.clone(), render.user(user)))
        .collect();
    drop(org);
    let path = format!("/api/v1/groups/{group}/users");
    Ok(keyed_page(&shared, &path, &pairs, items, limit))
}

/// `GET /api/v1/apps?limit=(20, max 200)&after=`.
pub(crate) async fn list_apps(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Result<Response, OktaError> {
    let pairs = pairs(query.as_deref());
    let limit = limit(&pairs, 20, 200)?;
    let render = shared.render();
    let items: Vec<(String, Value)> = shared
        .org()
        .apps
        .values()
        .map(|app| (app.id.clone(), render.app(app)))
        .collect();
    Ok(keyed_page(&shared, "/api/v1/apps", &pairs, items, limit))
}

fn parse_time(pairs: &[(String, String)], name: &str) -> Result<Option<OffsetDateTime>, OktaError> {
    param(pairs, name)
        .map(|text| {
            OffsetDateTime::parse(text, &Rfc3339).map_err(|_| OktaError::Validation {
                what: name.into(),
                cause: format!(
                    "{name}: The date format in your query is not recognized. Please enter dates using ISO8601 string format.."
                ),
            })
        })
        .transpose()
}

/// `GET /api/v1/logs?since=&until=&after=&limit=(100, max 1000)`, oldest first. `since`
/// (inclusive) defaults to seven days before now. Without `until` this is a polling query:
/// the `next` link is always sent, also on an empty page, so a client polls it for new
/// events; `after` is the last event's `uuid`.
pub(crate) async fn list_logs(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Result<Response, OktaError> {
    let pairs = pairs(query.as_deref());
    let limit = limit(&pairs, 100, 1_000)?;
    let since = parse_time(&pairs, "since")?
        .unwrap_or_else(|| shared.clock.now() - time::Duration::days(7));
    let until = parse_time(&pairs, "until")?;
    let after = param(&pairs, "after");
    let render = shared.render();
    let org = shared.org();
    let start = match after {
        Some(after) => org
            .log
            .iter()
            .position(|event| event.uuid == after)
            .map(|i| i + 1)
            .ok_or_else(|| OktaError::Validation {
                what: "after".into(),
                cause: "after: The cursor is not valid.".into(),
            })?,
        None => 0,
    };
    let mut selected = org.log[start..].iter().filter(|event| {
        event.published >= since && until.is_none_or(|until| event.published < until)
    });
    let events: Vec<_> = selected.by_ref().take(limit).collect();
    let more = selected.next().is_some();
    let items: Vec<Value> = events.iter().map(|event| render.log_event(event)).collect();
    let last = events.last().map(|event| event.uuid.clone());
    drop(org);
    let next = if until.is_some() {
        // A bounded query ends.
        more.then_some(last)
            .flatten()
            .map(|last| link(&shared.base_url, "/api/v1/logs", &pairs, Some(&last)))
    } else {
        // Polling: always a next link, from the last event or from where this page began.
        let from = last.as_deref().or(after);
        Some(link(&shared.base_url, "/api/v1/logs", &pairs, from))
    };
    Ok(page(&shared, "/api/v1/logs", &pairs, items, next))
}

fn change_status(
    shared: &Shared,
    id: &str,
    from: UserStatus,
    to: UserStatus,
    event_type: &str,
    refusal: &str,
) -> Result<Response, OktaError> {
    let at = shared.clock.stamp();
    let mut org = shared.org();
    let Some(user) = org.users.get_mut(id) else {
        return Err(OktaError::NotFound {
            id: id.to_owned(),
            kind: "User",
        });
    };
    if user.status != from {
        return Err(OktaError::Validation {
            what: refusal.into(),
            cause: refusal.into(),
        });
    }
    user.status = to;
    user.status_changed = at;
    user.last_updated = at;
    let target = Org::user_target(user);
    org.log_event(at, event_type, event_type, vec![target]);
    Ok(StatusCode::OK.into_response())
}

/// `POST /api/v1/users/{id}/lifecycle/suspend`: `ACTIVE` → `SUSPENDED`, `200` without a body.
pub(crate) async fn suspend(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, OktaError> {
    change_status(
        &shared,
        &id,
        UserStatus::Active,
        UserStatus::Suspended,
        "user.lifecycle.suspend",
        "Cannot suspend a user that is not active",
    )
}

/// `POST /api/v1/users/{id}/lifecycle/unsuspend`: `SUSPENDED` → `ACTIVE`.
pub(crate) async fn unsuspend(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, OktaError> {
    change_status(
        &shared,
        &id,
        UserStatus::Suspended,
        UserStatus::Active,
        "user.lifecycle.unsuspend",
        "Cannot unsuspend a user that is not suspended",
    )
}

/// `DELETE /api/v1/groups/{groupId}/users/{userId}`: `204`, also when the user was not a
/// member; an unknown group or user is `404`.
pub(crate) async fn remove_member(
    State(shared): State<Arc<Shared>>,
    Path((group, user)): Path<(String, String)>,
) -> Result<Response, OktaError> {
    let at = shared.clock.stamp();
    let mut org = shared.org();
    let Some(user) = org.users.get(&user).cloned() else {
        return Err(OktaError::NotFound {
            id: user,
            kind: "User",
        });
    };
    if !org.groups.contains_key(&group) {
        return Err(OktaError::NotFound {
            id: group,
            kind: "UserGroup",
        });
    }
    let removed = org
        .members
        .get_mut(&group)
        .is_some_and(|members| members.remove(&user.id));
    if removed {
        if let Some(record) = org.groups.get_mut(&group) {
            record.last_membership_updated = at;
        }
        let targets = org
            .groups
            .get(&group)
            .map(|g| vec![Org::user_target(&user), Org::group_target(g)])
            .unwrap_or_default();
        org.log_event(
            at,
            "group.user_membership.remove",
            "Remove user from group membership",
            targets,
        );
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Anything else: Okta's `404 E0000007`.
pub(crate) async fn not_found(uri: axum::http::Uri) -> Response {
    OktaError::NotFound {
        id: uri.path().to_owned(),
        kind: "Resource",
    }
    .into_response()
}

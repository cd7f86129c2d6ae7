//! The routes: Jira's REST v3 answers over the stand-in's site.

use std::collections::HashMap;
use std::sync::Arc;

use axum::{
    Json,
    body::Bytes,
    extract::{OriginalUri, Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use serde_json::{Value, json};

use super::data::{ISSUE_TYPES, JiraIssue, TRANSITIONS, is_adf, numeric_id};
use super::{MYSELF_ACCOUNT_ID, Shared, jql};

type App = State<Arc<Shared>>;

/// `{"errorMessages":[…],"errors":{…}}`, Jira's error body.
pub(crate) fn jira_error(status: StatusCode, messages: &[&str], errors: Value) -> Response {
    (
        status,
        Json(json!({"errorMessages": messages, "errors": errors})),
    )
        .into_response()
}

fn bad_request(message: &str) -> Response {
    jira_error(StatusCode::BAD_REQUEST, &[message], json!({}))
}

fn no_issue() -> Response {
    jira_error(
        StatusCode::NOT_FOUND,
        &["Issue does not exist or you do not have permission to see it."],
        json!({}),
    )
}

/// The base the request came in on: the site, or the 3LO gateway path of its cloud id.
fn base(shared: &Shared, uri: &OriginalUri) -> String {
    let path = uri.path();
    match path.strip_prefix("/ex/jira/") {
        Some(rest) => {
            let cloud_id = rest.split('/').next().unwrap_or_default();
            format!("{}/ex/jira/{cloud_id}", shared.base_url)
        }
        None => shared.base_url.clone(),
    }
}

/// A non-negative integer query parameter, its default when absent, or Jira's message.
fn number(query: &HashMap<String, String>, name: &str, default: u64) -> Result<u64, String> {
    match query.get(name) {
        None => Ok(default),
        Some(text) => text
            .parse::<u64>()
            .map_err(|_| format!("The value '{text}' is invalid for the parameter '{name}'.")),
    }
}

/// `startAt` (default 0) and the asked `maxResults` (default 50) of an offset-paged list,
/// or the message of Jira's 400 for a value that is not a number.
fn offset(query: &HashMap<String, String>) -> Result<(u64, u64), String> {
    Ok((
        number(query, "startAt", 0)?,
        number(query, "maxResults", 50)?,
    ))
}

pub(crate) async fn myself(State(shared): App, uri: OriginalUri) -> Response {
    let base = base(&shared, &uri);
    let me = shared
        .site()
        .users
        .get(MYSELF_ACCOUNT_ID)
        .map(|user| user.to_json(&base, &shared.options.time_zone));
    match me {
        Some(me) => Json(me).into_response(),
        None => not_found().await,
    }
}

pub(crate) async fn project_search(
    State(shared): App,
    uri: OriginalUri,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (start, max) = match offset(&query) {
        Ok((start, max)) => (start, max.clamp(1, 100)),
        Err(message) => return bad_request(&message),
    };
    let base = base(&shared, &uri);
    let site = shared.site();
    let total = site.projects.len() as u64;
    let values: Vec<Value> = site
        .projects
        .values()
        .skip(usize::try_from(start).unwrap_or(usize::MAX))
        .take(usize::try_from(max).unwrap_or(usize::MAX))
        .map(|p| p.to_json(&base))
        .collect();
    let is_last = start + values.len() as u64 >= total;
    let page = |at: u64| format!("{base}/rest/api/3/project/search?maxResults={max}&startAt={at}");
    let mut body = json!({
        "self": page(start),
        "maxResults": max,
        "startAt": start,
        "total": total,
        "isLast": is_last,
        "values": values,
    });
    if !is_last {
        body["nextPage"] = json!(page(start + max));
    }
    Json(body).into_response()
}

pub(crate) async fn users_search(
    State(shared): App,
    uri: OriginalUri,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (start, max) = match offset(&query) {
        Ok((start, max)) => (start, max.min(1000)),
        Err(message) => return bad_request(&message),
    };
    let base = base(&shared, &uri);
    let site = shared.site();
    let users: Vec<Value> = site
        .users
        .values()
        .skip(usize::try_from(start).unwrap_or(usize::MAX))
        .take(usize::try_from(max).unwrap_or(usize::MAX))
        .map(|u| u.to_json(&base, &shared.options.time_zone))
        .collect();
    Json(users).into_response()
}

/// Where a search page ends: the last issue's (`updated`, id), and the query it belongs to.
fn encode_token(jql: &str, issue: &JiraIssue) -> String {
    let position = format!(
        "{}|{}|{}",
        fnv(jql),
        issue.updated.unix_timestamp(),
        numeric_id(&issue.id)
    );
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(position)
}

fn decode_token(jql: &str, token: &str) -> Option<(i64, u64)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.split('|');
    let query: u64 = parts.next()?.parse().ok()?;
    let updated = parts.next()?.parse().ok()?;
    let id = parts.next()?.parse().ok()?;
    (query == fnv(jql) && parts.next().is_none()).then_some((updated, id))
}

/// FNV-1a: a stable fingerprint of the query a token was issued for.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub(crate) async fn search_jql(State(shared): App, uri: OriginalUri, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return bad_request(
            "Invalid request payload. Refer to the REST API documentation and try again.",
        );
    };
    let jql_text = request
        .get("jql")
        .and_then(Value::as_str)
        .unwrap_or_default();
    shared.searched(jql_text);
    let query = match jql::parse(jql_text, shared.options.utc_offset) {
        Ok(query) => query,
        Err(error) => return bad_request(&error.message()),
    };
    let fields: Vec<String> = match request.get("fields") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(_) => {
            return bad_request(
                "Invalid request payload. Refer to the REST API documentation and try again.",
            );
        }
    };
    let ceiling = if fields.iter().all(|f| f == "id" || f == "key") {
        5000
    } else {
        100
    };
    let max = match request.get("maxResults") {
        None | Some(Value::Null) => 50,
        Some(value) => match value.as_u64() {
            Some(n) if n >= 1 => n.min(ceiling),
            _ => return bad_request("The maxResults parameter must be a positive integer."),
        },
    };
    let after = match request.get("nextPageToken") {
        None | Some(Value::Null) => None,
        Some(Value::String(token)) => match decode_token(jql_text, token) {
            Some(position) => Some(position),
            None => return bad_request("The provided next page token is invalid or expired."),
        },
        Some(_) => {
            return bad_request(
                "Invalid request payload. Refer to the REST API documentation and try again.",
            );
        }
    };
    let base = base(&shared, &uri);
    let site = shared.site();
    let matching: Vec<&JiraIssue> = site
        .issues_by_update()
        .into_iter()
        .filter(|issue| {
            if query.inclusive {
                issue.updated >= query.since
            } else {
                issue.updated > query.since
            }
        })
        .filter(|issue| {
            after.is_none_or(|position| {
                (issue.updated.unix_timestamp(), numeric_id(&issue.id)) > position
            })
        })
        .collect();
    let page: Vec<&JiraIssue> = matching
        .iter()
        .take(usize::try_from(max).unwrap_or(usize::MAX))
        .copied()
        .collect();
    let is_last = page.len() == matching.len();
    let issues: Vec<Value> = page
        .iter()
        .map(|issue| issue.to_json(&site, &base, shared.options.utc_offset, &fields))
        .collect();
    let mut body = json!({"issues": issues, "isLast": is_last});
    if !is_last && let Some(last) = page.last() {
        body["nextPageToken"] = json!(encode_token(jql_text, last));
    }
    Json(body).into_response()
}

pub(crate) async fn create_issue(State(shared): App, uri: OriginalUri, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return bad_request(
            "Invalid request payload. Refer to the REST API documentation and try again.",
        );
    };
    let fields = request.get("fields").cloned().unwrap_or(Value::Null);
    let mut errors = serde_json::Map::new();
    let mut site = shared.site();
    let project_key = fields
        .pointer("/project/key")
        .and_then(Value::as_str)
        .filter(|key| site.projects.contains_key(*key));
    if project_key.is_none() {
        errors.insert("project".into(), json!("Specify a valid project ID or key"));
    }
    let issue_type = ISSUE_TYPES.iter().find(|(id, name)| {
        fields.pointer("/issuetype/name").and_then(Value::as_str) == Some(name)
            || fields.pointer("/issuetype/id").and_then(Value::as_str) == Some(id)
    });
    if issue_type.is_none() {
        errors.insert("issuetype".into(), json!("Specify an issue type"));
    }
    let summary = fields
        .get("summary")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty());
    if summary.is_none() {
        errors.insert(
            "summary".into(),
            json!("You must specify a summary of the issue."),
        );
    }
    let description = match fields.get("description") {
        None | Some(Value::Null) => None,
        Some(doc) if is_adf(doc) => Some(doc.clone()),
        Some(_) => {
            errors.insert(
                "description".into(),
                json!("Operation value must be an Atlassian Document (see the Atlassian Document Format)"),
            );
            None
        }
    };
    let (Some(project_key), Some((_, type_name)), Some(summary), true) =
        (project_key, issue_type, summary, errors.is_empty())
    else {
        return jira_error(StatusCode::BAD_REQUEST, &[], Value::Object(errors));
    };
    let project_key = project_key.to_owned();
    let now = shared.clock.stamp();
    let id = site.next_issue_id();
    let key = format!("{project_key}-{}", site.next_issue_number(&project_key));
    site.issues.insert(
        id,
        JiraIssue {
            id: id.to_string(),
            key: key.clone(),
            project_key,
            summary: summary.to_owned(),
            issue_type: (*type_name).to_owned(),
            status: "To Do".into(),
            priority: Some("Medium".into()),
            description,
            created: now,
            updated: now,
            comments: Vec::new(),
        },
    );
    drop(site);
    shared.wrote("/rest/api/3/issue", &request);
    let base = base(&shared, &uri);
    (
        StatusCode::CREATED,
        Json(json!({"id": id.to_string(), "key": key, "self": format!("{base}/rest/api/3/issue/{id}")})),
    )
        .into_response()
}

fn transition_list() -> Value {
    let transitions: Vec<Value> = TRANSITIONS
        .iter()
        .map(|(id, name, category)| {
            json!({"id": id, "name": name, "to": {"name": name, "statusCategory": {"key": category}}, "hasScreen": false})
        })
        .collect();
    json!({"expand": "transitions", "transitions": transitions})
}

pub(crate) async fn list_transitions(
    State(shared): App,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let key = params.get("key").cloned().unwrap_or_default();
    if shared.site().issue_by_key_mut(&key).is_none() {
        return no_issue();
    }
    Json(transition_list()).into_response()
}

pub(crate) async fn transition(
    State(shared): App,
    Path(params): Path<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let key = params.get("key").cloned().unwrap_or_default();
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return bad_request(
            "Invalid request payload. Refer to the REST API documentation and try again.",
        );
    };
    let now = shared.clock.stamp();
    let mut site = shared.site();
    let Some(issue) = site.issue_by_key_mut(&key) else {
        return no_issue();
    };
    let wanted = request.pointer("/transition/id").and_then(Value::as_str);
    let Some((_, status, _)) = TRANSITIONS.iter().find(|(id, _, _)| Some(*id) == wanted) else {
        return bad_request(&format!(
            "Transition id '{}' is not valid for this issue.",
            wanted.unwrap_or_default()
        ));
    };
    issue.status = (*status).to_owned();
    issue.updated = now;
    drop(site);
    shared.wrote(&format!("/rest/api/3/issue/{key}/transitions"), &request);
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn add_comment(
    State(shared): App,
    uri: OriginalUri,
    Path(params): Path<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let key = params.get("key").cloned().unwrap_or_default();
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return bad_request(
            "Invalid request payload. Refer to the REST API documentation and try again.",
        );
    };
    let Some(doc) = request.get("body").filter(|doc| is_adf(doc)).cloned() else {
        return jira_error(
            StatusCode::BAD_REQUEST,
            &[],
            json!({"comment": "Comment body can not be empty!"}),
        );
    };
    let now = shared.clock.stamp();
    let base = base(&shared, &uri);
    let offset = shared.options.utc_offset;
    let mut site = shared.site();
    // A comment's author is Atlassian's `UserDetails`: the user without `locale`.
    let author = site.users.get(MYSELF_ACCOUNT_ID).map(|u| {
        let mut author = u.to_json(&base, &shared.options.time_zone);
        if let Some(fields) = author.as_object_mut() {
            fields.remove("locale");
        }
        author
    });
    let comment_id = site.next_comment_id();
    let Some(issue) = site.issue_by_key_mut(&key) else {
        return no_issue();
    };
    let stamp = super::data::jira_time(now, offset);
    let comment = json!({
        "self": format!("{base}/rest/api/3/issue/{}/comment/{comment_id}", issue.id),
        "id": comment_id.to_string(),
        "author": author,
        "body": doc,
        "created": stamp,
        "updated": stamp,
        "jsdPublic": true,
    });
    issue.comments.push(comment.clone());
    issue.updated = now;
    drop(site);
    shared.wrote(&format!("/rest/api/3/issue/{key}/comment"), &request);
    (StatusCode::CREATED, Json(comment)).into_response()
}

pub(crate) async fn not_found() -> Response {
    jira_error(
        StatusCode::NOT_FOUND,
        &["null for uri: the stand-in has no such resource"],
        json!({}),
    )
}

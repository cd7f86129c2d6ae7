//! Single objects and writes: the authenticated user, the organization, a repository, a
//! branch's protection, issues and issue comments.

use std::sync::Arc;

use axum::{
    Extension,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use serde_json::Value;

use super::{Shared, auth::Caller, errors, lists::json_response};

const ISSUES_DOCS: &str = "https://docs.github.com/rest/issues/issues#create-an-issue";
const COMMENTS_DOCS: &str = "https://docs.github.com/rest/issues/comments#create-an-issue-comment";
const PROTECTION_DOCS: &str =
    "https://docs.github.com/rest/branches/branch-protection#get-branch-protection";

fn ok(value: &Value, headers: &HeaderMap) -> Response {
    json_response(StatusCode::OK, value.to_string(), headers, "")
}

fn created(value: &Value) -> Response {
    json_response(
        StatusCode::CREATED,
        value.to_string(),
        &HeaderMap::new(),
        "",
    )
}

fn same_org(shared: &Shared, owner: &str) -> bool {
    shared.org().login.eq_ignore_ascii_case(owner)
}

/// The account a write is attributed to: the token's user, or the App's bot.
fn author(shared: &Shared, caller: &Caller) -> Value {
    let data = shared.org();
    match caller {
        Caller::User => data.user_json(1, &shared.options.login, "User"),
        Caller::Installation => data.user_json(41_898_282, "switchyard[bot]", "Bot"),
    }
}

pub(crate) async fn user(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
) -> Response {
    if caller == Caller::Installation {
        return errors::not_accessible_by_integration(
            "https://docs.github.com/rest/users/users#get-the-authenticated-user",
        );
    }
    let mut user = shared.org().user_json(1, &shared.options.login, "User");
    if let Some(object) = user.as_object_mut() {
        // The public profile of `GET /user` (octokit's `public-user` example) with the
        // authenticated user's own fields.
        let profile = serde_json::json!({
            "name": "The Octocat",
            "company": "GitHub",
            "blog": "https://github.com/blog",
            "location": "San Francisco",
            "email": null,
            "hireable": false,
            "bio": "There once was...",
            "twitter_username": null,
            "public_repos": 2,
            "public_gists": 1,
            "followers": 20,
            "following": 0,
            "created_at": "2008-01-14T04:33:35Z",
            "updated_at": "2008-01-14T04:33:35Z",
            "two_factor_authentication": true,
            // The owner's own view (octokit's `private-user`).
            "user_view_type": "private",
        });
        if let Some(fields) = profile.as_object() {
            object.extend(fields.clone());
        }
    }
    ok(&user, &headers)
}

pub(crate) async fn organization(
    State(shared): State<Arc<Shared>>,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !same_org(&shared, &org) {
        return errors::not_found();
    }
    let value = shared.org().organization_json();
    ok(&value, &headers)
}

pub(crate) async fn repository(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let value = same_org(&shared, &owner)
        .then(|| shared.org().full_repository_json(&repo))
        .flatten();
    match value {
        Some(value) => ok(&value, &headers),
        None => errors::not_found(),
    }
}

pub(crate) async fn branch_protection(
    State(shared): State<Arc<Shared>>,
    Path((owner, repo, branch)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if !same_org(&shared, &owner) {
        return errors::not_found();
    }
    let data = shared.org();
    let Some(repository) = data.repository(&repo) else {
        return errors::not_found();
    };
    if !repository.branches.contains(&branch) {
        return errors::error(StatusCode::NOT_FOUND, "Branch not found", PROTECTION_DOCS);
    }
    match data.protection_json(&repo, &branch) {
        Some(value) => ok(&value, &headers),
        None => errors::error(
            StatusCode::NOT_FOUND,
            "Branch not protected",
            PROTECTION_DOCS,
        ),
    }
}

fn strings(body: &Value, field: &str) -> Vec<String> {
    body.get(field)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) async fn create_issue(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((owner, repo)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if !same_org(&shared, &owner) || shared.org().repository(&repo).is_none() {
        return errors::not_found();
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return errors::problems_parsing_json(ISSUES_DOCS);
    };
    // GitHub takes a number as a title too, as its text.
    let title = match body.get("title") {
        Some(Value::String(text)) if !text.is_empty() => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        _ => return errors::missing_field("title", ISSUES_DOCS),
    };
    let text = body.get("body").and_then(Value::as_str).map(str::to_owned);
    let author = author(&shared, &caller);
    let issue = shared.org().create_issue(
        &repo,
        title,
        text,
        strings(&body, "labels"),
        strings(&body, "assignees"),
        author,
    );
    match issue {
        Some(issue) => created(&issue),
        None => errors::not_found(),
    }
}

pub(crate) async fn create_comment(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((owner, repo, number)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let Ok(number) = number.parse::<u64>() else {
        return errors::not_found();
    };
    if !same_org(&shared, &owner) {
        return errors::not_found();
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return errors::problems_parsing_json(COMMENTS_DOCS);
    };
    let Some(text) = body
        .get("body")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    else {
        return errors::missing_field("body", COMMENTS_DOCS);
    };
    let author = author(&shared, &caller);
    let comment = shared
        .org()
        .create_comment(&repo, number, text.to_owned(), author);
    match comment {
        Some(comment) => created(&comment),
        None => errors::not_found(),
    }
}

pub(crate) async fn not_found() -> Response {
    errors::not_found()
}

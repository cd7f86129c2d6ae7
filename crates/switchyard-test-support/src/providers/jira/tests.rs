//! The stand-in's wire format: what a Jira client meets.

use std::time::Duration;

use serde_json::{Value, json};

use super::{JiraOptions, JiraStandIn, Seed};
use crate::standin::RateLimit;

async fn started(options: JiraOptions) -> (JiraStandIn, reqwest::Client) {
    let standin = JiraStandIn::start(options).await.unwrap();
    standin.seed(Seed {
        users: 12,
        projects: 3,
        issues: 7,
    });
    (standin, reqwest::Client::new())
}

fn site(
    standin: &JiraStandIn,
    client: &reqwest::Client,
    method: reqwest::Method,
    path: &str,
) -> reqwest::RequestBuilder {
    client
        .request(method, format!("{}{path}", standin.url()))
        .basic_auth(&standin.options().email, Some(&standin.options().api_token))
}

#[tokio::test]
async fn credentials_are_refused_as_jira_refuses_them() {
    let (standin, client) = started(JiraOptions::default()).await;
    let myself = format!("{}/rest/api/3/myself", standin.url());
    for request in [
        client.get(&myself),
        client
            .get(&myself)
            .basic_auth(&standin.options().email, Some("wrong")),
        client
            .get(&myself)
            .bearer_auth(&standin.options().access_token),
    ] {
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status(), 401);
        assert_eq!(
            answer.text().await.unwrap(),
            "Client must be authenticated to access this resource."
        );
    }
    let gateway = format!("{}/rest/api/3/myself", standin.oauth_url());
    let answer = client
        .get(&gateway)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    assert_eq!(
        answer.json::<Value>().await.unwrap(),
        json!({"code": 401, "message": "Unauthorized"})
    );
    let other_site = format!(
        "{}/ex/jira/00000000-0000-0000-0000-000000000000/rest/api/3/myself",
        standin.url()
    );
    let answer = client
        .get(&other_site)
        .bearer_auth(&standin.options().access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);
    let me: Value = client
        .get(&gateway)
        .bearer_auth(&standin.options().access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["emailAddress"], standin.options().email.as_str());
    assert!(
        me["self"]
            .as_str()
            .unwrap()
            .starts_with(&standin.oauth_url())
    );
}

#[tokio::test]
async fn project_search_pages_by_offset_with_is_last() {
    let (standin, client) = started(JiraOptions::default()).await;
    let page = |start: u32| {
        site(
            &standin,
            &client,
            reqwest::Method::GET,
            &format!("/rest/api/3/project/search?startAt={start}&maxResults=2"),
        )
        .send()
    };
    let first: Value = page(0).await.unwrap().json().await.unwrap();
    assert_eq!(
        (first["total"].as_u64(), first["isLast"].as_bool()),
        (Some(3), Some(false))
    );
    assert_eq!(first["values"].as_array().unwrap().len(), 2);
    assert!(first["nextPage"].as_str().unwrap().ends_with("startAt=2"));
    let last: Value = page(2).await.unwrap().json().await.unwrap();
    assert_eq!(last["isLast"], true);
    assert!(last.get("nextPage").is_none());
    let bad = site(
        &standin,
        &client,
        reqwest::Method::GET,
        "/rest/api/3/project/search?startAt=-1",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn issue_search_walks_next_page_tokens_and_refuses_unbounded_queries() {
    let (standin, client) = started(JiraOptions::default()).await;
    let search = |body: Value| {
        site(
            &standin,
            &client,
            reqwest::Method::POST,
            "/rest/api/3/search/jql",
        )
        .json(&body)
        .send()
    };
    let unbounded = search(json!({"jql": "ORDER BY updated ASC"}))
        .await
        .unwrap();
    assert_eq!(unbounded.status(), 400);
    assert_eq!(
        unbounded.json::<Value>().await.unwrap(),
        json!({"errorMessages": ["Unbounded JQL queries are not allowed here. Please add a search restriction to your query."], "errors": {}})
    );
    let jql = r#"updated >= "2023-12-31 00:00" ORDER BY updated ASC"#;
    let first: Value =
        search(json!({"jql": jql, "fields": ["summary", "updated"], "maxResults": 4}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(first["isLast"], false);
    let issues = first["issues"].as_array().unwrap();
    assert_eq!(issues.len(), 4);
    assert_eq!(
        issues[0]["fields"].as_object().unwrap().len(),
        2,
        "only the asked fields"
    );
    assert_eq!(
        issues[0]["fields"]["updated"],
        "2023-12-31T23:59:53.000+0000"
    );
    // Changed during the walk: found again after the token's position.
    let moved = issues[0]["key"].as_str().unwrap().to_owned();
    standin.advance(Duration::from_secs(5));
    standin
        .update_issue(&moved, |i| i.summary = "Moved".into())
        .unwrap();
    let token = first["nextPageToken"].as_str().unwrap();
    let rest: Value =
        search(json!({"jql": jql, "fields": ["summary"], "maxResults": 4, "nextPageToken": token}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(rest["isLast"], true);
    assert!(
        rest.get("nextPageToken").is_none(),
        "absent on the last page"
    );
    let keys: Vec<&str> = rest["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 4);
    assert_eq!(keys.last(), Some(&moved.as_str()));
    let foreign = search(json!({"jql": r#"updated >= "2020-01-01""#, "nextPageToken": token}))
        .await
        .unwrap();
    assert_eq!(foreign.status(), 400, "a token belongs to its query");
    let ids: Value = search(json!({"jql": jql}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        ids["issues"][0].get("fields").is_none(),
        "no fields unless asked"
    );
}

#[tokio::test]
async fn writes_check_fields_as_jira_does() {
    let (standin, client) = started(JiraOptions::default()).await;
    let create = |fields: Value| {
        site(
            &standin,
            &client,
            reqwest::Method::POST,
            "/rest/api/3/issue",
        )
        .json(&json!({"fields": fields}))
        .send()
    };
    let refused = create(json!({"project": {"key": "PRJ1"}, "issuetype": {"name": "Task"}, "summary": "S", "description": "plain text"})).await.unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["errors"]["description"]
            .as_str()
            .unwrap()
            .contains("Atlassian Document")
    );
    let created =
        create(json!({"project": {"key": "PRJ1"}, "issuetype": {"id": "10002"}, "summary": "S"}))
            .await
            .unwrap();
    assert_eq!(created.status(), 201);
    let key = created.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(standin.issue(&key).unwrap().issue_type, "Bug");
    let missing = site(
        &standin,
        &client,
        reqwest::Method::POST,
        "/rest/api/3/issue/NOPE-1/comment",
    )
    .json(&json!({"body": super::adf_paragraph("x")}))
    .send()
    .await
    .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn a_spent_budget_is_a_429_with_jiras_headers() {
    let (standin, client) = started(JiraOptions {
        rate_limit: Some(RateLimit::new(2, Duration::from_secs(60))),
        ..JiraOptions::default()
    })
    .await;
    let myself = || {
        site(
            &standin,
            &client,
            reqwest::Method::GET,
            "/rest/api/3/myself",
        )
        .send()
    };
    let first = myself().await.unwrap();
    assert_eq!(first.headers()["x-ratelimit-limit"], "2");
    assert_eq!(first.headers()["x-ratelimit-remaining"], "1");
    myself().await.unwrap();
    let limited = myself().await.unwrap();
    assert_eq!(limited.status(), 429);
    let headers = limited.headers();
    assert_eq!(headers["ratelimit-reason"], "jira-burst-based");
    assert!(
        headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    let reset = headers["x-ratelimit-reset"].to_str().unwrap();
    assert!(reset.len() == 17 && reset.ends_with('Z'), "{reset}");
}

/// Writes the stand-in's answers, one file per endpoint, into `SWITCHYARD_JIRA_SHAPES_DIR` for
/// `scripts/dev/jira-shapes.py` to compare with Atlassian's REST v3 description; without that
/// variable it only checks that each endpoint answers as expected. A `204` is written `null`.
#[tokio::test]
async fn answers_for_the_shape_check() {
    use reqwest::Method;
    let (standin, client) = started(JiraOptions::default()).await;
    let issue_key = standin.issues()[0].key.clone();
    let fields = json!([
        "summary",
        "status",
        "issuetype",
        "priority",
        "project",
        "created",
        "updated"
    ]);
    let calls: Vec<(&str, Method, String, Option<Value>, u16)> = vec![
        (
            "myself",
            Method::GET,
            "/rest/api/3/myself".into(),
            None,
            200,
        ),
        (
            "project_search",
            Method::GET,
            "/rest/api/3/project/search?maxResults=2".into(),
            None,
            200,
        ),
        (
            "users_search",
            Method::GET,
            "/rest/api/3/users/search?maxResults=6".into(),
            None,
            200,
        ),
        (
            "search_jql",
            Method::POST,
            "/rest/api/3/search/jql".into(),
            Some(
                json!({"jql": "updated >= \"1970-01-01 00:00\" ORDER BY updated ASC", "fields": fields, "maxResults": 5}),
            ),
            200,
        ),
        (
            "create_issue",
            Method::POST,
            "/rest/api/3/issue".into(),
            Some(
                json!({"fields": {"project": {"key": "PRJ1"}, "issuetype": {"name": "Bug"}, "summary": "Disk full", "description": super::adf_paragraph("db-1")}}),
            ),
            201,
        ),
        (
            "transitions",
            Method::GET,
            format!("/rest/api/3/issue/{issue_key}/transitions"),
            None,
            200,
        ),
        (
            "transition",
            Method::POST,
            format!("/rest/api/3/issue/{issue_key}/transitions"),
            Some(json!({"transition": {"id": "21"}})),
            204,
        ),
        (
            "add_comment",
            Method::POST,
            format!("/rest/api/3/issue/{issue_key}/comment"),
            Some(json!({"body": super::adf_paragraph("Looking into it")})),
            201,
        ),
        (
            "error_400",
            Method::POST,
            "/rest/api/3/issue".into(),
            Some(
                json!({"fields": {"project": {"key": "NOPE"}, "issuetype": {"name": "Bug"}, "summary": "x"}}),
            ),
            400,
        ),
        (
            "error_404",
            Method::GET,
            "/rest/api/3/issue/NOPE-1/transitions".into(),
            None,
            404,
        ),
    ];
    let dir = std::env::var_os("SWITCHYARD_JIRA_SHAPES_DIR").map(std::path::PathBuf::from);
    for (name, method, path, body, status) in calls {
        let request = site(&standin, &client, method, &path);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{name}");
        let text = response.text().await.unwrap();
        let answer: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(
                dir.join(format!("{name}.json")),
                serde_json::to_string_pretty(&answer).unwrap(),
            )
            .unwrap();
        }
    }
}

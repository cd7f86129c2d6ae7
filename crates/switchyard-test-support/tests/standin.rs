//! The stand-in provider, walked over HTTP the way a connector would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::HashSet, time::Duration};

use reqwest::{StatusCode, header::HeaderMap};
use serde_json::{Value, json};
use switchyard_test_support::standin::{
    DataMode, Failure, Item, ItemStatus, RateLimit, StandIn, StandInOptions,
};

const TOKEN: &str = "standin-test-token";

async fn start() -> StandIn {
    StandIn::start(StandInOptions {
        token: Some(TOKEN.into()),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// A response read whole.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.bytes().await.unwrap().to_vec(),
    }
}

/// `GET` of an absolute URL with the token.
async fn get(url: &str) -> Answer {
    send(reqwest::Client::new().get(url).bearer_auth(TOKEN)).await
}

async fn get_ok(url: &str) -> Value {
    let answer = get(url).await;
    assert_eq!(answer.status, StatusCode::OK, "{url}: {}", answer.json());
    assert!(
        answer
            .header("etag")
            .is_some_and(|tag| tag.starts_with('"')),
        "{url}: a list page has a strong ETag"
    );
    answer.json()
}

fn ids(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The `rel` target of a GitHub `Link` header.
fn link(answer: &Answer, rel: &str) -> Option<String> {
    answer.header("link")?.split(", ").find_map(|part| {
        let (target, relation) = part.split_once("; ")?;
        (relation == format!("rel=\"{rel}\"")).then(|| target.trim_matches(['<', '>']).to_owned())
    })
}

/// Each id seen exactly once, and together the whole data set in id order.
#[track_caller]
fn assert_complete(style: &str, seen: &[String], standin: &StandIn) {
    let expected: Vec<String> = standin.items().into_iter().map(|item| item.id).collect();
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "{style}: an item was seen twice");
    assert_eq!(seen, expected, "{style}: the walk did not see the data set");
}

async fn walk_link(standin: &StandIn, per_page: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut next = Some(format!("{}/link/items?per_page={per_page}", standin.url()));
    while let Some(url) = next {
        let answer = get(&url).await;
        assert_eq!(answer.status, StatusCode::OK);
        seen.extend(ids(&answer.json()));
        next = link(&answer, "next");
        if next.is_some() {
            assert!(link(&answer, "last").is_some(), "next comes with last");
        }
    }
    seen
}

async fn walk_cursor(standin: &StandIn, query: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = get_ok(&format!(
            "{}/cursor/items?{query}&cursor={cursor}",
            standin.url()
        ))
        .await;
        assert_eq!(page["ok"], true);
        seen.extend(ids(&page["items"]));
        cursor = page["response_metadata"]["next_cursor"]
            .as_str()
            .unwrap()
            .to_owned();
        if cursor.is_empty() {
            return seen;
        }
    }
}

/// Follows a delta round from `url`; returns its entries and the delta link.
async fn delta_round(url: String, page_size: usize) -> (Vec<Value>, String) {
    let mut entries = Vec::new();
    let mut url = url;
    loop {
        let answer = send(
            reqwest::Client::new()
                .get(&url)
                .bearer_auth(TOKEN)
                .header("prefer", format!("odata.maxpagesize={page_size}")),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json());
        let page = answer.json();
        entries.extend(page["value"].as_array().unwrap().iter().cloned());
        if let Some(next) = page["@odata.nextLink"].as_str() {
            assert!(page.get("@odata.deltaLink").is_none());
            url = next.to_owned();
            continue;
        }
        let delta = page["@odata.deltaLink"].as_str().unwrap().to_owned();
        return (entries, delta);
    }
}

#[tokio::test]
async fn every_style_walks_from_the_first_page_to_the_last_seeing_each_item_once() {
    let standin = start().await;
    standin.seed(257);
    let base = standin.url().to_owned();

    assert_complete("link_header", &walk_link(&standin, 50).await, &standin);
    assert_complete("cursor", &walk_cursor(&standin, "limit=40").await, &standin);

    let mut seen = Vec::new();
    let mut next = Value::String(format!("{base}/next/items?page_size=30"));
    while let Value::String(url) = next {
        let page = get_ok(&url).await;
        seen.extend(ids(&page["results"]));
        next = page["next"].clone();
    }
    assert_complete("next_url", &seen, &standin);

    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = get_ok(&format!("{base}/offset/items?offset={offset}&limit=60")).await;
        assert_eq!(page["total"], 257);
        let items = ids(&page["items"]);
        offset += items.len();
        seen.extend(items);
        if offset >= 257 {
            break;
        }
    }
    assert_complete("offset", &seen, &standin);

    let mut seen = Vec::new();
    let mut page_number = 1;
    loop {
        let page = get_ok(&format!(
            "{base}/page/items?page={page_number}&page_size=25"
        ))
        .await;
        assert_eq!(page["page"], page_number);
        assert_eq!(page["total_pages"], 11);
        seen.extend(ids(&page["items"]));
        if page_number >= page["total_pages"].as_u64().unwrap() {
            break;
        }
        page_number += 1;
    }
    assert_complete("page", &seen, &standin);

    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let answer = send(
            reqwest::Client::new()
                .post(format!("{base}/graphql"))
                .bearer_auth(TOKEN)
                .json(&json!({
                    "query": "query($first: Int!, $after: String) { items(first: $first, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }",
                    "variables": { "first": 45, "after": after },
                })),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK);
        let connection = answer.json()["data"]["items"].clone();
        for edge in connection["edges"].as_array().unwrap() {
            seen.push(edge["node"]["id"].as_str().unwrap().to_owned());
            assert!(edge["cursor"].is_string());
        }
        if connection["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = connection["pageInfo"]["endCursor"].clone();
    }
    assert_complete("graphql_relay", &seen, &standin);

    let (entries, delta) = delta_round(format!("{base}/delta/items"), 70).await;
    assert_complete("delta_token", &ids(&Value::Array(entries)), &standin);
    assert!(delta.starts_with(&format!("{base}/delta/items?$deltatoken=")));
}

#[tokio::test]
async fn pages_carry_the_provider_shapes_and_absolute_links() {
    let standin = start().await;
    standin.seed(3);
    let base = standin.url().to_owned();

    let first = get(&format!("{base}/link/items?per_page=1")).await;
    assert_eq!(
        first.header("link"),
        Some(
            format!(
                "<{base}/link/items?per_page=1&page=2>; rel=\"next\", \
                 <{base}/link/items?per_page=1&page=3>; rel=\"last\""
            )
            .as_str()
        )
    );
    assert_eq!(
        first.json(),
        json!([{
            "id": "u00001", "name": "User 1", "email": "user1@example.test",
            "status": "active", "updated_at": "2023-12-31T23:59:58Z"
        }])
    );
    let last = get(&format!("{base}/link/items?per_page=1&page=3")).await;
    assert_eq!(link(&last, "next"), None);
    assert_eq!(
        link(&last, "first").as_deref(),
        Some(format!("{base}/link/items?per_page=1&page=1").as_str())
    );
    let whole = get(&format!("{base}/link/items")).await;
    assert_eq!(whole.header("link"), None, "one page needs no links");

    let end = get_ok(&format!("{base}/cursor/items?limit=3")).await;
    assert_eq!(end["response_metadata"]["next_cursor"], "");
    let end = get_ok(&format!("{base}/next/items?page_size=3")).await;
    assert_eq!(end["next"], Value::Null);
    let past = get_ok(&format!("{base}/page/items?page=9")).await;
    assert_eq!(past["items"], json!([]));

    let me = get(&format!("{base}/me")).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["login"], "standin");
    assert_eq!(me.header("x-oauth-scopes"), Some("items:read, items:write"));

    let same = get(&format!("{base}/offset/items?limit=2")).await;
    let again = get(&format!("{base}/offset/items?limit=2")).await;
    assert_eq!(same.body, again.body, "the same data gives the same bytes");
    assert_eq!(same.header("etag"), again.header("etag"));
}

#[tokio::test]
async fn updated_since_lists_what_changed_from_an_inclusive_bound() {
    let standin = start().await;
    standin.seed(20);
    let base = standin.url().to_owned();
    standin.advance(Duration::from_secs(60));
    let since = standin.now();

    let mut renamed = standin.get("u00003").unwrap();
    renamed.status = ItemStatus::Suspended;
    standin.upsert(renamed);
    standin.upsert(Item::new("u00000", "New", "new@example.test"));
    standin.delete("u00005");
    assert_eq!(standin.get("u00003").unwrap().updated_at, since);

    let query = format!(
        "updated_since={}",
        since
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    );
    // Same second: ordered by id within it; the deleted item is simply gone.
    let changed = walk_cursor(&standin, &format!("limit=1&{query}")).await;
    assert_eq!(changed, ["u00000", "u00003"]);
    let page = get_ok(&format!("{base}/offset/items?{query}")).await;
    assert_eq!(ids(&page["items"]), ["u00000", "u00003"]);
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"][1]["status"], "suspended");

    // A change later in the same second is found again from the same bound.
    standin.upsert(Item::new("u00001", "Late", "late@example.test"));
    let again = walk_cursor(&standin, &format!("limit=10&{query}")).await;
    assert_eq!(again, ["u00000", "u00001", "u00003"]);

    let bad = get(&format!("{base}/offset/items?updated_since=yesterday")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["code"], "invalid_parameter");
}

#[tokio::test]
async fn a_keyset_walk_by_update_finds_an_item_changed_behind_its_cursor() {
    let standin = start().await;
    standin.seed(10);
    let base = standin.url().to_owned();
    let url = |cursor: &str| {
        format!("{base}/cursor/items?limit=4&updated_since=2000-01-01T00:00:00Z&cursor={cursor}")
    };
    let first = get_ok(&url("")).await;
    assert_eq!(
        ids(&first["items"]),
        ["u00001", "u00002", "u00003", "u00004"]
    );
    standin.advance(Duration::from_secs(1));
    standin.upsert(standin.get("u00002").unwrap());
    let mut seen = ids(&first["items"]);
    let mut cursor = first["response_metadata"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    while !cursor.is_empty() {
        let page = get_ok(&url(&cursor)).await;
        seen.extend(ids(&page["items"]));
        cursor = page["response_metadata"]["next_cursor"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    assert_eq!(seen.len(), 11, "every item, and the changed one again");
    assert_eq!(seen.last().map(String::as_str), Some("u00002"));

    let id_cursor =
        get_ok(&format!("{base}/cursor/items?limit=1")).await["response_metadata"]["next_cursor"]
            .as_str()
            .unwrap()
            .to_owned();
    let mixed = get(&url(&id_cursor)).await;
    assert_eq!(mixed.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        mixed.json(),
        json!({"ok": false, "error": "invalid_cursor"})
    );
}

#[tokio::test]
async fn a_repeated_page_with_its_etag_is_not_modified() {
    let standin = start().await;
    standin.seed(5);
    let url = format!("{}/link/items?per_page=2", standin.url());
    let first = get(&url).await;
    let etag = first.header("etag").unwrap().to_owned();

    let conditional = || {
        send(
            reqwest::Client::new()
                .get(&url)
                .bearer_auth(TOKEN)
                .header("if-none-match", &etag),
        )
    };
    let repeated = conditional().await;
    assert_eq!(repeated.status, StatusCode::NOT_MODIFIED);
    assert!(repeated.body.is_empty());
    assert_eq!(repeated.header("etag"), Some(etag.as_str()));
    let logged = standin.requests().pop().unwrap();
    assert_eq!(logged.status, 304);
    assert_eq!(logged.headers["if-none-match"], etag);
    assert_eq!(
        logged.headers["authorization"], "Bearer",
        "no credential logged"
    );

    standin.upsert(Item::new("u00001", "Changed", "c@example.test"));
    let changed = conditional().await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
}

#[tokio::test]
async fn a_delta_link_returns_the_changes_and_removals_since_its_round() {
    let standin = start().await;
    standin.seed(6);
    let (full, delta) = delta_round(format!("{}/delta/items", standin.url()), 4).await;
    assert_eq!(full.len(), 6);

    standin.advance(Duration::from_secs(5));
    standin.upsert(Item::new("u00002", "Renamed", "r@example.test"));
    standin.delete("u00004");
    let (changes, next_delta) = delta_round(delta.clone(), 1).await;
    assert_eq!(
        changes,
        [
            serde_json::to_value(standin.get("u00002").unwrap()).unwrap(),
            json!({"id": "u00004", "@removed": {"reason": "deleted"}}),
        ]
    );
    assert_ne!(next_delta, delta);
    let (nothing, _) = delta_round(next_delta.clone(), 10).await;
    assert!(nothing.is_empty(), "no change since the fresh link");

    // A change made during a round is listed by the next round as well.
    standin.upsert(Item::new("u00001", "One", "one@example.test"));
    standin.upsert(Item::new("u00003", "Three", "three@example.test"));
    let paged = |url: &str| {
        send(
            reqwest::Client::new()
                .get(url)
                .bearer_auth(TOKEN)
                .header("prefer", "odata.maxpagesize=1"),
        )
    };
    let first_page = paged(&next_delta).await;
    assert_eq!(
        first_page.header("preference-applied"),
        Some("odata.maxpagesize=1")
    );
    let first_page = first_page.json();
    assert_eq!(ids(&first_page["value"]), ["u00001"]);
    standin.upsert(Item::new("u00001", "One again", "one@example.test"));
    let rest_url = first_page["@odata.nextLink"].as_str().unwrap().to_owned();
    let (rest, after_round) = delta_round(rest_url, 1).await;
    assert_eq!(ids(&Value::Array(rest)), ["u00003"]);
    let (successor, _) = delta_round(after_round, 10).await;
    // u00003 changed before that round began: the round listed it, its successor does not.
    assert_eq!(ids(&Value::Array(successor.clone())), ["u00001"]);
    assert_eq!(successor[0]["name"], "One again");
}

#[tokio::test]
async fn an_unknown_or_expired_delta_token_is_gone() {
    let standin = start().await;
    standin.seed(2);
    let unknown = get(&format!(
        "{}/delta/items?$deltatoken=nonsense",
        standin.url()
    ))
    .await;
    assert_eq!(unknown.status, StatusCode::GONE);
    assert_eq!(unknown.json()["error"]["code"], "resyncRequired");

    let (_, delta) = delta_round(format!("{}/delta/items", standin.url()), 10).await;
    assert_eq!(get(&delta).await.status, StatusCode::OK);
    standin.expire_delta_tokens();
    let expired = get(&delta).await;
    assert_eq!(expired.status, StatusCode::GONE);
    assert_eq!(expired.json()["error"]["code"], "resyncRequired");
    let (fresh, _) = delta_round(format!("{}/delta/items", standin.url()), 10).await;
    assert_eq!(fresh.len(), 2, "a full round starts over");
}

#[tokio::test]
async fn a_spent_budget_answers_429_with_retry_after() {
    let standin = StandIn::start(StandInOptions {
        token: Some(TOKEN.into()),
        rate_limit: Some(RateLimit::new(3, Duration::from_secs(60))),
        ..Default::default()
    })
    .await
    .unwrap();
    standin.seed(1);
    let url = format!("{}/page/items", standin.url());
    let first = get(&url).await;
    assert_eq!(first.header("x-ratelimit-limit"), Some("3"));
    assert_eq!(first.header("x-ratelimit-remaining"), Some("2"));
    let reset: u64 = first.header("x-ratelimit-reset").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        (now..=now + 61).contains(&reset),
        "reset {reset} is epoch seconds"
    );

    let etag = first.header("etag").unwrap().to_owned();
    let not_modified = send(
        reqwest::Client::new()
            .get(&url)
            .bearer_auth(TOKEN)
            .header("if-none-match", etag),
    )
    .await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
    assert_eq!(
        not_modified.header("x-ratelimit-remaining"),
        Some("2"),
        "a 304 is free"
    );

    assert_eq!(get(&url).await.header("x-ratelimit-remaining"), Some("1"));
    assert_eq!(get(&url).await.header("x-ratelimit-remaining"), Some("0"));
    let limited = get(&url).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.header("x-ratelimit-remaining"), Some("0"));
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(limited.json()["code"], "rate_limited");
    let slack = get(&format!("{}/cursor/items", standin.url())).await;
    assert_eq!(slack.json(), json!({"ok": false, "error": "ratelimited"}));
}

#[tokio::test]
async fn injected_failures_answer_first_then_the_real_route() {
    let standin = start().await;
    standin.seed(2);
    let url = format!("{}/offset/items", standin.url());
    standin.fail_next("/offset", 503, 2);
    assert_eq!(get(&url).await.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(get(&url).await.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(get(&url).await.status, StatusCode::OK);

    standin.inject(Failure::new("/offset", 429).header("retry-after", "7"));
    standin.inject(
        Failure::new("/offset", 400).json_body(json!({"error": {"code": "rate_limit_exceeded"}})),
    );
    let limited = get(&url).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.header("retry-after"), Some("7"));
    let coded = get(&url).await;
    assert_eq!(coded.status, StatusCode::BAD_REQUEST);
    assert_eq!(coded.json()["error"]["code"], "rate_limit_exceeded");

    standin.fail_next("/link", 500, 1);
    assert_eq!(
        get(&url).await.status,
        StatusCode::OK,
        "another prefix is untouched"
    );
    let statuses: Vec<u16> = standin.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 200, 429, 400, 200]);
    assert_eq!(standin.requests()[0].path, "/offset/items");
}

#[tokio::test]
async fn a_post_with_an_idempotency_key_replays_its_first_response() {
    let standin = start().await;
    let post = |body: Value, key: Option<&str>| {
        let mut request = reqwest::Client::new()
            .post(format!("{}/items", standin.url()))
            .bearer_auth(TOKEN)
            .json(&body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        send(request)
    };
    let body = json!({"name": "Ada", "email": "ada@example.test"});
    let first = post(body.clone(), Some("k-1")).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.json()["email"], "ada@example.test");
    let replay = post(
        json!({"name": "Other", "email": "o@example.test"}),
        Some("k-1"),
    )
    .await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.body, first.body);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(standin.len(), 1);

    let second = post(body, None).await;
    assert_ne!(second.json()["id"], first.json()["id"]);
    assert_eq!(standin.len(), 2);

    let invalid = post(json!({"name": "No mail"}), None).await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        invalid.json()["errors"],
        json!([{"resource": "Item", "field": "email", "code": "missing_field"}])
    );
}

#[tokio::test]
async fn the_virtual_set_serves_page_5000_of_a_million_items() {
    let standin = StandIn::start(StandInOptions {
        data: DataMode::Virtual { count: 1_000_000 },
        rate_limit: None,
        ..Default::default()
    })
    .await
    .unwrap();
    let base = standin.url().to_owned();

    let page = get(&format!("{base}/page/items?page=5000&page_size=100")).await;
    assert_eq!(page.header("x-ratelimit-limit"), None, "rate limit off");
    let page = page.json();
    assert_eq!(page["total_pages"], 10_000);
    let ids = ids(&page["items"]);
    assert_eq!(ids.len(), 100);
    assert_eq!(ids[0], "u0499901");
    assert_eq!(ids[99], "u0500000");

    let link_page = get(&format!("{base}/link/items?per_page=100&page=5000")).await;
    assert_eq!(
        link(&link_page, "last").as_deref(),
        Some(format!("{base}/link/items?per_page=100&page=10000").as_str())
    );
    let offset = get_ok(&format!("{base}/offset/items?offset=999999&limit=100")).await;
    assert_eq!(offset["total"], 1_000_000);
    assert_eq!(offset["items"][0]["id"], "u1000000");
    let cursor = get_ok(&format!("{base}/cursor/items?limit=2")).await;
    let next = cursor["response_metadata"]["next_cursor"].as_str().unwrap();
    let after = get_ok(&format!("{base}/cursor/items?limit=2&cursor={next}")).await;
    assert_eq!(after["items"][0]["id"], "u0000003");

    let create = send(
        reqwest::Client::new()
            .post(format!("{base}/items"))
            .json(&json!({"name": "A", "email": "a@example.test"})),
    )
    .await;
    assert_eq!(create.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(create.json()["code"], "read_only");
}

#[tokio::test]
async fn credentials_and_parameters_are_checked_with_each_providers_errors() {
    let standin = start().await;
    let base = standin.url().to_owned();
    let anonymous = send(reqwest::Client::new().get(format!("{base}/me"))).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.json()["message"], "Requires authentication");
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
    let wrong = send(
        reqwest::Client::new()
            .get(format!("{base}/cursor/items"))
            .bearer_auth("wrong"),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.json(), json!({"ok": false, "error": "invalid_auth"}));
    let graph = send(reqwest::Client::new().get(format!("{base}/delta/items"))).await;
    assert_eq!(graph.json()["error"]["code"], "InvalidAuthenticationToken");

    for (path, field) in [
        ("/link/items?per_page=0", "per_page"),
        ("/link/items?per_page=101", "per_page"),
        ("/link/items?page=0", "page"),
        ("/offset/items?limit=ten", "limit"),
        ("/page/items?page_size=-1", "page_size"),
    ] {
        let answer = get(&format!("{base}{path}")).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}");
        let body = answer.json();
        assert_eq!(body["code"], "invalid_parameter", "{path}");
        assert!(body["message"].as_str().unwrap().contains(field), "{body}");
    }
    let slack = get(&format!("{base}/cursor/items?limit=1001")).await;
    assert_eq!(
        slack.json(),
        json!({"ok": false, "error": "invalid_arguments"})
    );
    let cursor = get(&format!("{base}/next/items?cursor=bm9wZQ")).await;
    assert_eq!(cursor.json()["code"], "invalid_cursor");
    let graphql = send(
        reqwest::Client::new()
            .post(format!("{base}/graphql"))
            .bearer_auth(TOKEN)
            .json(&json!({"query": "{ items { edges { node { id } } } }", "variables": {"first": 101}})),
    )
    .await;
    assert_eq!(graphql.status, StatusCode::BAD_REQUEST);
    assert_eq!(graphql.json()["errors"][0]["type"], "INVALID_ARGUMENT");
}

#[tokio::test]
async fn the_server_stops_when_the_last_handle_is_dropped() {
    let standin = start().await;
    let url = format!("{}/me", standin.url());
    let clone = standin.clone();
    drop(standin);
    assert_eq!(
        get(&url).await.status,
        StatusCode::OK,
        "a clone keeps it up"
    );
    drop(clone);
    let mut refused = false;
    for _ in 0..50 {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        if client.get(&url).send().await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        refused,
        "the stand-in still answers after its last handle was dropped"
    );
}

//! The stand-in's own answers where the connector's tests do not reach: refusals, limits and
//! the App JWT checks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::{rand::SystemRandom, signature::RSA_PKCS1_SHA256};
use base64::Engine as _;
use serde_json::{Value, json};

use super::*;

const TOKEN: &str = "ghp_standin";

async fn github(options: GitHubOptions) -> GitHub {
    let github = GitHub::start(options).await.unwrap();
    github.seed(Seed::default());
    github
}

async fn get(github: &GitHub, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("{}{path}", github.url()));
    if let Some(token) = token {
        request = request.header("authorization", format!("token {token}"));
    }
    request.send().await.unwrap()
}

fn jwt(key: &AppKey, claims: &Value) -> String {
    let encode =
        |value: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    let signed = format!(
        "{}.{}",
        encode(&json!({"alg": "RS256", "typ": "JWT"})),
        encode(claims)
    );
    let mut signature = vec![0; key.pair.public_modulus_len()];
    key.pair
        .sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            signed.as_bytes(),
            &mut signature,
        )
        .unwrap();
    format!(
        "{signed}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature)
    )
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn credentials_are_refused_as_github_refuses_them() {
    let github = github(GitHubOptions {
        token: Some(TOKEN.into()),
        ..Default::default()
    })
    .await;
    let missing = get(&github, "/orgs/acme/members", None).await;
    assert_eq!(missing.status(), 401);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["message"],
        "Requires authentication"
    );
    let wrong = get(&github, "/orgs/acme/members", Some("ghp_wrong")).await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        wrong.json::<Value>().await.unwrap(),
        json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"})
    );
    let unknown = get(&github, "/orgs/other/members", Some(TOKEN)).await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["message"],
        "Not Found"
    );
    let not_for_tokens = get(&github, "/installation/repositories", Some(TOKEN)).await;
    assert_eq!(not_for_tokens.status(), 403);
}

#[tokio::test]
async fn pages_are_capped_at_100_and_linked_as_github_links_them() {
    let github = github(GitHubOptions {
        token: Some(TOKEN.into()),
        ..Default::default()
    })
    .await;
    let first = get(&github, "/orgs/acme/members?per_page=500", Some(TOKEN)).await;
    assert_eq!(first.status(), 200);
    let base = github.url();
    assert_eq!(
        first.headers()["link"],
        format!(
            "<{base}/organizations/9000001/members?per_page=100&page=2>; rel=\"next\", <{base}/organizations/9000001/members?per_page=100&page=2>; rel=\"last\""
        )
        .as_str()
    );
    assert_eq!(first.headers()["x-oauth-scopes"], "read:org, repo");
    assert_eq!(first.headers()["x-ratelimit-remaining"], "4999");
    assert_eq!(first.json::<Vec<Value>>().await.unwrap().len(), 100);
    let last = get(
        &github,
        "/organizations/9000001/members?per_page=100&page=2",
        Some(TOKEN),
    )
    .await;
    assert_eq!(
        last.headers()["link"],
        format!(
            "<{base}/organizations/9000001/members?per_page=100&page=1>; rel=\"prev\", <{base}/organizations/9000001/members?per_page=100&page=1>; rel=\"first\""
        )
        .as_str()
    );
    assert_eq!(last.json::<Vec<Value>>().await.unwrap().len(), 30);
    let default = get(&github, "/orgs/acme/teams", Some(TOKEN)).await;
    assert!(default.headers().get("link").is_none());

    let unsupported = reqwest::Client::new()
        .get(format!("{base}/orgs/acme"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("x-github-api-version", "2021-01-01")
        .send()
        .await
        .unwrap();
    assert_eq!(unsupported.status(), 400);
}

#[tokio::test]
async fn a_304_is_free_and_a_spent_budget_is_githubs_403() {
    let github = github(GitHubOptions {
        token: Some(TOKEN.into()),
        rate_limit: Some(RateLimit::new(3, Duration::from_secs(3_600))),
        ..Default::default()
    })
    .await;
    let first = get(&github, "/orgs/acme/teams", Some(TOKEN)).await;
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with("W/\""), "{etag}");
    let again = reqwest::Client::new()
        .get(format!("{}/orgs/acme/teams", github.url()))
        .bearer_auth(TOKEN)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(
        again.headers()["x-ratelimit-used"],
        "1",
        "the 304 was refunded"
    );
    get(&github, "/orgs/acme", Some(TOKEN)).await;
    get(&github, "/orgs/acme", Some(TOKEN)).await;
    let spent = get(&github, "/orgs/acme", Some(TOKEN)).await;
    assert_eq!(spent.status(), 403);
    assert_eq!(spent.headers()["x-ratelimit-remaining"], "0");
    let body: Value = spent.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("API rate limit exceeded")
    );

    github.secondary_limit(429, 7, 1);
    let limited = get(&github, "/orgs/acme", Some(TOKEN)).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "7");
}

#[tokio::test]
async fn the_app_jwt_is_checked_as_github_checks_it() {
    let key = AppKey::generate();
    let github = github(GitHubOptions {
        app: Some(GitHubApp::new(99, 5, &key)),
        ..Default::default()
    })
    .await;
    let exchange = |token: String, installation: u64| {
        let url = format!(
            "{}/app/installations/{installation}/access_tokens",
            github.url()
        );
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let now = now();
    let valid = json!({"iss": "99", "iat": now - 60, "exp": now + 540});

    let (status, body) = exchange(jwt(&key, &valid), 5).await;
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().unwrap();
    assert!(token.starts_with("ghs_"));
    assert_eq!(body["repository_selection"], "all");
    assert_eq!(body["permissions"]["members"], "read");
    assert_eq!(
        get(&github, "/orgs/acme/members", Some(token))
            .await
            .status(),
        200
    );
    assert_eq!(get(&github, "/user", Some(token)).await.status(), 403);
    github.expire_installation_tokens();
    assert_eq!(
        get(&github, "/orgs/acme/members", Some(token))
            .await
            .status(),
        401
    );

    let refused = [
        (
            json!({"iss": "99", "iat": now - 60, "exp": now + 600}),
            "is too far in the future",
        ),
        (
            json!({"iss": "99", "iat": now - 700, "exp": now - 100}),
            "must be a numeric value representing the future",
        ),
        (
            json!({"iss": "98", "iat": now - 60, "exp": now + 540}),
            "Integration not found",
        ),
        (json!({"iss": "99", "exp": now + 540}), "'Issued at' claim"),
    ];
    for (claims, message) in refused {
        let (status, body) = exchange(jwt(&key, &claims), 5).await;
        assert_eq!(status, 401, "{claims}");
        assert!(
            body["message"].as_str().unwrap().contains(message),
            "{claims}: {body}"
        );
    }
    let other = AppKey::generate();
    let (status, body) = exchange(jwt(&other, &valid), 5).await;
    assert_eq!(
        (status, body["message"].as_str().unwrap()),
        (401, "A JSON web token could not be decoded")
    );
    let (status, _) = exchange(jwt(&key, &valid), 6).await;
    assert_eq!(status, 404, "another installation");
    // The client id may sign too.
    let by_client =
        json!({"iss": GitHubApp::new(99, 5, &key).client_id, "iat": now - 60, "exp": now + 540});
    assert_eq!(exchange(jwt(&key, &by_client), 5).await.0, 201);
    assert_eq!(github.installation_tokens_issued(), 2);
    assert_eq!(github.accepted_jwts()[0].iss, "99");
}

#[test]
fn the_pkcs1_key_is_the_one_inside_the_pkcs8_key() {
    let key = AppKey::generate();
    let pkcs1 = key.private_key_pem();
    assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
    let der = |pem: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(
                pem.lines()
                    .filter(|l| !l.starts_with("-----"))
                    .collect::<String>(),
            )
            .unwrap()
    };
    let inner = der(&pkcs1);
    let outer = der(&key.private_key_pkcs8_pem());
    assert!(inner.len() > 1000);
    assert!(
        outer.ends_with(&inner),
        "PKCS#8 wraps the PKCS#1 key as its last element"
    );
}

/// One answer to dump: its file name, method, path, JSON body, bearer token and expected status.
type ShapeCall<'a> = (&'a str, &'a str, &'a str, Option<Value>, &'a str, u16);

/// Writes the stand-in's answers, one file per endpoint, into `SWITCHYARD_GITHUB_SHAPES_DIR`
/// for `scripts/dev/github-shapes.py` to compare with GitHub's OpenAPI description; without
/// that variable it only checks that each endpoint answers.
#[tokio::test]
async fn answers_for_the_shape_check() {
    let key = AppKey::generate();
    let github = github(GitHubOptions {
        token: Some(TOKEN.into()),
        app: Some(GitHubApp::new(99, 5, &key)),
        ..Default::default()
    })
    .await;
    let client = reqwest::Client::new();
    let base = github.url();
    let now = now();
    let app_jwt = jwt(
        &key,
        &json!({"iss": "99", "iat": now - 60, "exp": now + 540}),
    );
    let calls: Vec<ShapeCall<'_>> = vec![
        ("user", "GET", "/user", None, TOKEN, 200),
        ("org", "GET", "/orgs/acme", None, TOKEN, 200),
        ("members", "GET", "/orgs/acme/members", None, TOKEN, 200),
        (
            "outside_collaborators",
            "GET",
            "/orgs/acme/outside_collaborators",
            None,
            TOKEN,
            200,
        ),
        ("teams", "GET", "/orgs/acme/teams", None, TOKEN, 200),
        (
            "team_members",
            "GET",
            "/orgs/acme/teams/team-01/members",
            None,
            TOKEN,
            200,
        ),
        ("repos", "GET", "/orgs/acme/repos", None, TOKEN, 200),
        ("repo", "GET", "/repos/acme/repo-001", None, TOKEN, 200),
        (
            "protection",
            "GET",
            "/repos/acme/repo-001/branches/main/protection",
            None,
            TOKEN,
            200,
        ),
        (
            "issue",
            "POST",
            "/repos/acme/repo-001/issues",
            Some(
                json!({"title": "Hi", "body": "Text", "labels": ["bug"], "assignees": ["member-0001"]}),
            ),
            TOKEN,
            201,
        ),
        (
            "comment",
            "POST",
            "/repos/acme/repo-001/issues/1/comments",
            Some(json!({"body": "Me too"})),
            TOKEN,
            201,
        ),
        (
            "access_token",
            "POST",
            "/app/installations/5/access_tokens",
            None,
            &app_jwt,
            201,
        ),
        (
            "installation",
            "GET",
            "/app/installations/5",
            None,
            &app_jwt,
            200,
        ),
        ("error_404", "GET", "/orgs/other", None, TOKEN, 404),
        ("error_401", "GET", "/orgs/acme", None, "ghp_wrong", 401),
        (
            "error_403",
            "GET",
            "/installation/repositories",
            None,
            TOKEN,
            403,
        ),
        (
            "error_422",
            "POST",
            "/repos/acme/repo-001/issues",
            Some(json!({"body": "no title"})),
            TOKEN,
            422,
        ),
        (
            "error_400",
            "POST",
            "/repos/acme/repo-001/issues",
            None,
            TOKEN,
            400,
        ),
    ];
    let dir = std::env::var_os("SWITCHYARD_GITHUB_SHAPES_DIR").map(std::path::PathBuf::from);
    for (name, method, path, body, token, status) in calls {
        let url = format!("{base}{path}");
        let request = if method == "POST" {
            let request = client.post(url).bearer_auth(token);
            match body {
                Some(body) => request.json(&body),
                None if status == 400 => request.body("{not json"),
                None => request,
            }
        } else {
            client.get(url).bearer_auth(token)
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{name}");
        let answer: Value = response.json().await.unwrap();
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

//! The stand-in's answers for `scripts/dev/okta-shapes.py`, which compares them field by field
//! with Okta's Management API description.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::{Value, json};

use super::*;

const API_TOKEN: &str = "00standin-shape-check";
const CLIENT_ID: &str = "0oashapecheck00000x0g4";

/// `(answer name, method, path, authorization, expected status)`.
type ShapeCall = (&'static str, Method, String, String, u16);

/// An access token of a service app granted only `okta.logs.read`.
async fn logs_only_token(okta: &OktaStandIn, key: &ServiceAppKey) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": CLIENT_ID, "sub": CLIENT_ID, "aud": format!("{}/oauth2/v1/token", okta.url()),
        "iat": now, "exp": now + 300, "jti": "shape-check",
    });
    let assertion = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(key.private_key_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    let form = serde_urlencoded::to_string([
        ("grant_type", "client_credentials"),
        ("scope", "okta.logs.read"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", &assertion),
    ])
    .unwrap();
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/oauth2/v1/token", okta.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"].as_str().unwrap().to_owned()
}

/// Writes `body` as `{dir}/{name}.json`: pretty JSON, or an empty file for no body.
fn write_answer(dir: &std::path::Path, name: &str, body: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    let text = if body.is_empty() {
        String::new()
    } else {
        let value: Value = serde_json::from_slice(body).expect(name);
        serde_json::to_string_pretty(&value).unwrap()
    };
    std::fs::write(dir.join(format!("{name}.json")), text).unwrap();
}

/// Writes the stand-in's answers, one file per endpoint, into `SWITCHYARD_OKTA_SHAPES_DIR`
/// for `scripts/dev/okta-shapes.py`; without that variable it only checks each status.
#[tokio::test]
async fn answers_for_the_shape_check() {
    let key = ServiceAppKey::generate();
    let okta = OktaStandIn::start(OktaOptions {
        api_token: Some(API_TOKEN.into()),
        service_apps: vec![ServiceApp {
            client_id: CLIENT_ID.into(),
            public_key_pem: key.public_key_pem.clone(),
            key_id: None,
            granted_scopes: vec!["okta.logs.read".into()],
        }],
        ..Default::default()
    })
    .await
    .unwrap();
    let users = okta.seed(12, 2);
    // The factors of Okta's `ListFactorsResults` example, and a push factor.
    let enrolled = okta
        .add_user("Dade", "Murphy", "dade.murphy@example.test")
        .id;
    for (kind, status) in [
        ("question", "ACTIVE"),
        ("token:software:totp", "PENDING_ACTIVATION"),
        ("sms", "ACTIVE"),
        ("push", "ACTIVE"),
    ] {
        okta.enroll_factor(&enrolled, kind, status);
    }
    let group = okta.groups_json()[0]["id"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {}", logs_only_token(&okta, &key).await);
    let ssws = format!("SSWS {API_TOKEN}");
    let get = |name, path: String, status| (name, Method::GET, path, ssws.clone(), status);
    let post = |name, path: String, status| (name, Method::POST, path, ssws.clone(), status);
    // users[9] (the tenth) is seeded SUSPENDED; users[0] is in `group`.
    let calls: Vec<ShapeCall> = vec![
        get("users", "/api/v1/users".into(), 200),
        get("user_me", "/api/v1/users/me".into(), 200),
        get("groups", "/api/v1/groups".into(), 200),
        get(
            "group_members",
            format!("/api/v1/groups/{group}/users"),
            200,
        ),
        get("factors", format!("/api/v1/users/{enrolled}/factors"), 200),
        get("apps", "/api/v1/apps".into(), 200),
        get("logs", "/api/v1/logs".into(), 200),
        post(
            "error_400",
            format!("/api/v1/users/{}/lifecycle/suspend", users[9]),
            400,
        ),
        get("error_400_search", "/api/v1/users?filter=bogus".into(), 400),
        (
            "error_401",
            Method::GET,
            "/api/v1/users".into(),
            "SSWS 00wrong".into(),
            401,
        ),
        (
            "error_403",
            Method::GET,
            "/api/v1/users".into(),
            bearer,
            403,
        ),
        get(
            "error_404",
            "/api/v1/users/00unobody000000000000".into(),
            404,
        ),
        post(
            "suspend",
            format!("/api/v1/users/{}/lifecycle/suspend", users[1]),
            200,
        ),
        post(
            "unsuspend",
            format!("/api/v1/users/{}/lifecycle/unsuspend", users[9]),
            200,
        ),
        (
            "remove_member",
            Method::DELETE,
            format!("/api/v1/groups/{group}/users/{}", users[0]),
            ssws.clone(),
            204,
        ),
        get("error_429", "/api/v1/apps".into(), 429),
    ];
    let dir = std::env::var_os("SWITCHYARD_OKTA_SHAPES_DIR").map(std::path::PathBuf::from);
    let client = reqwest::Client::new();
    for (name, method, path, authorization, status) in calls {
        if name == "error_429" {
            okta.limit_next(&path, 1);
        }
        let response = client
            .request(method, format!("{}{path}", okta.url()))
            .header("authorization", authorization)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{name}");
        let body = response.bytes().await.unwrap();
        if let Some(dir) = &dir {
            write_answer(dir, name, &body);
        }
    }
    // An event hook delivery of the latest changes (suspend, unsuspend, membership removal).
    let log = okta.log_events();
    let delivery = okta.event_hook(&log[log.len() - 3..]);
    assert_eq!(delivery.body["data"]["events"].as_array().unwrap().len(), 3);
    if let Some(dir) = &dir {
        write_answer(dir, "event_hook", &delivery.bytes());
    }
}

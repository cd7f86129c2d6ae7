//! The refresh race: 100 concurrent calls that need the same expiring OAuth token, spread over
//! two `switchyard serve` processes on one PostgreSQL database, cause exactly one call to the
//! authorization server's token endpoint (counted there) and no `invalid_grant`. The server
//! rotates refresh tokens and accepts each once, so a second refresh with the spent token
//! would show as `invalid_grant`; every token endpoint answer is delayed to widen the window.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use switchyard_test_support::oauth_server::{AuthorizationServer, OAuthClientSpec};
use switchyard_test_support::{ServerProcess, TestDatabase};

const BINARY: &str = env!("CARGO_BIN_EXE_switchyard");
const KEK: &str = "b2F1dGgtcmFjZS10ZXN0LWtlay0zMi1ieXRlcy1vayE=";
const ADMIN_TOKEN: &str = "oauth-race-admin-token-0123456789abcdef";
const CALLS: usize = 100;

const MANIFEST: &str = r#"
id: oauth-demo
name: OAuth Demo
version: 1.0.0
base_url: "{{ config.base_url }}"
config:
  type: object
  required: [base_url, issuer]
  properties:
    base_url: { type: string }
    issuer: { type: string }
auth:
  - type: oauth2
    authorization_url: "{{ config.issuer }}/authorize"
    token_url: "{{ config.issuer }}/token"
    scopes: [read]
check:
  request: { path: /me }
"#;

/// Answers only tokens the authorization server signed, counting them.
#[derive(Clone)]
struct Api {
    jwks: Arc<JwkSet>,
    accepted: Arc<AtomicUsize>,
}

async fn me(State(api): State<Api>, headers: HeaderMap) -> StatusCode {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let key = jsonwebtoken::decode_header(token)
        .ok()
        .and_then(|h| h.kid)
        .and_then(|kid| api.jwks.find(&kid).cloned())
        .and_then(|jwk| DecodingKey::from_jwk(&jwk).ok());
    let mut validation = Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_aud = false;
    match key {
        Some(key) if jsonwebtoken::decode::<Value>(token, &key, &validation).is_ok() => {
            api.accepted.fetch_add(1, Ordering::SeqCst);
            StatusCode::OK
        }
        _ => StatusCode::UNAUTHORIZED,
    }
}

async fn call(client: &reqwest::Client, url: String, token: &str, body: Value) -> (u16, Value) {
    let response = client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_calls_over_two_processes_refresh_once() {
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let Some(server) = AuthorizationServer::start(vec![OAuthClientSpec::confidential(
        "race-client",
        "race-secret-7d3f9a",
    )])
    .await
    else {
        return;
    };
    let jwks: JwkSet = reqwest::get(server.jwks_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let api = Api {
        jwks: Arc::new(jwks),
        accepted: Arc::new(AtomicUsize::new(0)),
    };
    let accepted = Arc::clone(&api.accepted);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_url = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new().route("/me", get(me)).with_state(api);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let manifests = tempfile::tempdir().unwrap();
    std::fs::write(manifests.path().join("oauth-demo.yaml"), MANIFEST).unwrap();
    let directory = manifests.path().display().to_string();
    let env = [
        ("SWITCHYARD_VAULT__KEK__PROVIDER", "env"),
        ("SWITCHYARD_VAULT__KEK__KEY_BASE64", KEK),
        ("SWITCHYARD_ADMIN_TOKEN", ADMIN_TOKEN),
        ("SWITCHYARD_OUTBOUND__ALLOW_HTTP", "true"),
        ("SWITCHYARD_OUTBOUND__ALLOW_CIDRS", "127.0.0.1/32"),
        ("SWITCHYARD_CONNECTORS__DIRECTORY", directory.as_str()),
    ];
    let url = database.url().to_owned();
    let processes: Vec<ServerProcess> = (0..2)
        .map(|n| {
            let data_dir = database.path(&format!("process-{n}"));
            ServerProcess::start_with_env(
                Path::new(BINARY),
                &data_dir,
                &["--database-url", url.as_str()],
                "info",
                &env,
            )
        })
        .collect();
    let urls: Vec<String> = processes.iter().map(ServerProcess::url).collect();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // A tenant, its OAuth client and a connection made through a connect session.
    let (_, tenant) = call(
        &client,
        format!("{}/v1/tenants", urls[0]),
        ADMIN_TOKEN,
        json!({"name": "race"}),
    )
    .await;
    let tenant = tenant["id"].as_str().unwrap().to_owned();
    let (_, key) = call(
        &client,
        format!("{}/v1/tenants/{tenant}/api-keys", urls[0]),
        ADMIN_TOKEN,
        json!({"name": "race", "role": "admin"}),
    )
    .await;
    let key = key["key"].as_str().unwrap().to_owned();
    let (status, _) = call(&client, format!("{}/v1/oauth-clients", urls[0]), &key, json!({"provider": "oauth-demo", "client_id": "race-client", "client_secret": "race-secret-7d3f9a"})).await;
    assert_eq!(status, 201);
    let (status, session) = call(
        &client,
        format!("{}/v1/connect-sessions", urls[0]),
        &key,
        json!({
            "end_user": {"id": "racer"},
            "provider": "oauth-demo",
            "redirect_url": format!("{api_url}/done"),
            "config": {"oauth-demo": {"base_url": api_url, "issuer": server.issuer()}},
        }),
    )
    .await;
    assert_eq!(status, 201, "{session}");
    // 200 s left: inside the 5 minute refresh margin, so every call needs a refresh first.
    server.set_expires_in(Some(200)).await;
    let connect_url = session["connect_url"].as_str().unwrap();
    let start = client
        .get(format!("{connect_url}/oauth/oauth-demo"))
        .send()
        .await
        .unwrap();
    let location = start.headers()[LOCATION].to_str().unwrap().to_owned();
    let cookie = start.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let authorized = client.get(&location).send().await.unwrap();
    let callback = authorized.headers()[LOCATION].to_str().unwrap().to_owned();
    let back = client
        .get(&callback)
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 303);
    let back = url::Url::parse(back.headers()[LOCATION].to_str().unwrap()).unwrap();
    let connection = back
        .query_pairs()
        .find(|(k, _)| k == "connection_id")
        .map(|(_, v)| v.into_owned())
        .expect("a connection");
    let refreshes = |stats: &Value| stats["token_requests"]["refresh_token"].as_u64().unwrap();
    let before = server.stats().await;

    // The refreshed token has an hour; every token answer takes 300 ms from now on.
    server.set_expires_in(Some(3600)).await;
    server
        .delay_every_token_request(Duration::from_millis(300))
        .await;
    let accepted_before = accepted.load(Ordering::SeqCst);
    let calls = (0..CALLS).map(|n| {
        let client = client.clone();
        let url = format!("{}/v1/connections/{connection}/test", urls[n % 2]);
        let key = key.clone();
        async move { call(&client, url, &key, json!({})).await }
    });
    let results = futures::future::join_all(calls).await;
    for (status, report) in &results {
        assert_eq!(*status, 200, "{report}");
        assert_eq!(report["success"], true, "{report}");
    }
    let after = server.stats().await;
    assert_eq!(
        refreshes(&after) - refreshes(&before),
        1,
        "one refresh for {CALLS} calls: {after}"
    );
    assert_eq!(after["invalid_grant"], 0, "{after}");
    assert_eq!(accepted.load(Ordering::SeqCst) - accepted_before, CALLS);
    for process in processes {
        process.terminate();
    }
}

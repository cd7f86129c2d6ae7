//! The OAuth test peers, exercised directly: the authorization server over plain HTTP the
//! way a client would use it, and the browser driver against a tiny page.
//!
//! Needs SWITCHYARD_TEST_PEERS_NODE_MODULES and SWITCHYARD_TEST_BROWSER (skipped locally
//! without them, failing in CI).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use axum::response::Html;
use axum::routing::{get, post};
use axum::{Form, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION};
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use switchyard_test_support::browser;
use switchyard_test_support::oauth_server::{AuthorizationServer, OAuthClientSpec};
use switchyard_test_support::serve::Listener;

const CLIENT_ID: &str = "switchyard-app";
const CLIENT_SECRET: &str = "app-secret-for-tests";
const JWT_CLIENT_ID: &str = "switchyard-jwt";
const REDIRECT_URI: &str = "http://127.0.0.1:9/oauth/callback";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

// ---------------------------------------------------------------------------------------
// A client, written out by hand so the server is tested, not a client library.

struct Client {
    server: AuthorizationServer,
    http: reqwest::Client,
}

struct Pkce {
    verifier: String,
    challenge: String,
}

impl Pkce {
    fn new() -> Self {
        let verifier = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }
}

struct Answer {
    status: StatusCode,
    body: Value,
}

impl Answer {
    fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
}

impl Client {
    async fn start(extra: Vec<OAuthClientSpec>) -> Option<Self> {
        let mut clients = vec![OAuthClientSpec::confidential(CLIENT_ID, CLIENT_SECRET)];
        clients.extend(extra);
        let server = AuthorizationServer::start(clients).await?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Some(Self { server, http })
    }

    /// The authorization endpoint's redirect back to us, as query pairs.
    async fn authorize(&self, challenge: &str, state: &str) -> Vec<(String, String)> {
        let mut url = Url::parse(&self.server.authorization_url()).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", CLIENT_ID)
            .append_pair("redirect_uri", REDIRECT_URI)
            .append_pair("scope", "read write")
            .append_pair("state", state)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        let response = self.http.get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FOUND);
        let location = response.headers()[LOCATION].to_str().unwrap();
        let back = Url::parse(location).unwrap();
        assert!(location.starts_with(REDIRECT_URI), "{location}");
        back.query_pairs().into_owned().collect()
    }

    async fn code(&self, pkce: &Pkce) -> String {
        let pairs = self.authorize(&pkce.challenge, "st-1").await;
        assert!(
            pairs.contains(&("state".into(), "st-1".into())),
            "{pairs:?}"
        );
        pairs
            .into_iter()
            .find_map(|(name, value)| (name == "code").then_some(value))
            .expect("a code")
    }

    /// A token request authenticated with client_secret_basic.
    async fn token(&self, form: &[(&str, &str)]) -> Answer {
        let credentials = base64::engine::general_purpose::STANDARD
            .encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
        self.post_token(form, Some(format!("Basic {credentials}")))
            .await
    }

    async fn post_token(&self, form: &[(&str, &str)], authorization: Option<String>) -> Answer {
        let mut request = self
            .http
            .post(self.server.token_url())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap());
        if let Some(authorization) = authorization {
            request = request.header(AUTHORIZATION, authorization);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body = response.json().await.unwrap();
        Answer { status, body }
    }

    async fn exchange(&self, code: &str, verifier: &str) -> Answer {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ])
        .await
    }

    async fn refresh(&self, refresh_token: &str) -> Answer {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    /// A fresh grant: code exchanged, the answer's refresh token returned.
    async fn refresh_token(&self) -> String {
        let pkce = Pkce::new();
        let code = self.code(&pkce).await;
        let answer = self.exchange(&code, &pkce.verifier).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body["refresh_token"].as_str().unwrap().to_owned()
    }
}

// ---------------------------------------------------------------------------------------
// Authorization code and PKCE

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_exchange_requires_the_matching_verifier_and_is_single_use() {
    let Some(client) = Client::start(vec![]).await else {
        return;
    };
    let discovery = client.server.discovery();
    assert_eq!(discovery["issuer"], client.server.issuer());
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        json!(["S256"])
    );

    let pkce = Pkce::new();
    let code = client.code(&pkce).await;
    let wrong = Pkce::new();
    let answer = client.exchange(&code, &wrong.verifier).await;
    assert_eq!(
        (answer.status, answer.error()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );

    let code = client.code(&pkce).await;
    let answer = client
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
        ])
        .await;
    assert_eq!(
        answer.error(),
        "invalid_grant",
        "a missing verifier: {}",
        answer.body
    );

    let code = client.code(&pkce).await;
    let answer = client
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/elsewhere"),
            ("code_verifier", &pkce.verifier),
        ])
        .await;
    assert_eq!(
        answer.error(),
        "invalid_grant",
        "another redirect_uri: {}",
        answer.body
    );

    let code = client.code(&pkce).await;
    let answer = client.exchange(&code, &pkce.verifier).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["token_type"], "Bearer");
    assert_eq!(answer.body["scope"], "read write");
    assert_eq!(answer.body["expires_in"], 3600);
    assert!(
        answer.body["access_token"]
            .as_str()
            .unwrap()
            .split('.')
            .count()
            == 3
    );
    assert!(answer.body["refresh_token"].is_string());

    let again = client.exchange(&code, &pkce.verifier).await;
    assert_eq!(
        (again.status, again.error()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );

    let stats = client.server.stats().await;
    assert_eq!(stats["token_requests"]["authorization_code"], 5, "{stats}");
    assert_eq!(stats["client_auth"]["client_secret_basic"], 5, "{stats}");
    assert_eq!(stats["invalid_grant"], 4, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_without_s256_pkce_or_when_configured_to_deny_redirects_an_error() {
    let Some(client) = Client::start(vec![]).await else {
        return;
    };
    let mut url = Url::parse(&client.server.authorization_url()).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("state", "st-plain");
    let response = client.http.get(url).send().await.unwrap();
    let location = response.headers()[LOCATION].to_str().unwrap();
    assert!(location.contains("error=invalid_request"), "{location}");
    assert!(location.contains("state=st-plain"), "{location}");

    client
        .server
        .set_authorize_error(Some("access_denied"))
        .await;
    let pairs = client.authorize(&Pkce::new().challenge, "st-2").await;
    assert!(
        pairs.contains(&("error".into(), "access_denied".into())),
        "{pairs:?}"
    );
    assert!(
        pairs.contains(&("state".into(), "st-2".into())),
        "{pairs:?}"
    );
    assert!(!pairs.iter().any(|(name, _)| name == "code"), "{pairs:?}");

    client.server.set_authorize_error(None).await;
    let pairs = client.authorize(&Pkce::new().challenge, "st-3").await;
    assert!(pairs.iter().any(|(name, _)| name == "code"), "{pairs:?}");
}

// ---------------------------------------------------------------------------------------
// Refresh tokens

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_rotate_are_single_use_and_can_be_revoked() {
    let Some(client) = Client::start(vec![]).await else {
        return;
    };
    let first = client.refresh_token().await;
    let answer = client.refresh(&first).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        answer.body["scope"], "read write",
        "the grant's scope carries over"
    );
    let second = answer.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);

    let reused = client.refresh(&first).await;
    assert_eq!(
        (reused.status, reused.error()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );

    let unknown = client.refresh("never-issued").await;
    assert_eq!(unknown.error(), "invalid_grant");

    client.server.revoke_refresh_tokens().await;
    let revoked = client.refresh(&second).await;
    assert_eq!(
        (revoked.status, revoked.error()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );

    let stats = client.server.stats().await;
    assert_eq!(stats["token_requests"]["refresh_token"], 4, "{stats}");
    assert_eq!(stats["invalid_grant"], 3, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_answer_without_consuming_the_refresh_token() {
    let Some(client) = Client::start(vec![]).await else {
        return;
    };
    let refresh_token = client.refresh_token().await;
    client.server.fail_next(503, 2).await;
    for _ in 0..2 {
        let answer = client.refresh(&refresh_token).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.error(), "temporarily_unavailable");
    }
    let answer = client.refresh(&refresh_token).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);

    let stats = client.server.stats().await;
    assert_eq!(stats["token_requests"]["refresh_token"], 3, "{stats}");
    assert_eq!(stats["faults_served"], 2, "{stats}");
    assert_eq!(stats["invalid_grant"], 0, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delays_and_expires_in_are_configurable() {
    let Some(client) = Client::start(vec![]).await else {
        return;
    };
    let refresh_token = client.refresh_token().await;

    client
        .server
        .delay_next(Duration::from_millis(600), 1)
        .await;
    client.server.set_expires_in(None).await;
    let started = Instant::now();
    let answer = client.refresh(&refresh_token).await;
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(answer.body.get("expires_in").is_none(), "{}", answer.body);
    let refresh_token = answer.body["refresh_token"].as_str().unwrap().to_owned();

    client.server.set_expires_in(Some(60)).await;
    client
        .server
        .delay_every_token_request(Duration::from_millis(300))
        .await;
    let started = Instant::now();
    let answer = client.refresh(&refresh_token).await;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(answer.body["expires_in"], 60, "{}", answer.body);
    let claims = jwt_claims(answer.body["access_token"].as_str().unwrap());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        60
    );
    assert_eq!(claims["client_id"], CLIENT_ID);
}

fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------
// Client authentication

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secrets_are_checked_basic_and_post() {
    let Some(client) = Client::start(vec![]).await else {
        return;
    };
    let wrong = base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:nope"));
    let form = [("grant_type", "client_credentials"), ("scope", "read")];
    let answer = client
        .post_token(&form, Some(format!("Basic {wrong}")))
        .await;
    assert_eq!(
        (answer.status, answer.error()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );

    let answer = client.post_token(&form, None).await;
    assert_eq!(answer.error(), "invalid_client", "no authentication at all");

    let answer = client
        .post_token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ],
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(answer.body.get("refresh_token").is_none());

    let answer = client.token(&form).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);

    let stats = client.server.stats().await;
    assert_eq!(stats["client_auth"]["client_secret_post"], 1, "{stats}");
    assert_eq!(stats["client_auth"]["client_secret_basic"], 1, "{stats}");
    assert_eq!(stats["invalid_client"], 2, "{stats}");
    assert_eq!(stats["token_requests"]["client_credentials"], 4, "{stats}");
}

/// An ES256 key made for the test, its public half as a JWK set.
struct SigningKey {
    pkcs8: Vec<u8>,
    jwks: Value,
}

fn signing_key(kid: &str) -> SigningKey {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let point = pair.public_key().as_ref(); // 0x04 || x || y
    let jwks = json!({"keys": [{
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    }]});
    let pkcs8 = pair.to_pkcs8v1().unwrap().as_ref().to_vec();
    SigningKey { pkcs8, jwks }
}

fn assertion(key: &SigningKey, kid: &str, audience: &str, jti: &str, expires_in: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let now = i64::try_from(now).unwrap();
    let claims = json!({
        "iss": JWT_CLIENT_ID, "sub": JWT_CLIENT_ID, "aud": audience,
        "jti": jti, "iat": now, "exp": now + expires_in,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_der(&key.pkcs8),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_key_jwt_assertions_are_verified() {
    let key = signing_key("k1");
    let Some(client) = Client::start(vec![OAuthClientSpec::private_key_jwt(
        JWT_CLIENT_ID,
        key.jwks.clone(),
    )])
    .await
    else {
        return;
    };
    let token_url = client.server.token_url();
    let request = |assertion: String| {
        let client = &client;
        async move {
            client
                .post_token(
                    &[
                        ("grant_type", "client_credentials"),
                        ("client_assertion_type", ASSERTION_TYPE),
                        ("client_assertion", &assertion),
                    ],
                    None,
                )
                .await
        }
    };

    let answer = request(assertion(&key, "k1", &token_url, "jti-1", 60)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        jwt_claims(answer.body["access_token"].as_str().unwrap())["client_id"],
        JWT_CLIENT_ID
    );

    let answer = request(assertion(&key, "k1", client.server.issuer(), "jti-2", 60)).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "the issuer is an accepted audience: {}",
        answer.body
    );

    let replayed = request(assertion(&key, "k1", &token_url, "jti-1", 60)).await;
    assert_eq!(
        (replayed.status, replayed.error()),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );

    let expired = request(assertion(&key, "k1", &token_url, "jti-3", -120)).await;
    assert_eq!(expired.error(), "invalid_client", "{}", expired.body);

    let elsewhere = request(assertion(
        &key,
        "k1",
        "https://elsewhere.example/token",
        "jti-4",
        60,
    ))
    .await;
    assert_eq!(elsewhere.error(), "invalid_client", "{}", elsewhere.body);

    let stranger = signing_key("k1");
    let forged = request(assertion(&stranger, "k1", &token_url, "jti-5", 60)).await;
    assert_eq!(
        forged.error(),
        "invalid_client",
        "another key: {}",
        forged.body
    );

    let log = client.server.token_requests().await;
    assert_eq!(log.len(), 6);
    assert!(
        log.iter()
            .all(|entry| entry["client_auth"] == "private_key_jwt"),
        "{log:?}"
    );
    assert_eq!(log[0]["client_id"], JWT_CLIENT_ID, "{log:?}");
    assert_eq!(log[0]["status"], 200, "{log:?}");
    assert_eq!(log[2]["status"], 401, "{log:?}");
    assert_eq!(log[2]["error"], "invalid_client", "{log:?}");
    let stats = client.server.stats().await;
    assert_eq!(stats["client_auth"]["private_key_jwt"], 2, "{stats}");
    assert_eq!(stats["invalid_client"], 4, "{stats}");
}

// ---------------------------------------------------------------------------------------
// Browser

const FORM_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><title>Connect</title><link rel="icon" href="data:,"></head><body>
<form action="/saved" method="post">
  <label for="api-key">API key</label> <input id="api-key" name="key" autocomplete="off">
  <button type="submit">Save</button>
</form>
<a href="/help">Help</a>
</body></html>"#;

const UNLABELLED_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><title>Bad form</title><link rel="icon" href="data:,"></head><body>
<input name="key"><button type="submit">Save</button>
</body></html>"#;

async fn saved(Form(form): Form<std::collections::HashMap<String, String>>) -> Html<String> {
    let key = form.get("key").map_or("", String::as_str);
    let shown: String = key.chars().filter(char::is_ascii_alphanumeric).collect();
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><title>Saved</title><link rel=\"icon\" href=\"data:,\"></head><body><p>Saved key ending {}</p></body></html>",
        &shown[shown.len().saturating_sub(4)..]
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_fills_by_label_submits_by_keyboard_and_audits_names() {
    let listener = Listener::bind().await.unwrap();
    let base = listener.url().to_owned();
    let _serving = listener.serve(
        Router::new()
            .route("/", get(|| async { Html(FORM_PAGE) }))
            .route("/bad", get(|| async { Html(UNLABELLED_PAGE) }))
            .route("/saved", post(saved)),
    );
    let screenshot = tempfile::tempdir().unwrap();
    let screenshot_path = screenshot.path().join("saved.png");
    let Some(result) = browser::run(json!([
        {"goto": format!("{base}/")},
        {"a11y": true},
        {"fill": {"label": "API key", "value": "sk-test-1234WXYZ"}},
        {"press": "Tab"},
        {"expect_focus": {"role": "button", "name": "Save"}},
        {"press": "Enter"},
        {"wait_for_url": "/saved"},
        {"screenshot": screenshot_path.to_str().unwrap()},
    ]))
    .await
    else {
        return;
    };
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["title"], "Saved");
    assert_eq!(result["console_errors"], json!([]), "{result}");
    assert!(
        result["url"].as_str().unwrap().ends_with("/saved"),
        "{result}"
    );
    assert!(
        result["text"]
            .as_str()
            .unwrap()
            .contains("Saved key ending WXYZ"),
        "{result}"
    );
    let png = std::fs::read(&screenshot_path).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    assert!(
        !result["steps"].to_string().contains("sk-test-1234WXYZ"),
        "filled values are not echoed: {result}"
    );
    assert!(
        result["steps"][1]["snapshot"]
            .as_str()
            .unwrap()
            .contains("textbox \"API key\""),
        "{result}"
    );

    // Focus on the wrong control fails the run.
    let result = browser::run(json!([
        {"goto": format!("{base}/")},
        {"press": "Tab"},
        {"expect_focus": {"role": "link", "name": "Help"}},
    ]))
    .await
    .unwrap();
    assert_eq!(result["ok"], false, "{result}");
    assert_eq!(result["failed_step"], 2, "{result}");

    // A control without an accessible name fails the audit.
    let result = browser::run(json!([{"goto": format!("{base}/bad")}, {"a11y": true}]))
        .await
        .unwrap();
    assert_eq!(result["ok"], false, "{result}");
    assert!(
        result["error"].as_str().unwrap().contains("textbox"),
        "{result}"
    );
}

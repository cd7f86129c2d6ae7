//! What the OAuth tests share: the npm authorization server, a provider API that accepts
//! only tokens that server signed (or one API key), the test manifests, and an app with a
//! tenant, an API key and the tenant's OAuth client registration.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use switchyard_test_support::oauth_server::{AuthorizationServer, OAuthClientSpec};
use switchyard_test_support::{TestApp, TestBackend};

pub const CLIENT_ID: &str = "switchyard-test-client";
pub const CLIENT_SECRET: &str = "client-secret-5c1f0a7d9e2b4c68";
pub const API_KEY: &str = "apikey-canary-8d41f2a9c7";

pub const MANIFESTS: &[(&str, &str)] = &[
    (
        "oauth-demo.yaml",
        r#"
id: oauth-demo
name: OAuth Demo
version: 1.0.0
base_url: "{{ config.base_url }}"
config:
  type: object
  required: [base_url, issuer]
  properties:
    base_url: { type: string, title: API URL }
    issuer: { type: string, title: Issuer }
    granted_scope: { type: string, title: Granted scope }
auth:
  - type: oauth2
    authorization_url: "{{ config.issuer }}/authorize"
    token_url: "{{ config.issuer }}/token"
    scopes: [openid, read]
    token_auth_method: client_secret_basic
    default_token_lifetime: 1h
    config_from_token: { granted_scope: "$.scope" }
check:
  request: { path: /api/v1/me }
"#,
    ),
    (
        "oauth-key.yaml",
        r#"
id: oauth-key
name: OAuth Key Demo
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
    token_auth_method: private_key_jwt
check:
  request: { path: /api/v1/me }
"#,
    ),
    (
        "apikey-demo.yaml",
        r#"
id: apikey-demo
name: API Key Demo
version: 1.0.0
base_url: "{{ config.base_url }}"
config:
  type: object
  required: [base_url]
  properties:
    base_url: { type: string, title: API URL, description: Where the API is }
auth:
  - type: api_key
    in: header
    name: X-Api-Key
check:
  request: { path: /apikey/me }
"#,
    ),
];

/// What the provider API saw.
#[derive(Default)]
pub struct Seen {
    /// Bearer tokens it accepted, in order.
    pub accepted: Vec<String>,
    pub rejected: usize,
}

#[derive(Clone)]
struct Api {
    jwks: Arc<JwkSet>,
    seen: Arc<Mutex<Seen>>,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// Accepts a token only if the authorization server signed it and it has not expired.
async fn me(State(api): State<Api>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "no token"}))).into_response();
    };
    let header = jsonwebtoken::decode_header(token).ok();
    let key = header
        .as_ref()
        .and_then(|h| h.kid.as_deref())
        .and_then(|kid| api.jwks.find(kid))
        .and_then(|jwk| DecodingKey::from_jwk(jwk).ok());
    let mut validation = Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_aud = false;
    let valid =
        key.is_some_and(|key| jsonwebtoken::decode::<Value>(token, &key, &validation).is_ok());
    let mut seen = api.seen.lock().unwrap_or_else(PoisonError::into_inner);
    if valid {
        seen.accepted.push(token.to_owned());
        Json(json!({"id": "me"})).into_response()
    } else {
        seen.rejected += 1;
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid token"})),
        )
            .into_response()
    }
}

async fn apikey_me(headers: HeaderMap) -> Response {
    match headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        Some(API_KEY) => Json(json!({"id": "me"})).into_response(),
        _ => (StatusCode::UNAUTHORIZED, Json(json!({"error": "bad key"}))).into_response(),
    }
}

/// The provider API on 127.0.0.1, plus a page the tenant's app would redirect to.
pub struct ProviderApi {
    pub url: String,
    pub seen: Arc<Mutex<Seen>>,
}

impl ProviderApi {
    pub async fn start(jwks_url: &str) -> Self {
        let jwks: JwkSet = reqwest::get(jwks_url).await.unwrap().json().await.unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let api = Api {
            jwks: Arc::new(jwks),
            seen: Arc::clone(&seen),
        };
        let router = Router::new()
            .route("/api/v1/me", get(me))
            .route("/apikey/me", get(apikey_me))
            .route("/done", get(|| async { "Back in the app" }))
            .with_state(api);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { url, seen }
    }

    pub fn accepted(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .accepted
            .len()
    }
}

pub struct OAuthApp {
    pub app: TestApp,
    pub server: AuthorizationServer,
    pub api: ProviderApi,
    pub key: String,
    pub client: reqwest::Client,
    pub _manifests: tempfile::TempDir,
}

impl switchyard_test_support::BackendFixture for OAuthApp {
    async fn start(backend: TestBackend) -> Option<Self> {
        Self::start_with(backend, |f| f).await
    }
}

impl OAuthApp {
    pub async fn start_with(
        backend: TestBackend,
        configure: impl FnOnce(figment::Figment) -> figment::Figment,
    ) -> Option<Self> {
        Self::start_with_clients(backend, Vec::new(), configure).await
    }

    /// With more clients registered at the authorization server than the confidential one.
    pub async fn start_with_clients(
        backend: TestBackend,
        mut clients: Vec<OAuthClientSpec>,
        configure: impl FnOnce(figment::Figment) -> figment::Figment,
    ) -> Option<Self> {
        clients.push(OAuthClientSpec::confidential(CLIENT_ID, CLIENT_SECRET));
        let server = AuthorizationServer::start(clients).await?;
        let api = ProviderApi::start(&server.jwks_url()).await;
        let manifests = tempfile::tempdir().unwrap();
        for (name, text) in MANIFESTS {
            std::fs::write(manifests.path().join(name), text).unwrap();
        }
        let directory = manifests.path().display().to_string();
        let app = TestApp::spawn_with(backend, |figment| {
            configure(
                figment
                    .merge(("outbound.allow_http", true))
                    .merge(("outbound.allow_cidrs", vec!["127.0.0.1/32"]))
                    .merge(("connectors.directory", directory)),
            )
        })
        .await?;
        let tenant = app.create_tenant("acme").await;
        let (_, key) = app.create_api_key(&tenant, "admin").await;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let fixture = Self {
            app,
            server,
            api,
            key,
            client,
            _manifests: manifests,
        };
        fixture.register_client(&fixture.key).await;
        Some(fixture)
    }

    pub async fn register_client(&self, key: &str) -> Value {
        let response = self
            .app
            .post(
                "/v1/oauth-clients",
                key,
                &json!({"provider": "oauth-demo", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
            )
            .await;
        assert_eq!(response.status, 201, "{}", response.text());
        response.json()
    }

    pub fn provider_config(&self) -> Value {
        json!({"base_url": self.api.url, "issuer": self.server.issuer()})
    }

    /// A connect session for the demo providers; returns (id, connect URL).
    pub async fn session(&self, key: &str, extra: Value) -> (String, String) {
        let mut body = json!({
            "end_user": {"id": "user-1", "email": "user@example.com"},
            "allowed_providers": ["oauth-demo", "apikey-demo"],
            "redirect_url": format!("{}/done", self.api.url),
            "config": {"oauth-demo": self.provider_config()},
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                body.insert(k.clone(), v.clone());
            }
        }
        let response = self.app.post("/v1/connect-sessions", key, &body).await;
        assert_eq!(response.status, 201, "{}", response.text());
        let session = response.json();
        assert!(session["token"].is_string());
        (
            session["id"].as_str().unwrap().to_owned(),
            session["connect_url"].as_str().unwrap().to_owned(),
        )
    }

    /// Starts the OAuth flow: the provider URL and the binding cookie ("name=value").
    pub async fn start_flow(&self, connect_url: &str) -> (String, String) {
        let response = self
            .client
            .get(format!("{connect_url}/oauth/oauth-demo"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "{:?}", response.text().await);
        let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
        let cookie = response.headers()[SET_COOKIE].to_str().unwrap();
        let pair = cookie.split(';').next().unwrap().to_owned();
        (location, pair)
    }

    /// The authorization server approves: the callback URL it redirects to.
    pub async fn authorize(&self, location: &str) -> String {
        let response = self.client.get(location).send().await.unwrap();
        assert!(response.status().is_redirection(), "{}", response.status());
        response.headers()[LOCATION].to_str().unwrap().to_owned()
    }

    pub async fn callback(&self, callback: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut request = self
            .client
            .get(callback)
            .header("accept", "application/json");
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        request.send().await.unwrap()
    }

    /// The whole flow without a browser; returns the redirect to the tenant's app.
    pub async fn connect(&self, connect_url: &str) -> String {
        let (location, cookie) = self.start_flow(connect_url).await;
        let callback = self.authorize(&location).await;
        let response = self.callback(&callback, Some(&cookie)).await;
        assert_eq!(response.status(), 303, "{:?}", response.text().await);
        response.headers()[LOCATION].to_str().unwrap().to_owned()
    }

    /// Posts a form as a browser would.
    pub async fn post_form(&self, url: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn session_json(&self, id: &str) -> Value {
        self.app
            .get(&format!("/v1/connect-sessions/{id}"), &self.key)
            .await
            .json()
    }

    pub async fn connection(&self, id: &str) -> Value {
        self.app
            .get(&format!("/v1/connections/{id}"), &self.key)
            .await
            .json()
    }

    pub async fn test_connection(&self, id: &str) -> Value {
        let response = self
            .app
            .post(&format!("/v1/connections/{id}/test"), &self.key, &json!({}))
            .await;
        response.json()
    }

    /// How many audit entries of `action` the tenant's log holds once `at_least` arrived (the
    /// audit writer batches; entries land shortly after the change).
    pub async fn audited(&self, action: &str, at_least: usize) -> usize {
        let mut count = 0;
        for _ in 0..50 {
            let audit = self
                .app
                .get("/v1/audit-events?limit=200", &self.key)
                .await
                .json();
            count = audit["data"].as_array().map_or(0, |entries| {
                entries.iter().filter(|e| e["action"] == action).count()
            });
            if count >= at_least {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        count
    }

    pub async fn stat(&self, path: &str) -> u64 {
        let stats = self.server.stats().await;
        stats.pointer(path).and_then(Value::as_u64).unwrap_or(0)
    }
}

/// The query of a URL as a map.
pub fn query(url: &str) -> BTreeMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

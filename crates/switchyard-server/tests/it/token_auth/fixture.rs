//! What the token auth tests share: key pairs made per test, a provider that verifies
//! every JWT with the public key as the real ones do and hands out tokens its API routes
//! then require, the test manifests, and the app with the flows each test drives.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::Rng as _;
use serde_json::{Map, Value, json};
use switchyard_test_support::{LeakScanner, TestApp, TestBackend};

pub const APP_ID: &str = "4242";
pub const INSTALLATION: &str = "77";
pub const CLIENT_ID: &str = "0oa-service-app";
pub const KEY_ID: &str = "kid-2026";
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// What GitHub answers for a JWT it cannot verify.
pub const UNDECODABLE: &str = "A JSON web token could not be decoded";

// ---------------------------------------------------------------------------------------
// Keys

/// A fresh RSA key: PKCS#1 PEM (as GitHub hands out), PKCS#8 PEM, and the public half.
pub struct TestKey {
    pub pkcs1_pem: String,
    pub pkcs8_pem: String,
    pub public_pem: String,
}

impl TestKey {
    pub fn rsa() -> Self {
        let pems = switchyard_test_support::keys::RsaPems::generate();
        Self {
            pkcs1_pem: pems.pkcs1,
            pkcs8_pem: pems.pkcs8,
            public_pem: pems.public,
        }
    }

    pub fn decoding(&self) -> DecodingKey {
        DecodingKey::from_rsa_pem(self.public_pem.as_bytes()).unwrap()
    }
}

// ---------------------------------------------------------------------------------------
// The provider: a GitHub-style App token exchange, an OAuth token endpoint, and API routes
// that take only the tokens it issued (or, for `/api/v1/me`, tokens the mock server signed).

#[derive(Default)]
pub struct Provider {
    /// Public keys App JWTs may be signed with (GitHub allows several per App).
    pub app_keys: Vec<DecodingKey>,
    pub client_key: Option<DecodingKey>,
    pub client_secret: String,
    pub token_url: String,
    pub mock: Option<(String, JwkSet)>,
    pub custom_key: String,
    /// Tokens handed out, by the route that handed them out.
    pub issued: HashSet<String>,
    pub exchanges: usize,
    pub oauth_grants: usize,
    /// Every JWT received (App JWTs and client assertions), for the leak scan.
    pub jwts: Vec<String>,
    pub jtis: HashSet<String>,
    /// Tokens presented to the API, in order.
    pub presented: Vec<String>,
    /// Claims of mock-server tokens the API accepted.
    pub mock_claims: Vec<Map<String, Value>>,
}

pub type Shared = Arc<Mutex<Provider>>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Provider> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

fn random_token(prefix: &str) -> String {
    let tail: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(36)
        .map(char::from)
        .collect();
    format!("{prefix}{tail}")
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::to_owned)
}

fn github_error(status: StatusCode, message: &str) -> Response {
    let body = json!({"message": message, "documentation_url": "https://docs.github.com/rest"});
    (status, Json(body)).into_response()
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": "refused by the test provider"})),
    )
        .into_response()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `POST /app/installations/{id}/access_tokens`, as GitHub checks it: an RS256 JWT from
/// one of the App's keys, `iss` the App id, `iat` not in the future, at most 10 minutes.
async fn access_tokens(
    State(shared): State<Shared>,
    UrlPath(installation): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    if header("accept") != "application/vnd.github+json"
        || header("x-test-api-version") != "2022-11-28"
    {
        return github_error(
            StatusCode::BAD_REQUEST,
            "the manifest's headers are missing",
        );
    }
    let Some(jwt) = bearer(&headers) else {
        return github_error(StatusCode::UNAUTHORIZED, UNDECODABLE);
    };
    let mut provider = lock(&shared);
    provider.jwts.push(jwt.clone());
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[APP_ID]);
    validation.set_required_spec_claims(&["exp", "iat", "iss"]);
    validation.leeway = 0;
    let claims = provider.app_keys.iter().find_map(|key| {
        jsonwebtoken::decode::<Map<String, Value>>(&jwt, key, &validation)
            .ok()
            .map(|data| data.claims)
    });
    let Some(claims) = claims else {
        return github_error(StatusCode::UNAUTHORIZED, UNDECODABLE);
    };
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    if iat > now() || exp - iat > 600 {
        return github_error(
            StatusCode::UNAUTHORIZED,
            "'Expiration time' claim ('exp') is too far in the future",
        );
    }
    if installation != INSTALLATION {
        return github_error(StatusCode::NOT_FOUND, "Not Found");
    }
    let token = random_token("ghs_");
    provider.issued.insert(token.clone());
    provider.exchanges += 1;
    let expires_at = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let expires_at = expires_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let body = json!({"token": token, "expires_at": expires_at, "permissions": {"members": "read"}, "repository_selection": "all"});
    (StatusCode::CREATED, Json(body)).into_response()
}

/// An OAuth token endpoint for the client-credentials grant: client authentication by a
/// `private_key_jwt` assertion (RFC 7523) or `client_secret_basic`.
async fn oauth_token(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut provider = lock(&shared);
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let authenticated = if let Some(assertion) = form.get("client_assertion") {
        provider.jwts.push(assertion.clone());
        verify_assertion(&mut provider, &form, assertion)
    } else if let Some(basic) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let pair = base64::engine::general_purpose::STANDARD
            .decode(basic)
            .unwrap_or_default();
        let pair = String::from_utf8(pair).unwrap_or_default();
        let decoded: Vec<String> = pair
            .splitn(2, ':')
            .map(|half| {
                url::form_urlencoded::parse(format!("x={half}").as_bytes())
                    .next()
                    .unwrap()
                    .1
                    .into_owned()
            })
            .collect();
        decoded == [CLIENT_ID.to_owned(), provider.client_secret.clone()]
    } else {
        false
    };
    if !authenticated {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if form.get("scope").map(String::as_str) != Some("users.read groups.read") {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_scope");
    }
    let token = random_token("oat_");
    provider.issued.insert(token.clone());
    provider.oauth_grants += 1;
    Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600, "scope": "users.read groups.read"}))
        .into_response()
}

fn verify_assertion(
    provider: &mut Provider,
    form: &HashMap<String, String>,
    assertion: &str,
) -> bool {
    if form.get("client_assertion_type").map(String::as_str) != Some(ASSERTION_TYPE) {
        return false;
    }
    let Ok(header) = jsonwebtoken::decode_header(assertion) else {
        return false;
    };
    if header.kid.as_deref() != Some(KEY_ID) {
        return false;
    }
    let Some(key) = &provider.client_key else {
        return false;
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[provider.token_url.as_str()]);
    validation.set_issuer(&[CLIENT_ID]);
    validation.sub = Some(CLIENT_ID.to_owned());
    validation.set_required_spec_claims(&["exp", "iat", "iss", "sub", "aud"]);
    let Ok(data) = jsonwebtoken::decode::<Map<String, Value>>(assertion, key, &validation) else {
        return false;
    };
    let claims = data.claims;
    let lifetime = claims["exp"].as_u64().unwrap_or(u64::MAX) - claims["iat"].as_u64().unwrap_or(0);
    let Some(jti) = claims.get("jti").and_then(Value::as_str) else {
        return false;
    };
    // An assertion is good once.
    lifetime <= 300 && provider.jtis.insert(jti.to_owned())
}

/// `GET /installation/whoami` (App) and `GET /api/v1/me` (OAuth): only tokens this provider
/// issued, or tokens the mock authorization server signed.
async fn me(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        return github_error(StatusCode::UNAUTHORIZED, "Requires authentication");
    };
    let mut provider = lock(&shared);
    provider.presented.push(token.clone());
    if provider.issued.contains(&token) {
        return Json(json!({"ok": true})).into_response();
    }
    if let Some((issuer, keys)) = &provider.mock
        && let Ok(header) = jsonwebtoken::decode_header(&token)
        && let Some(jwk) = header.kid.as_deref().and_then(|kid| keys.find(kid))
    {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[issuer.as_str()]);
        validation.validate_aud = false;
        let key = DecodingKey::from_jwk(jwk).unwrap();
        if let Ok(data) = jsonwebtoken::decode::<Map<String, Value>>(&token, &key, &validation) {
            provider.mock_claims.push(data.claims);
            return Json(json!({"ok": true})).into_response();
        }
    }
    github_error(StatusCode::UNAUTHORIZED, "Bad credentials")
}

/// `GET /custom/me`: an API key and an account header, as a `custom_headers` mode sends them.
async fn custom_me(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    let provider = lock(&shared);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    if header("x-api-key") == provider.custom_key && header("x-account") == "acct-9:eu" {
        Json(json!({"ok": true})).into_response()
    } else {
        (StatusCode::FORBIDDEN, Json(json!({"error": "bad key"}))).into_response()
    }
}

pub struct ProviderServer {
    pub url: String,
    pub shared: Shared,
}

impl ProviderServer {
    pub async fn start(setup: Provider) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Mutex::new(Provider {
            token_url: format!("{url}/oauth/token"),
            ..setup
        }));
        let router = Router::new()
            .route(
                "/api/v3/app/installations/{installation}/access_tokens",
                post(access_tokens),
            )
            .route("/api/v3/installation/whoami", get(me))
            .route("/oauth/token", post(oauth_token))
            .route("/api/v1/me", get(me))
            .route("/custom/me", get(custom_me))
            .with_state(Arc::clone(&shared));
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { url, shared }
    }

    pub fn get(&self) -> std::sync::MutexGuard<'_, Provider> {
        lock(&self.shared)
    }
}

// ---------------------------------------------------------------------------------------
// Manifests and the app

pub const MANIFESTS: &[(&str, &str)] = &[
    (
        "app-jwt.yaml",
        r#"
id: app-jwt
name: App JWT (test)
version: 1.0.0
base_url: "{{ config.base_url }}"
headers:
  Accept: application/vnd.github+json
  X-Test-Api-Version: "2022-11-28"
config:
  type: object
  required: [base_url, app_id, installation_id]
  properties:
    base_url: { type: string }
    app_id: { type: string }
    installation_id: { type: string }
auth:
  - type: jwt_bearer
    algorithm: RS256
    claims: { iss: "{{ config.app_id }}" }
    lifetime: 9m
    backdate: 60s
    exchange: { method: POST, url: "/app/installations/{{ config.installation_id }}/access_tokens", token_path: "$.token", expires_at_path: "$.expires_at" }
check:
  request: { path: /installation/whoami }
"#,
    ),
    (
        "cc-key.yaml",
        r#"
id: cc-key
name: Client credentials, private_key_jwt (test)
version: 1.0.0
base_url: "{{ config.base_url }}"
config: { type: object, required: [base_url], properties: { base_url: { type: string } } }
auth:
  - type: oauth2
    grant: client_credentials
    token_url: /oauth/token
    scopes: [users.read, groups.read]
    token_auth_method: private_key_jwt
check:
  request: { path: /api/v1/me }
"#,
    ),
    (
        "cc-secret.yaml",
        r#"
id: cc-secret
name: Client credentials, client_secret_basic (test)
version: 1.0.0
base_url: "{{ config.base_url }}"
config: { type: object, required: [base_url], properties: { base_url: { type: string } } }
auth:
  - type: oauth2
    grant: client_credentials
    token_url: "{{ config.base_url }}/oauth/token"
    scopes: [users.read, groups.read]
check:
  request: { path: /api/v1/me }
"#,
    ),
    (
        "mock-basic.yaml",
        r#"
id: mock-basic
name: Mock authorization server, client_secret_basic (test)
version: 1.0.0
base_url: "{{ config.base_url }}"
config: { type: object, required: [base_url, issuer], properties: { base_url: { type: string }, issuer: { type: string } } }
auth:
  - type: oauth2
    grant: client_credentials
    token_url: "{{ config.issuer }}/token"
    scopes: [read, write]
    token_auth_method: client_secret_basic
check:
  request: { path: /api/v1/me }
"#,
    ),
    (
        "mock-post.yaml",
        r#"
id: mock-post
name: Mock authorization server, client_secret_post (test)
version: 1.0.0
base_url: "{{ config.base_url }}"
config: { type: object, required: [base_url, issuer], properties: { base_url: { type: string }, issuer: { type: string } } }
auth:
  - type: oauth2
    grant: client_credentials
    token_url: "{{ config.issuer }}/token"
    scopes: [read]
    token_auth_method: client_secret_post
check:
  request: { path: /api/v1/me }
"#,
    ),
    (
        "custom.yaml",
        r#"
id: custom
name: Custom headers (test)
version: 1.0.0
base_url: "{{ config.base_url }}"
config: { type: object, required: [base_url, account], properties: { base_url: { type: string }, account: { type: string } } }
auth:
  - type: custom_headers
    headers:
      X-Api-Key: "{{ secrets.api_key }}"
      X-Account: "{{ secrets.account_id }}:{{ config.account }}"
check:
  request: { path: /custom/me }
"#,
    ),
];

pub struct Keys {
    /// The App's first key (PKCS#1) and its rotation (PKCS#8); both registered with it.
    pub app: TestKey,
    pub app_next: TestKey,
    /// Registered nowhere.
    pub stranger: TestKey,
    pub client: TestKey,
}

pub struct TokenApp {
    pub app: TestApp,
    pub provider: ProviderServer,
    pub keys: Keys,
    pub client_secret: String,
    pub custom_key: String,
    pub tenant_key: String,
    /// Connection names are unique per tenant.
    pub connections: std::sync::atomic::AtomicUsize,
    pub _manifests: tempfile::TempDir,
}

impl switchyard_test_support::BackendFixture for TokenApp {
    async fn start(backend: TestBackend) -> Option<Self> {
        Self::start_with(backend, &mut LeakScanner::new()).await
    }
}

impl TokenApp {
    pub async fn start_with(backend: TestBackend, leaks: &mut LeakScanner) -> Option<Self> {
        let manifests = tempfile::tempdir().unwrap();
        for (name, text) in MANIFESTS {
            std::fs::write(manifests.path().join(name), text).unwrap();
        }
        let directory = manifests.path().display().to_string();
        let app = TestApp::spawn_with(backend, |figment| {
            figment
                .merge(("outbound.allow_http", true))
                .merge(("outbound.allow_cidrs", vec!["127.0.0.1/32"]))
                .merge(("connectors.directory", directory))
        })
        .await?;
        let keys = Keys {
            app: TestKey::rsa(),
            app_next: TestKey::rsa(),
            stranger: TestKey::rsa(),
            client: TestKey::rsa(),
        };
        let client_secret = leaks.canary("client-secret");
        let custom_key = leaks.canary("custom-api-key");
        let provider = ProviderServer::start(Provider {
            app_keys: vec![keys.app.decoding(), keys.app_next.decoding()],
            client_key: Some(keys.client.decoding()),
            client_secret: client_secret.clone(),
            custom_key: custom_key.clone(),
            ..Provider::default()
        })
        .await;
        let tenant = app.create_tenant("Tokens").await;
        let (_, tenant_key) = app.create_api_key(&tenant, "write").await;
        Some(Self {
            app,
            provider,
            keys,
            client_secret,
            custom_key,
            tenant_key,
            connections: Default::default(),
            _manifests: manifests,
        })
    }

    pub async fn connect(
        &self,
        provider: &str,
        config: Value,
        credentials: Value,
        leaks: &mut LeakScanner,
    ) -> String {
        let n = self
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{provider} {n}");
        let response = self
            .app
            .post(
                "/v1/connections",
                &self.tenant_key,
                &json!({"provider": provider, "name": name, "config": config, "credentials": credentials}),
            )
            .await;
        leaks.add(format!("create {provider}"), response.body.clone());
        assert_eq!(response.status, 201, "{}", response.text());
        response.json()["id"].as_str().unwrap().to_owned()
    }

    pub async fn check(&self, id: &str, leaks: &mut LeakScanner) -> Value {
        let response = self
            .app
            .post(
                &format!("/v1/connections/{id}/test"),
                &self.tenant_key,
                &json!({}),
            )
            .await;
        leaks.add(format!("test {id}"), response.body.clone());
        assert_eq!(response.status, 200, "{}", response.text());
        response.json()
    }

    pub async fn rotate(&self, id: &str, credentials: Value, leaks: &mut LeakScanner) -> Value {
        let response = self
            .app
            .post(
                &format!("/v1/connections/{id}/credentials/rotate"),
                &self.tenant_key,
                &json!({"credentials": credentials}),
            )
            .await;
        leaks.add(format!("rotate {id}"), response.body.clone());
        assert_eq!(response.status, 200, "{}", response.text());
        response.json()
    }

    pub fn app_config(&self) -> Value {
        json!({"base_url": format!("{}/api/v3", self.provider.url), "app_id": APP_ID, "installation_id": INSTALLATION})
    }

    /// The GitHub App flow: mint, reuse, a refused key, a rotation that mints anew.
    pub async fn exercise_app(&self, leaks: &mut LeakScanner) {
        let id = self
            .connect(
                "app-jwt",
                self.app_config(),
                json!({"private_key": self.keys.app.pkcs1_pem}),
                leaks,
            )
            .await;
        let test = self.check(&id, leaks).await;
        assert_eq!(test["success"], true, "{test}");
        {
            let provider = self.provider.get();
            assert_eq!(provider.exchanges, 1);
            let presented = provider.presented.last().unwrap();
            assert!(
                provider.issued.contains(presented),
                "the check carried the installation token"
            );
        }
        // Cached: the second call exchanges nothing.
        let test = self.check(&id, leaks).await;
        assert_eq!(test["success"], true, "{test}");
        assert_eq!(self.provider.get().exchanges, 1);

        // A key the App does not know: GitHub's refusal, named in the report, rolled back.
        let refused = self
            .rotate(
                &id,
                json!({"private_key": self.keys.stranger.pkcs8_pem}),
                leaks,
            )
            .await;
        assert_eq!(refused["rotated"], false, "{refused}");
        let message = refused["test"]["error_message"].as_str().unwrap();
        assert!(
            message.contains(UNDECODABLE) && message.contains("HTTP 401"),
            "{message}"
        );
        assert_eq!(self.provider.get().exchanges, 1);

        // The App's second key: the new secret version mints its own token at the check...
        let rotated = self
            .rotate(
                &id,
                json!({"private_key": self.keys.app_next.pkcs8_pem}),
                leaks,
            )
            .await;
        assert_eq!(rotated["rotated"], true, "{rotated}");
        assert_eq!(self.provider.get().exchanges, 2);
        // ...which the connection then uses.
        let test = self.check(&id, leaks).await;
        assert_eq!(test["success"], true, "{test}");
        let provider = self.provider.get();
        assert_eq!(provider.exchanges, 2);
        let n = provider.presented.len();
        assert_eq!(provider.presented[n - 1], provider.presented[n - 2]);
        assert_ne!(provider.presented[n - 2], provider.presented[0]);
    }

    /// Client credentials with a client assertion; then with a client secret.
    pub async fn exercise_client_credentials(&self, leaks: &mut LeakScanner) {
        let base = json!({"base_url": self.provider.url});
        let id = self
            .connect(
                "cc-key",
                base.clone(),
                json!({"client_id": CLIENT_ID, "private_key": self.keys.client.pkcs8_pem, "key_id": KEY_ID}),
                leaks,
            )
            .await;
        for _ in 0..2 {
            let test = self.check(&id, leaks).await;
            assert_eq!(test["success"], true, "{test}");
        }
        assert_eq!(
            self.provider.get().oauth_grants,
            1,
            "the second check reused the token"
        );

        let id = self
            .connect(
                "cc-secret",
                base.clone(),
                json!({"client_id": CLIENT_ID, "client_secret": self.client_secret}),
                leaks,
            )
            .await;
        let test = self.check(&id, leaks).await;
        assert_eq!(test["success"], true, "{test}");
        assert_eq!(self.provider.get().oauth_grants, 2);

        // A wrong secret: the OAuth error code, and the secret nowhere.
        let wrong = leaks.canary("wrong-client-secret");
        let id = self
            .connect(
                "cc-secret",
                base,
                json!({"client_id": CLIENT_ID, "client_secret": wrong}),
                leaks,
            )
            .await;
        let test = self.check(&id, leaks).await;
        assert_eq!(test["success"], false, "{test}");
        let message = test["error_message"].as_str().unwrap();
        assert!(
            message.contains("invalid_client") && message.contains("HTTP 401"),
            "{message}"
        );
    }

    pub async fn exercise_custom_headers(&self, leaks: &mut LeakScanner) {
        let id = self
            .connect(
                "custom",
                json!({"base_url": self.provider.url, "account": "eu"}),
                json!({"api_key": self.custom_key, "account_id": "acct-9"}),
                leaks,
            )
            .await;
        let test = self.check(&id, leaks).await;
        assert_eq!(test["success"], true, "{test}");
    }
}

//! `jwt_bearer` modes through the engine. Without an exchange, the signed JWT itself is the
//! bearer token, reused until shortly before it expires, then signed anew; the provider here
//! verifies every JWT (ES256, a SEC1 key as `openssl ecparam` writes it) with the public
//! key. With an RFC 7523 assertion exchange (Google service accounts, Salesforce), the JWT
//! buys an access token from a token endpoint that verifies each assertion as they do.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value, json};
use switchyard_connectors::credentials::{HeldCredential, TokenBroker};
use switchyard_connectors::{
    CallContext, ConnectionContext, Connector, ManifestConnector, manifest,
};
use switchyard_core::{ConnectionId, TenantId};
use switchyard_http::{GuardedClient, InMemoryBackend, ManualClock, ProviderClient, SsrfPolicy};
use switchyard_test_support::standin::provider_client;

const MANIFEST: &str = r#"
id: signed
name: Self-signed JWT (test)
version: 1.0.0
base_url: "{{ config.base_url }}"
config:
  type: object
  required: [base_url, service_account, project_number]
  properties:
    base_url: { type: string }
    service_account: { type: string }
    project_number: { type: integer }
auth:
  - type: jwt_bearer
    algorithm: ES256
    claims:
      iss: "{{ config.service_account }}"
      aud: "{{ config.base_url }}/"
      project: "{{ config.project_number }}"
    lifetime: 1h
check:
  request: { path: /me }
"#;

use switchyard_test_support::keys::pem;

/// Every JWT the provider accepted, with its claims.
type Accepted = Arc<Mutex<Vec<(String, Map<String, Value>)>>>;

#[derive(Clone)]
struct Seen {
    key: Arc<DecodingKey>,
    audience: String,
    accepted: Accepted,
}

async fn me(State(seen): State<Seen>, headers: HeaderMap) -> StatusCode {
    let Some(jwt) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return StatusCode::UNAUTHORIZED;
    };
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[seen.audience.as_str()]);
    validation.set_issuer(&["sync@project.example"]);
    match jsonwebtoken::decode::<Map<String, Value>>(jwt, &seen.key, &validation) {
        Ok(data) => {
            seen.accepted
                .lock()
                .unwrap()
                .push((jwt.to_owned(), data.claims));
            StatusCode::OK
        }
        Err(_) => StatusCode::UNAUTHORIZED,
    }
}

#[tokio::test]
async fn a_self_signed_jwt_is_the_bearer_token_until_it_is_due_for_renewal() {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let private_pem = pem(
        "EC PRIVATE KEY",
        pair.private_key().as_der().unwrap().as_ref(),
    );
    let public_pem = pem("PUBLIC KEY", pair.public_key().as_der().unwrap().as_ref());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Seen {
        key: Arc::new(DecodingKey::from_ec_pem(public_pem.as_bytes()).unwrap()),
        audience: format!("{base_url}/"),
        accepted: Arc::default(),
    };
    let router = Router::new().route("/me", get(me)).with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let manifest = manifest::load(MANIFEST, "signed.yaml").unwrap();
    let connector = ManifestConnector::new(manifest.clone()).unwrap();
    let connection = ConnectionContext {
        tenant: TenantId::generate(),
        connection: ConnectionId::generate(),
        config: json!({"base_url": base_url, "service_account": "sync@project.example", "project_number": 31337}),
        base_url: None,
        auth_mode: None,
    };
    let clock = ManualClock::new();
    let policy = SsrfPolicy::strict()
        .with_allow_http(true)
        .with_allow_cidrs(["127.0.0.1/32".parse().unwrap()]);
    let client = GuardedClient::builder(policy).build().unwrap();
    let broker = Arc::new(TokenBroker::new(client).with_clock(Arc::new(clock.clone())));
    let fields = json!({"private_key": private_pem})
        .as_object()
        .cloned()
        .unwrap();
    let held = HeldCredential::new(broker, &manifest, None, &connection, fields).unwrap();
    let calls = provider_client(held);
    let cx = CallContext {
        calls: &calls,
        connection: &connection,
    };

    for _ in 0..2 {
        let report = connector.test_connection(cx).await.unwrap();
        assert!(report.success, "{report:?}");
    }
    // Kept until 5 minutes (the longest margin) before the hour is up, then signed anew.
    clock.advance(Duration::from_secs(55 * 60 - 1));
    assert!(connector.test_connection(cx).await.unwrap().success);
    clock.advance(Duration::from_secs(1));
    assert!(connector.test_connection(cx).await.unwrap().success);

    let accepted = seen.accepted.lock().unwrap();
    let jwts: Vec<&str> = accepted.iter().map(|(jwt, _)| jwt.as_str()).collect();
    assert_eq!(jwts.len(), 4);
    assert!(
        jwts[..3].iter().all(|jwt| *jwt == jwts[0]),
        "one JWT until it is due"
    );
    assert_ne!(jwts[3], jwts[0]);
    let claims = &accepted[0].1;
    // A claim that is one expression keeps its JSON type.
    assert_eq!(claims["project"], 31337);
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 3600);
}

// ---------------------------------------------------------------------------------------
// RFC 7523 assertion grants (`exchange: { style: assertion }`): Google service accounts and
// Salesforce, against a token endpoint that speaks their wire format and verifies each
// assertion the way they do.

const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
const GOOGLE_SCOPES: &str = "https://www.googleapis.com/auth/admin.directory.user.readonly https://www.googleapis.com/auth/admin.directory.group.readonly";
const SERVICE_ACCOUNT: &str = "directory-sync@acme-prod.iam.gserviceaccount.com";
const KEY_ID: &str = "3f1b9a0c5e7d2b4a6c8e0f1a3b5c7d9e1f2a4b6c";

/// Google's service-account manifest as a connector author writes it; the token URL is a
/// config value only so the test can point it at its own endpoint.
const GOOGLE: &str = r#"
id: google-directory
name: Google Workspace directory (test)
version: 1.0.0
base_url: "{{ config.base_url }}"
config:
  type: object
  required: [base_url, token_url, client_email]
  properties:
    base_url: { type: string }
    token_url: { type: string }
    client_email: { type: string }
    subject: { type: string, description: "the admin to act as (domain-wide delegation)" }
auth:
  - type: jwt_bearer
    algorithm: RS256
    claims:
      iss: "{{ config.client_email }}"
      scope: "https://www.googleapis.com/auth/admin.directory.user.readonly https://www.googleapis.com/auth/admin.directory.group.readonly"
      aud: https://oauth2.googleapis.com/token
      sub: "{{ config.subject }}"
    lifetime: 1h
    exchange: { style: assertion, url: "{{ config.token_url }}" }
check:
  request: { path: /me }
"#;

/// Salesforce's JWT-bearer flow: the consumer key issues, the integration user is the
/// subject, the login host is the audience, and the assertion lives 3 minutes. Its answer
/// has no `expires_in` (the org's session timeout applies), hence the default lifetime.
const SALESFORCE: &str = r#"
id: salesforce-jwt
name: Salesforce (test)
version: 1.0.0
base_url: "{{ config.instance_url }}"
config:
  type: object
  required: [instance_url, login_url, consumer_key, username]
  properties:
    instance_url: { type: string }
    login_url: { type: string }
    consumer_key: { type: string }
    username: { type: string }
auth:
  - type: jwt_bearer
    algorithm: RS256
    claims:
      iss: "{{ config.consumer_key }}"
      sub: "{{ config.username }}"
      aud: https://login.salesforce.com
    lifetime: 3m
    exchange:
      style: assertion
      url: "{{ config.login_url }}/services/oauth2/token"
      default_token_lifetime: 1h
check:
  request: { path: /me }
"#;

/// What the token endpoint demands of an assertion.
struct Demands {
    issuer: &'static str,
    audience: &'static str,
    scope: Option<&'static str>,
    subject: Option<&'static str>,
    key_id: Option<&'static str>,
    /// The longest `exp - iat` the provider accepts.
    max_lifetime: u64,
}

/// How the token endpoint answers an assertion it accepted, given its number (from 1).
type Answer = dyn Fn(usize) -> (StatusCode, Value) + Send + Sync;

#[derive(Clone)]
struct TokenProvider {
    key: Arc<DecodingKey>,
    demands: Arc<Demands>,
    answer: Arc<Answer>,
    /// Every assertion received, accepted or not.
    assertions: Arc<Mutex<Vec<String>>>,
    /// Claims of the accepted ones.
    accepted: Arc<Mutex<Vec<Map<String, Value>>>>,
    issued: Arc<Mutex<Vec<String>>>,
    /// The `Authorization` header of every API call.
    api_calls: Arc<Mutex<Vec<String>>>,
}

fn invalid_grant(why: &str) -> (StatusCode, axum::Json<Value>) {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": "invalid_grant", "error_description": why})),
    )
}

impl TokenProvider {
    /// Checks the grant as Google and Salesforce do: the form, the signature, `kid`, `iss`,
    /// `aud`, `scope`, `sub` and the lifetime.
    fn verify(&self, form: &HashMap<String, String>) -> Result<Map<String, Value>, String> {
        if form.get("grant_type").map(String::as_str) != Some(JWT_BEARER_GRANT) {
            return Err(format!("grant_type {:?}", form.get("grant_type")));
        }
        if let Some(extra) = form
            .keys()
            .find(|k| !matches!(k.as_str(), "grant_type" | "assertion"))
        {
            return Err(format!("unexpected form field {extra}"));
        }
        let assertion = form.get("assertion").ok_or("no assertion")?;
        let header = jsonwebtoken::decode_header(assertion).map_err(|e| e.to_string())?;
        if header.kid.as_deref() != self.demands.key_id {
            return Err(format!("kid {:?}", header.kid));
        }
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[self.demands.audience]);
        validation.set_issuer(&[self.demands.issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<Map<String, Value>>(assertion, &self.key, &validation)
            .map_err(|e| e.to_string())?
            .claims;
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        if text("scope") != self.demands.scope {
            return Err(format!("scope {:?}", claims.get("scope")));
        }
        if text("sub") != self.demands.subject {
            return Err(format!("sub {:?}", claims.get("sub")));
        }
        let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
        if lifetime > self.demands.max_lifetime {
            return Err(format!("lifetime {lifetime}"));
        }
        Ok(claims)
    }
}

async fn token(
    State(provider): State<TokenProvider>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, axum::Json<Value>) {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    if let Some(assertion) = form.get("assertion") {
        provider.assertions.lock().unwrap().push(assertion.clone());
    }
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
    if content_type != Some("application/x-www-form-urlencoded") {
        return invalid_grant("not a form");
    }
    let claims = match provider.verify(&form) {
        Ok(claims) => claims,
        Err(why) => return invalid_grant(&why),
    };
    let number = {
        let mut accepted = provider.accepted.lock().unwrap();
        accepted.push(claims);
        accepted.len()
    };
    let (status, answer) = (provider.answer)(number);
    if let Some(token) = answer.get("access_token").and_then(Value::as_str) {
        provider.issued.lock().unwrap().push(token.to_owned());
    }
    (status, axum::Json(answer))
}

/// The API: only a token the endpoint issued, as a bearer token, gets in.
async fn api(State(provider): State<TokenProvider>, headers: HeaderMap) -> StatusCode {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    provider
        .api_calls
        .lock()
        .unwrap()
        .push(authorization.clone());
    let issued = provider.issued.lock().unwrap();
    match authorization.strip_prefix("Bearer ") {
        Some(token) if issued.iter().any(|t| t == token) => StatusCode::OK,
        _ => StatusCode::UNAUTHORIZED,
    }
}

/// Google's answer to an accepted assertion.
fn google_answer(number: usize) -> (StatusCode, Value) {
    (
        StatusCode::OK,
        json!({"access_token": format!("ya29.token-{number}"), "expires_in": 3599, "token_type": "Bearer"}),
    )
}

struct RsaKey {
    private_pem: String,
    public_pem: String,
}

fn rsa_key() -> RsaKey {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    RsaKey {
        private_pem: pem("PRIVATE KEY", pair.as_der().unwrap().as_ref()),
        public_pem: pem("PUBLIC KEY", pair.public_key().as_der().unwrap().as_ref()),
    }
}

/// A running provider: the token endpoint at `/token` and the API at `/me`.
struct Running {
    url: String,
    provider: TokenProvider,
}

fn provider(public_pem: &str, demands: Demands, answer: Arc<Answer>) -> TokenProvider {
    TokenProvider {
        key: Arc::new(DecodingKey::from_rsa_pem(public_pem.as_bytes()).unwrap()),
        demands: Arc::new(demands),
        answer,
        assertions: Arc::default(),
        accepted: Arc::default(),
        issued: Arc::default(),
        api_calls: Arc::default(),
    }
}

async fn serve_provider(provider: TokenProvider) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = Router::new()
        .route("/token", post(token))
        .route("/services/oauth2/token", post(token))
        .route("/me", get(api))
        .with_state(provider.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Running { url, provider }
}

async fn serve(public_pem: &str, demands: Demands, answer: Arc<Answer>) -> Running {
    serve_provider(provider(public_pem, demands, answer)).await
}

/// One connection of `manifest` with `config` and credential `fields`, and its clock.
struct Connected {
    connector: ManifestConnector,
    connection: ConnectionContext,
    calls: ProviderClient<InMemoryBackend, HeldCredential>,
    clock: ManualClock,
}

fn connect(manifest_text: &str, config: Value, fields: Value) -> Connected {
    let manifest = manifest::load(manifest_text, "test.yaml").unwrap();
    let connector = ManifestConnector::new(manifest.clone()).unwrap();
    let connection = ConnectionContext {
        tenant: TenantId::generate(),
        connection: ConnectionId::generate(),
        config,
        base_url: None,
        auth_mode: None,
    };
    let clock = ManualClock::new();
    let policy = SsrfPolicy::strict()
        .with_allow_http(true)
        .with_allow_cidrs(["127.0.0.1/32".parse().unwrap()]);
    let client = GuardedClient::builder(policy).build().unwrap();
    let broker = Arc::new(
        TokenBroker::new(client)
            .with_clock(Arc::new(clock.clone()))
            .with_timeout(Duration::from_secs(5)),
    );
    let fields = fields.as_object().cloned().unwrap();
    let held = HeldCredential::new(broker, &manifest, None, &connection, fields).unwrap();
    Connected {
        connector,
        connection,
        calls: provider_client(held),
        clock,
    }
}

impl Connected {
    async fn check(&self) -> switchyard_connectors::CheckReport {
        let cx = CallContext {
            calls: &self.calls,
            connection: &self.connection,
        };
        self.connector.test_connection(cx).await.unwrap()
    }
}

fn google_demands(subject: Option<&'static str>) -> Demands {
    Demands {
        issuer: SERVICE_ACCOUNT,
        audience: GOOGLE_TOKEN_URL,
        scope: Some(GOOGLE_SCOPES),
        subject,
        key_id: Some(KEY_ID),
        max_lifetime: 3600,
    }
}

fn google_config(url: &str, subject: Option<&str>) -> Value {
    let mut config = json!({"base_url": url, "token_url": format!("{url}/token"), "client_email": SERVICE_ACCOUNT});
    if let Some(subject) = subject {
        config["subject"] = json!(subject);
    }
    config
}

/// The service account's JSON key as a credential: its `private_key` and `private_key_id`.
fn google_fields(key: &RsaKey) -> Value {
    json!({"private_key": key.private_pem, "key_id": KEY_ID})
}

#[tokio::test]
async fn a_google_service_account_buys_one_access_token_and_keeps_it_until_due() {
    let key = rsa_key();
    let running = serve(
        &key.public_pem,
        google_demands(None),
        Arc::new(google_answer),
    )
    .await;
    // No `subject`: the `sub` claim is left out, the service account acts as itself.
    let connected = connect(
        GOOGLE,
        google_config(&running.url, None),
        google_fields(&key),
    );

    for _ in 0..3 {
        let report = connected.check().await;
        assert!(report.success, "{report:?}");
    }
    let provider = &running.provider;
    assert_eq!(
        provider.accepted.lock().unwrap().len(),
        1,
        "one exchange for several calls"
    );
    assert_eq!(
        *provider.api_calls.lock().unwrap(),
        ["Bearer ya29.token-1"; 3],
        "the access token, not the JWT, is the bearer token"
    );
    let claims = provider.accepted.lock().unwrap()[0].clone();
    assert!(!claims.contains_key("sub"), "{claims:?}");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3600
    );

    // `expires_in: 3599` is kept until 5 minutes before it is up, then bought anew.
    connected.clock.advance(Duration::from_secs(3599 - 300 - 1));
    assert!(connected.check().await.success);
    assert_eq!(provider.accepted.lock().unwrap().len(), 1);
    connected.clock.advance(Duration::from_secs(1));
    assert!(connected.check().await.success);
    assert_eq!(provider.accepted.lock().unwrap().len(), 2);
    assert_eq!(
        provider.api_calls.lock().unwrap().last().unwrap(),
        "Bearer ya29.token-2"
    );
}

#[tokio::test]
async fn a_google_service_account_acts_as_a_user_under_domain_wide_delegation() {
    let key = rsa_key();
    let admin = "admin@acme.example";
    let running = serve(
        &key.public_pem,
        google_demands(Some(admin)),
        Arc::new(google_answer),
    )
    .await;
    let delegated = connect(
        GOOGLE,
        google_config(&running.url, Some(admin)),
        google_fields(&key),
    );
    let report = delegated.check().await;
    assert!(report.success, "{report:?}");
    assert_eq!(running.provider.accepted.lock().unwrap()[0]["sub"], admin);

    // An empty subject is no subject, which this endpoint refuses: it demands the admin.
    let undelegated = connect(
        GOOGLE,
        google_config(&running.url, Some("")),
        google_fields(&key),
    );
    let report = undelegated.check().await;
    assert_eq!(
        report.error_code.as_deref(),
        Some("auth_failed"),
        "{report:?}"
    );
    let assertions = running.provider.assertions.lock().unwrap();
    let last = assertions.last().unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(last.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(claims.get("sub").is_none(), "{claims}");
}

#[tokio::test]
async fn a_refused_assertion_is_an_auth_failure_that_shows_no_jwt() {
    let key = rsa_key();
    let other = rsa_key();
    // The endpoint knows another public key: Google answers `invalid_grant` ("Invalid JWT
    // Signature.").
    let running = serve(
        &other.public_pem,
        google_demands(None),
        Arc::new(google_answer),
    )
    .await;
    let connected = connect(
        GOOGLE,
        google_config(&running.url, None),
        google_fields(&key),
    );
    let report = connected.check().await;
    assert!(!report.success);
    assert_eq!(
        report.error_code.as_deref(),
        Some("auth_failed"),
        "{report:?}"
    );
    let message = report.error_message.unwrap();
    assert!(
        message.contains("invalid_grant") && message.contains("HTTP 400"),
        "{message}"
    );
    let assertions = running.provider.assertions.lock().unwrap().clone();
    assert_eq!(assertions.len(), 1);
    assert!(!message.contains(&assertions[0]), "{message}");
    assert!(
        running.provider.api_calls.lock().unwrap().is_empty(),
        "the API is never called without a token"
    );

    // A refusal is not cached: the next call asks again.
    assert!(!connected.check().await.success);
    assert_eq!(running.provider.assertions.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn an_endpoint_echoing_the_assertion_gets_no_word_and_5xx_is_transient() {
    let key = rsa_key();
    // An endpoint whose error code is the assertion it was sent.
    let mut echoing = provider(
        &key.public_pem,
        google_demands(None),
        Arc::new(google_answer),
    );
    let sent = Arc::clone(&echoing.assertions);
    echoing.answer = Arc::new(move |_| {
        let assertion = sent.lock().unwrap().last().cloned().unwrap_or_default();
        (StatusCode::BAD_REQUEST, json!({"error": assertion}))
    });
    let running = serve_provider(echoing).await;
    let connected = connect(
        GOOGLE,
        google_config(&running.url, None),
        google_fields(&key),
    );
    let report = connected.check().await;
    assert_eq!(
        report.error_code.as_deref(),
        Some("auth_failed"),
        "{report:?}"
    );
    let message = report.error_message.unwrap();
    let assertion = running.provider.assertions.lock().unwrap()[0].clone();
    assert!(!message.contains(&assertion), "{message}");
    assert!(message.contains("no reason given"), "{message}");

    let unavailable: Arc<Answer> = Arc::new(|_| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "backendError"}),
        )
    });
    let running = serve(&key.public_pem, google_demands(None), unavailable).await;
    let connected = connect(
        GOOGLE,
        google_config(&running.url, None),
        google_fields(&key),
    );
    let report = connected.check().await;
    assert_eq!(
        report.error_code.as_deref(),
        Some("credential_unavailable"),
        "{report:?}"
    );
}

#[tokio::test]
async fn a_salesforce_integration_user_logs_in_with_a_three_minute_assertion() {
    let key = rsa_key();
    let answer: Arc<Answer> = Arc::new(|number| {
        (
            StatusCode::OK,
            json!({
                "access_token": format!("00Dxx0000001gEF!session-{number}"),
                "scope": "api",
                "instance_url": "https://acme.my.salesforce.com",
                "id": "https://login.salesforce.com/id/00Dxx0000001gEFEAY/005xx000001Sv6AAAS",
                "token_type": "Bearer"
            }),
        )
    });
    let demands = Demands {
        issuer: "3MVG9PE4g.consumer-key",
        audience: "https://login.salesforce.com",
        scope: None,
        subject: Some("integration@acme.example"),
        key_id: None,
        max_lifetime: 180,
    };
    let running = serve(&key.public_pem, demands, answer).await;
    let connected = connect(
        SALESFORCE,
        json!({
            "instance_url": running.url,
            "login_url": running.url,
            "consumer_key": "3MVG9PE4g.consumer-key",
            "username": "integration@acme.example",
        }),
        json!({"private_key": key.private_pem}),
    );
    for _ in 0..2 {
        let report = connected.check().await;
        assert!(report.success, "{report:?}");
    }
    let provider = &running.provider;
    // No `expires_in`: `default_token_lifetime` (1 h) keeps the session token.
    assert_eq!(provider.accepted.lock().unwrap().len(), 1);
    assert_eq!(
        *provider.api_calls.lock().unwrap(),
        ["Bearer 00Dxx0000001gEF!session-1"; 2]
    );
    connected.clock.advance(Duration::from_secs(55 * 60));
    assert!(connected.check().await.success);
    assert_eq!(provider.accepted.lock().unwrap().len(), 2);
    let claims = provider.accepted.lock().unwrap()[0].clone();
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        180
    );
    assert!(!claims.contains_key("scope"));
}

#[test]
fn assertion_exchanges_refuse_what_they_would_ignore() {
    let with_exchange = |exchange: &str, claims: &str| {
        GOOGLE
            .replace(
                r#"exchange: { style: assertion, url: "{{ config.token_url }}" }"#,
                exchange,
            )
            .replace("      aud: https://oauth2.googleapis.com/token\n", claims)
    };
    let aud = "      aud: https://oauth2.googleapis.com/token\n";
    let refused = |exchange: &str, claims: &str| {
        manifest::load(&with_exchange(exchange, claims), "test.yaml")
            .unwrap_err()
            .to_string()
    };
    let cases = [
        (
            "exchange: { style: assertion, url: /token, token_path: $.token }",
            aud,
            "`token_path` does not apply",
        ),
        (
            "exchange: { style: assertion, url: /token, expires_at_path: $.expires }",
            aud,
            "`expires_at_path` does not apply",
        ),
        (
            "exchange: { style: assertion, url: /token, method: GET }",
            aud,
            "always POSTed",
        ),
        ("exchange: { url: /token }", aud, "needs `token_path`"),
        (
            "exchange: { style: jwt, url: /token }",
            aud,
            "unknown variant `jwt`",
        ),
        (
            "exchange: { style: assertion, url: /token }",
            "",
            "needs an `aud` claim",
        ),
    ];
    for (exchange, claims, expected) in cases {
        let error = refused(exchange, claims);
        assert!(error.contains(expected), "{exchange}: {error}");
    }
    // The accepted spellings.
    for exchange in [
        "exchange: { style: assertion, url: /token, method: post, default_token_lifetime: 1h }",
        "exchange: { style: bearer, url: /token, token_path: $.token }",
        "exchange: { url: /token, token_path: $.token, method: PUT }",
    ] {
        manifest::load(&with_exchange(exchange, aud), "test.yaml")
            .unwrap_or_else(|e| panic!("{exchange}: {e}"));
    }
}

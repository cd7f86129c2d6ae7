//! Canary for OAuth connect flows: the client secret, a `private_key_jwt` client's private
//! key, the authorization code, the PKCE verifier, the access, refresh and ID tokens, and API
//! keys typed into the connect form never appear in logs (every thread's, at TRACE), API responses or the database. The
//! session token and the `state` are capabilities: they are stored only as hashes and never
//! logged. Its own binary, so its subscriber is the global one and sees every log line.
//!
//! The authorization server is reached through a recording proxy (the session's `issuer`
//! setting points at it), so the test sees every code, verifier and token that crossed the
//! wire, not only the ones Switchyard chose to show.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "it/oauth/fixture.rs"]
#[allow(dead_code)]
mod fixture;
#[path = "it/token_auth/fixture.rs"]
#[allow(dead_code)]
mod token_fixture;

use std::collections::BTreeMap;
use std::sync::PoisonError;

use reqwest::Method;
use serde_json::{Value, json};
use switchyard_test_support::leaks::CapturedLogs;
use switchyard_test_support::oauth_server::OAuthClientSpec;
use switchyard_test_support::{LeakScanner, TestBackend};

use fixture::{API_KEY, CLIENT_SECRET, OAuthApp, query};

// ---------------------------------------------------------------------------------------
// A recording proxy in front of the authorization server

mod proxy {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex, PoisonError};

    use axum::Router;
    use axum::body::Body;
    use axum::extract::{Request, State};
    use axum::http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
    use axum::response::Response;
    use serde_json::Value;

    /// One token endpoint exchange: the form Switchyard sent and the JSON it got back.
    #[derive(Clone, Debug)]
    pub struct TokenExchange {
        pub form: BTreeMap<String, String>,
        pub answer: Value,
    }

    #[derive(Clone)]
    struct Forwarder {
        upstream: String,
        http: reqwest::Client,
        exchanges: Arc<Mutex<Vec<TokenExchange>>>,
    }

    /// Forwards everything to the authorization server and records `/token` exchanges.
    pub struct RecordingProxy {
        pub url: String,
        exchanges: Arc<Mutex<Vec<TokenExchange>>>,
    }

    impl RecordingProxy {
        pub async fn start(upstream: &str) -> Self {
            let exchanges = Arc::new(Mutex::new(Vec::new()));
            let forwarder = Forwarder {
                upstream: upstream.trim_end_matches('/').to_owned(),
                http: reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap(),
                exchanges: Arc::clone(&exchanges),
            };
            let router = Router::new().fallback(forward).with_state(forwarder);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
            Self { url, exchanges }
        }

        pub fn exchanges(&self) -> Vec<TokenExchange> {
            self.exchanges
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        }
    }

    async fn forward(State(forwarder): State<Forwarder>, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        let target = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let mut upstream = forwarder
            .http
            .request(parts.method, format!("{}{target}", forwarder.upstream));
        for (name, value) in &parts.headers {
            if name != HOST && name != CONTENT_LENGTH {
                upstream = upstream.header(name, value);
            }
        }
        let answer = upstream.body(body.clone()).send().await.unwrap();
        let status = answer.status();
        let headers = answer.headers().clone();
        let answer_body = answer.bytes().await.unwrap();
        if parts.uri.path() == "/token" {
            let exchange = TokenExchange {
                form: url::form_urlencoded::parse(&body).into_owned().collect(),
                answer: serde_json::from_slice(&answer_body).unwrap_or(Value::Null),
            };
            forwarder
                .exchanges
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(exchange);
        }
        let mut response = Response::new(Body::from(answer_body));
        *response.status_mut() = status;
        for (name, value) in &headers {
            if name != CONTENT_LENGTH && name != TRANSFER_ENCODING && name != CONNECTION {
                response.headers_mut().insert(name, value.clone());
            }
        }
        response
    }
}

use proxy::RecordingProxy;

// ---------------------------------------------------------------------------------------
// What is looked for, and where

/// Two scans over the same places. Credentials must be nowhere. The session token and the
/// `state` legitimately travel in URLs, pages and the session's creation answer, so they are
/// looked for only in logs, the database and the JSON API answers that never carry them.
#[derive(Default)]
struct Canaries {
    credentials: LeakScanner,
    capabilities: LeakScanner,
    /// The capabilities' values, to show where in the logs one leaked.
    capability_values: Vec<(String, String)>,
}

impl Canaries {
    fn watch_capability(&mut self, label: &str, value: &str) {
        self.capabilities.watch(label, value);
        self.capability_values
            .push((label.to_owned(), value.to_owned()));
    }

    /// The first log line holding each leaked capability, the value masked.
    fn leaked_log_lines(&self, logs: &str) -> Vec<String> {
        self.capability_values
            .iter()
            .filter_map(|(label, value)| {
                let line = logs.lines().find(|line| line.contains(value.as_str()))?;
                Some(line.replace(value.as_str(), &format!("<{label}>")))
            })
            .collect()
    }

    /// An API answer (or log, or table) where nothing secret belongs.
    fn add_anywhere(&mut self, place: &str, bytes: &[u8]) {
        self.credentials.add(place, bytes.to_vec());
        self.capabilities.add(place, bytes.to_vec());
    }

    /// A connect page or URL: it holds the session token by design, credentials never.
    fn add_page(&mut self, place: &str, bytes: &[u8]) {
        self.credentials.add(place, bytes.to_vec());
    }

    async fn add_response(&mut self, fx: &OAuthApp, place: &str, path: &str) -> Value {
        let response = fx.app.get(path, &fx.key).await;
        assert_eq!(response.status, 200, "GET {path}: {}", response.text());
        self.add_anywhere(&format!("{place}: GET {path}"), &response.body);
        response.json()
    }
}

// ---------------------------------------------------------------------------------------
// The flows

/// The client the authorization server verifies `private_key_jwt` assertions of.
const KEY_CLIENT_ID: &str = "key-client";
const KEY_ID: &str = "key-2026";

/// A fresh RSA key and its public JWK set, for the `private_key_jwt` client.
fn key_client() -> (token_fixture::TestKey, OAuthClientSpec) {
    use jsonwebtoken::{Algorithm, EncodingKey, jwk::Jwk};
    let key = token_fixture::TestKey::rsa();
    let encoding = EncodingKey::from_rsa_pem(key.pkcs8_pem.as_bytes()).unwrap();
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some(KEY_ID.into());
    let jwks = json!({"keys": [serde_json::to_value(&jwk).unwrap()]});
    (key, OAuthClientSpec::private_key_jwt(KEY_CLIENT_ID, jwks))
}

/// A 64-character line from the middle of a PEM body: found even if the armour is not.
fn body_line(pem: &str) -> &str {
    pem.lines().nth(5).unwrap()
}

/// Starts an OAuth flow for `provider`: the provider URL and the binding cookie.
async fn start_flow(fx: &OAuthApp, connect_url: &str, provider: &str) -> (String, String) {
    let response = fx
        .client
        .get(format!("{connect_url}/oauth/{provider}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "{:?}", response.text().await);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    (location, cookie.split(';').next().unwrap().to_owned())
}

/// Runs one OAuth connect flow for `provider` in a new session, with the authorization
/// server at `issuer` (the proxy, or the server itself); returns the connection's id.
async fn oauth_flow(
    fx: &OAuthApp,
    issuer: &str,
    canaries: &mut Canaries,
    (place, provider): (&str, &str),
    extra: Value,
) -> String {
    let mut body = json!({
        "allowed_providers": [provider],
        "config": {provider: {"base_url": fx.api.url, "issuer": issuer}},
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let (session_id, connect_url) = fx.session(&fx.key, body).await;
    let token = connect_url.rsplit('/').next().unwrap();
    canaries.watch_capability("session token", token);

    let page = fx.client.get(&connect_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    canaries.add_page(
        &format!("{place}: connect page"),
        &page.bytes().await.unwrap(),
    );

    let (location, cookie) = start_flow(fx, &connect_url, provider).await;
    assert!(location.starts_with(issuer), "{location}");
    canaries.watch_capability("state", &query(&location)["state"]);
    let callback = fx.authorize(&location).await;
    canaries
        .credentials
        .watch("authorization code", &query(&callback)["code"]);
    let response = fx.callback(&callback, Some(&cookie)).await;
    assert_eq!(response.status(), 303, "{:?}", response.text().await);
    let back = response.headers()["location"].to_str().unwrap().to_owned();
    canaries.add_anywhere(&format!("{place}: redirect to the app"), back.as_bytes());
    let result = query(&back);
    assert_eq!(result["status"], "completed", "{provider}: {back}");

    // A replayed callback is refused; its error carries neither the code nor the state.
    let replay = fx.callback(&callback, Some(&cookie)).await;
    assert_eq!(replay.status(), 400);
    canaries.add_anywhere(
        &format!("{place}: replayed callback"),
        &replay.bytes().await.unwrap(),
    );
    canaries
        .add_response(fx, place, &format!("/v1/connect-sessions/{session_id}"))
        .await;
    result["connection_id"].clone()
}

/// Connects with the API-key form: a wrong key first, then the right one.
async fn api_key_flow(fx: &OAuthApp, canaries: &mut Canaries, place: &str) {
    let (session_id, connect_url) = fx.session(&fx.key, json!({"redirect_url": null})).await;
    let token = connect_url.rsplit('/').next().unwrap();
    canaries.watch_capability("session token", token);
    let form_url = format!("{connect_url}/credentials/apikey-demo");
    let wrong = canaries.credentials.canary("rejected-api-key");
    let base_url = fx.api.url.as_str();
    for (key, status) in [(wrong.as_str(), 422), (API_KEY, 200)] {
        let response = fx
            .post_form(
                &form_url,
                &[("config.base_url", base_url), ("credentials.api_key", key)],
            )
            .await;
        assert_eq!(response.status(), status);
        canaries.add_page(
            &format!("{place}: form answer ({status})"),
            &response.bytes().await.unwrap(),
        );
    }
    let session = canaries
        .add_response(fx, place, &format!("/v1/connect-sessions/{session_id}"))
        .await;
    assert_eq!(session["status"], "completed", "{session}");
}

/// Tests the connection; returns the report (or problem) as JSON.
async fn test_connection(fx: &OAuthApp, canaries: &mut Canaries, place: &str, id: &str) -> Value {
    let path = format!("/v1/connections/{id}/test");
    let response = fx.app.post(&path, &fx.key, &json!({})).await;
    canaries.add_anywhere(&format!("{place}: POST {path}"), &response.body);
    response.json()
}

/// Every flow on one backend, its answers and its database added to `canaries`. `false`
/// when the backend (or the authorization server) is not configured here.
async fn exercise(backend: TestBackend, canaries: &mut Canaries) -> bool {
    let (key, key_client) = key_client();
    let Some(fx) = OAuthApp::start_with_clients(backend, vec![key_client], |figment| figment).await
    else {
        return false;
    };
    canaries
        .credentials
        .watch("private key (PKCS#8 line)", body_line(&key.pkcs8_pem));
    let place = format!("{backend:?}");
    let place = place.as_str();
    let proxy = RecordingProxy::start(fx.server.issuer()).await;
    canaries.credentials.watch("Switchyard API key", &fx.key);

    let clients = canaries.add_response(&fx, place, "/v1/oauth-clients").await;
    let client_id = clients["data"][0]["id"].as_str().unwrap().to_owned();
    let client_path = format!("/v1/oauth-clients/{client_id}");
    canaries.add_response(&fx, place, &client_path).await;

    // Tokens due at once (200 s is inside the refresh margin): the check right after
    // connecting refreshes, and so does every use.
    fx.server.set_expires_in(Some(200)).await;
    let demo = (place, "oauth-demo");
    let connection = oauth_flow(&fx, &proxy.url, canaries, demo, json!({})).await;
    // A refresh that meets a 503 first and is retried.
    fx.server.fail_next(503, 1).await;
    let report = test_connection(&fx, canaries, place, &connection).await;
    assert_eq!(report["success"], true, "{report}");
    // Revoked refresh tokens: the connection needs a person again…
    fx.server.revoke_refresh_tokens().await;
    let report = test_connection(&fx, canaries, place, &connection).await;
    assert_eq!(report["error_code"], "auth_failed", "{report}");
    let refused = test_connection(&fx, canaries, place, &connection).await;
    assert_eq!(refused["code"], "reauthorization_required", "{refused}");
    // …and a session repairs it in place.
    fx.server.set_expires_in(Some(3600)).await;
    let repair = json!({"connection_id": connection});
    let repaired = oauth_flow(&fx, &proxy.url, canaries, demo, repair).await;
    assert_eq!(repaired, connection);
    let report = test_connection(&fx, canaries, place, &connection).await;
    assert_eq!(report["success"], true, "{report}");

    api_key_flow(&fx, canaries, place).await;
    let seen_through_proxy = watch_exchanges(&fx, &proxy, canaries);

    // A client that authenticates with a private key: the code exchange and the refresh the
    // check needs each send a signed client assertion. Its audience is the server's own token
    // URL, so this flow cannot go through the proxy: its access tokens are taken from what
    // the provider API accepted.
    let registered = fx
        .app
        .post(
            "/v1/oauth-clients",
            &fx.key,
            &json!({"provider": "oauth-key", "client_id": KEY_CLIENT_ID, "private_key": key.pkcs8_pem, "key_id": KEY_ID}),
        )
        .await;
    assert_eq!(registered.status, 201, "{}", registered.text());
    canaries.add_anywhere(
        &format!("{place}: POST /v1/oauth-clients"),
        &registered.body,
    );
    fx.server.set_expires_in(Some(200)).await;
    let keyed = (place, "oauth-key");
    let issuer = fx.server.issuer().to_owned();
    let key_connection = oauth_flow(&fx, &issuer, canaries, keyed, json!({})).await;
    fx.server.set_expires_in(Some(3600)).await;
    let report = test_connection(&fx, canaries, place, &key_connection).await;
    assert_eq!(report["success"], true, "{report}");
    assert_eq!(fx.stat("/client_auth/private_key_jwt").await, 3);
    let key_tokens = accepted_tokens(&fx).split_off(seen_through_proxy);
    assert!(
        key_tokens.len() >= 2,
        "{} key client tokens",
        key_tokens.len()
    );
    for token in &key_tokens {
        canaries
            .credentials
            .watch("access token (key client)", token);
    }

    // A new client secret replaces the old one; neither comes back.
    let rotated = canaries.credentials.canary("rotated-client-secret");
    let patched = fx
        .app
        .send(
            Method::PATCH,
            &client_path,
            Some(&fx.key),
            Some(&json!({"client_secret": rotated})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text());
    canaries.add_anywhere(&format!("{place}: PATCH {client_path}"), &patched.body);
    canaries.add_response(&fx, place, &client_path).await;

    // Everything the tenant can read back.
    assert!(fx.audited("connection.reauthorization_required", 1).await >= 1);
    assert!(fx.audited("oauth_token.refresh", 2).await >= 2);
    canaries
        .add_response(&fx, place, "/v1/audit-events?limit=200")
        .await;
    let sessions = canaries
        .add_response(&fx, place, "/v1/connect-sessions")
        .await;
    assert_eq!(sessions["data"].as_array().unwrap().len(), 4, "{sessions}");
    let connections = canaries.add_response(&fx, place, "/v1/connections").await;
    for connection in connections["data"].as_array().unwrap() {
        let id = connection["id"].as_str().unwrap();
        canaries
            .add_response(&fx, place, &format!("/v1/connections/{id}"))
            .await;
    }

    canaries.add_database(&fx, place).await;
    true
}

/// Access tokens the provider API accepted, in order.
fn accepted_tokens(fx: &OAuthApp) -> Vec<String> {
    fx.api
        .seen
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .accepted
        .clone()
}

/// Registers every code, verifier and token the proxy saw cross the wire, and checks that
/// it saw them all: each access token the provider API accepted was one of them. Returns how
/// many the API accepted.
fn watch_exchanges(fx: &OAuthApp, proxy: &RecordingProxy, canaries: &mut Canaries) -> usize {
    let exchanges = proxy.exchanges();
    let grants = |grant: &str| {
        exchanges
            .iter()
            .filter(|e| e.form.get("grant_type").is_some_and(|g| g == grant))
            .count()
    };
    // Two connects; refreshes that worked (one after a 503), one refused.
    assert_eq!(grants("authorization_code"), 2, "{exchanges:#?}");
    assert!(grants("refresh_token") >= 4, "{exchanges:#?}");
    let mut access_tokens = Vec::new();
    for exchange in &exchanges {
        for (field, label) in [
            ("code", "authorization code (sent)"),
            ("code_verifier", "PKCE verifier"),
            ("refresh_token", "refresh token (sent)"),
        ] {
            if let Some(value) = exchange.form.get(field) {
                canaries.credentials.watch(label, value);
            }
        }
        for (field, label) in [
            ("access_token", "access token"),
            ("refresh_token", "refresh token"),
            ("id_token", "ID token"),
        ] {
            if let Some(value) = exchange.answer[field].as_str() {
                canaries.credentials.watch(label, value);
                if field == "access_token" {
                    access_tokens.push(value.to_owned());
                }
                if field == "id_token" || field == "access_token" {
                    // A JWT's signature alone is secret enough to look for.
                    let signature = value.rsplit('.').next().unwrap();
                    canaries
                        .credentials
                        .watch(&format!("{label} signature"), signature);
                }
            }
        }
    }
    let accepted = accepted_tokens(fx);
    assert!(accepted.len() >= 3, "the provider API was called");
    for token in &accepted {
        assert!(
            access_tokens.contains(token),
            "the proxy saw every issued access token"
        );
    }
    accepted.len()
}

impl Canaries {
    /// Every table, for both scans.
    async fn add_database(&mut self, fx: &OAuthApp, place: &str) {
        let before = self.credentials.haystack_count();
        self.credentials.add_database(fx.app.database()).await;
        self.capabilities.add_database(fx.app.database()).await;
        let tables = self.credentials.haystack_count() - before;
        assert!(tables > 10, "{place}: only {tables} tables dumped");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_secrets_and_capabilities_never_leak() {
    let captured = CapturedLogs::install_global();

    let mut canaries = Canaries::default();
    canaries.credentials.watch("client secret", CLIENT_SECRET);
    canaries.credentials.watch("API key", API_KEY);
    let mut backends = Vec::new();
    for backend in [TestBackend::Sqlite, TestBackend::Postgres] {
        if exercise(backend, &mut canaries).await {
            backends.push(backend);
        }
    }
    if backends.is_empty() {
        return; // The authorization server is not configured here (skipped with a note).
    }

    let logs = captured.bytes();
    let text = String::from_utf8_lossy(&logs);
    assert!(
        text.contains("/oauth/callback")
            && text.contains("token endpoint failed; retrying")
            && text.contains("refresh token refused"),
        "the flows, the retried refresh and the refused one were logged ({} bytes)",
        text.len()
    );
    canaries.add_anywhere("logs", &logs);
    let mut report: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for leak in canaries
        .credentials
        .leaks()
        .into_iter()
        .chain(canaries.capabilities.leaks())
    {
        report
            .entry(format!("{} ({})", leak.secret, leak.encoding))
            .or_default()
            .push(leak.place);
    }
    assert!(
        report.is_empty(),
        "secrets leaked on {backends:?}:\n{report:#?}\nin log lines such as:\n{}",
        canaries.leaked_log_lines(&text).join("\n")
    );
}

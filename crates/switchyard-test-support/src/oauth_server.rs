//! A real OAuth 2.0 authorization server for tests: `scripts/peers/oauth-server.mjs`, which
//! wraps npm `oauth2-mock-server` with client authentication, single-use codes with S256 PKCE,
//! rotating refresh tokens, counters and injected faults.
//!
//! Needs `SWITCHYARD_TEST_PEERS_NODE_MODULES` (see `scripts/peers/webhook-libs.sh env`).
//! Unset locally, [`AuthorizationServer::start`] returns `None` (skip); unset in CI it panics.

use std::fmt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::required_test_server;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../scripts/peers/oauth-server.mjs"
);
const NODE_MODULES_VARIABLE: &str = "SWITCHYARD_TEST_PEERS_NODE_MODULES";
/// Node loads the mock and generates an RSA key before it prints its address.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A client the authorization server knows. No secret and no keys: a public client.
#[derive(Clone, Serialize)]
pub struct OAuthClientSpec {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// A JWK set (`{"keys": [public JWK]}`) to verify `private_key_jwt` assertions with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
}

impl OAuthClientSpec {
    /// Authenticates with `client_secret_basic` or `client_secret_post`.
    pub fn confidential(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: Some(client_secret.into()),
            jwks: None,
        }
    }

    /// Authenticates with `private_key_jwt`, signed by a key in `jwks`.
    pub fn private_key_jwt(client_id: impl Into<String>, jwks: Value) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: None,
            jwks: Some(jwks),
        }
    }

    /// Identifies itself by `client_id` only (token endpoint auth method `none`).
    pub fn public(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: None,
            jwks: None,
        }
    }
}

// The secret stays out of test output, like every secret in this project.
impl fmt::Debug for OAuthClientSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClientSpec")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("jwks", &self.jwks)
            .finish()
    }
}

/// The running server. Dropping it kills the node process.
pub struct AuthorizationServer {
    issuer: String,
    discovery: Value,
    http: reqwest::Client,
    _child: Child,
}

impl fmt::Debug for AuthorizationServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationServer")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl AuthorizationServer {
    /// Starts a server that knows `clients`. `None` when `SWITCHYARD_TEST_PEERS_NODE_MODULES`
    /// is unset outside CI (the test skips); panics in CI or when the server does not start.
    pub async fn start(clients: Vec<OAuthClientSpec>) -> Option<Self> {
        let node_modules = required_test_server(NODE_MODULES_VARIABLE)?;
        let clients = serde_json::to_string(&clients).expect("client specs serialize");
        let mut child = Command::new("node")
            .arg(SCRIPT)
            .arg(&clients)
            .current_dir(Path::new(&node_modules).parent().unwrap_or(Path::new(".")))
            .env(NODE_MODULES_VARIABLE, &node_modules)
            // The server exits when its stdin closes: the pipe dies with this process.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start node scripts/peers/oauth-server.mjs (is node installed?)");
        let stdout = child.stdout.take().expect("piped stdout");
        let first_line = tokio::time::timeout(STARTUP_TIMEOUT, async {
            BufReader::new(stdout).lines().next_line().await
        })
        .await
        .expect("oauth-server.mjs printed no address within 30 s")
        .expect("read oauth-server.mjs stdout")
        .expect("oauth-server.mjs exited before printing its address (see stderr)");
        let announced: Value =
            serde_json::from_str(&first_line).expect("oauth-server.mjs prints one JSON line");
        let issuer = announced["issuer"]
            .as_str()
            .expect("the announcement names the issuer")
            .to_owned();
        let http = reqwest::Client::new();
        let discovery = http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("discovery document")
            .json()
            .await
            .expect("discovery is JSON");
        Some(Self {
            issuer,
            discovery,
            http,
            _child: child,
        })
    }

    /// The issuer, which is also the server's base URL (`http://127.0.0.1:PORT`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The discovery document (`/.well-known/openid-configuration`).
    pub fn discovery(&self) -> &Value {
        &self.discovery
    }

    pub fn authorization_url(&self) -> String {
        self.endpoint("authorization_endpoint")
    }

    pub fn token_url(&self) -> String {
        self.endpoint("token_endpoint")
    }

    pub fn jwks_url(&self) -> String {
        self.endpoint("jwks_uri")
    }

    fn endpoint(&self, name: &str) -> String {
        self.discovery[name]
            .as_str()
            .unwrap_or_else(|| panic!("discovery has no {name}"))
            .to_owned()
    }

    /// Counters: `{"token_requests": {"authorization_code": n, "refresh_token": n,
    /// "client_credentials": n}, "client_auth": {"client_secret_basic": n,
    /// "client_secret_post": n, "private_key_jwt": n, "none": n}, "invalid_grant": n,
    /// "invalid_client": n, "faults_served": n, "authorizations": n, "revocations": n}`.
    /// `token_requests` counts every request the token endpoint received, faulted ones too.
    pub async fn stats(&self) -> Value {
        self.admin(reqwest::Method::GET, "stats", None).await
    }

    /// Every token request so far, in order: `[{"grant_type", "client_id", "client_auth",
    /// "status", "error"}]`. `client_auth` is the method the request tried
    /// (`client_secret_basic`, `client_secret_post`, `private_key_jwt`, `none`), `client_id`
    /// is set once authentication passed, `status` once the answer was sent.
    pub async fn token_requests(&self) -> Vec<Value> {
        let log = self
            .admin(reqwest::Method::GET, "token_requests", None)
            .await;
        serde_json::from_value(log).expect("the request log is a JSON list")
    }

    /// Revokes every refresh token issued so far: using one then gets `invalid_grant`.
    pub async fn revoke_refresh_tokens(&self) {
        self.admin(reqwest::Method::POST, "revoke", Some(json!({})))
            .await;
    }

    /// The next `count` token requests answer `status` with
    /// `{"error": "temporarily_unavailable"}`, consuming no code and no refresh token.
    pub async fn fail_next(&self, status: u16, count: u32) {
        let body = json!({"status": status, "count": count});
        self.admin(reqwest::Method::POST, "faults", Some(body))
            .await;
    }

    /// The next `count` token requests wait `delay` before they are handled.
    pub async fn delay_next(&self, delay: Duration, count: u32) {
        let body = json!({"delay_ms": millis(delay), "count": count});
        self.admin(reqwest::Method::POST, "faults", Some(body))
            .await;
    }

    /// Every token request waits `delay` (zero turns it off): widens race windows.
    pub async fn delay_every_token_request(&self, delay: Duration) {
        let body = json!({"delay_ms": millis(delay)});
        self.admin(reqwest::Method::POST, "delay_token", Some(body))
            .await;
    }

    /// `expires_in` of later token answers (and the access token's `exp`); `None` leaves
    /// `expires_in` out of the answers. The default is 3600.
    pub async fn set_expires_in(&self, seconds: Option<u64>) {
        let body = json!({"expires_in": seconds});
        self.admin(reqwest::Method::POST, "config", Some(body))
            .await;
    }

    /// With `Some(error)`, the authorization endpoint redirects back with `error=…&state=…`
    /// instead of a code; `None` restores approval.
    pub async fn set_authorize_error(&self, error: Option<&str>) {
        let body = json!({"authorize_error": error});
        self.admin(reqwest::Method::POST, "config", Some(body))
            .await;
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}/__admin/{path}", self.issuer));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|error| panic!("oauth server admin {path}: {error}"));
        let status = response.status();
        let answer: Value = response
            .json()
            .await
            .unwrap_or_else(|error| panic!("oauth server admin {path} answered no JSON: {error}"));
        assert!(
            status.is_success(),
            "oauth server admin {path}: {status} {answer}"
        );
        answer
    }
}

fn millis(delay: Duration) -> u64 {
    u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)
}

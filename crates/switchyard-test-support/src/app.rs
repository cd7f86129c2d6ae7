//! The real Switchyard server on a random port, with a fresh database, for end-to-end tests.

use std::{net::SocketAddr, sync::Once};

use figment::Figment;
use reqwest::{Method, header::HeaderMap};
use serde_json::Value;
use switchyard_config::{Config, ConfigLoader};
use switchyard_server::App;
use tokio_util::sync::CancellationToken;

use crate::{BackendFixture, TestBackend, TestDatabase};

/// The admin token every test app is configured with.
pub const TEST_ADMIN_TOKEN: &str = "sya_test-admin-token-0123456789abcdefghijkl";

/// A running server. Dropping it stops the server; [`TestApp::stop`] waits for it.
pub struct TestApp {
    pub address: SocketAddr,
    pub base_url: String,
    pub admin_token: String,
    pub client: reqwest::Client,
    /// The configuration the server runs with.
    pub config: Config,
    /// The server's connection health recorder: tests feed it attempts and flush it, as the
    /// provider stack and the flush task would.
    pub health: switchyard_health::HealthRecorder,
    database: Option<TestDatabase>,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct TestResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    /// The body as JSON; panics with the body text when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "body is not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts a problem response with this status and code, and returns its body.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.text()
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "problem content type"
        );
        let body = self.json();
        assert_eq!(body["code"], code, "unexpected code in {body}");
        assert_eq!(body["status"], status);
        assert!(body["title"].is_string());
        assert_eq!(body["type"], format!("urn:switchyard:error:{code}"));
        assert!(
            body["request_id"].is_string(),
            "problem without request id: {body}"
        );
        body
    }
}

impl TestApp {
    /// Starts the server on `backend` with the default test configuration.
    pub async fn spawn(backend: TestBackend) -> Option<Self> {
        Self::spawn_with(backend, |figment| figment).await
    }

    /// Starts the server with configuration changes applied over the test defaults.
    pub async fn spawn_with(
        backend: TestBackend,
        configure: impl FnOnce(Figment) -> Figment,
    ) -> Option<Self> {
        init_test_logging();
        let database = TestDatabase::create(backend).await?;
        let config = configure(test_figment(&database))
            .extract::<Config>()
            .expect("test configuration");
        config.validate().expect("valid test configuration");
        Some(Self::start(config, database).await)
    }

    /// Starts the server with exactly this configuration.
    pub async fn start(config: Config, database: TestDatabase) -> Self {
        let app = match App::build(&config).await {
            Ok(app) => app,
            Err(error) => panic!("server does not start: {}", error_chain(&error)),
        };
        let address = app.local_addr().expect("bound address");
        let health = app.health();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        Self {
            address,
            base_url: format!("http://{address}"),
            admin_token: config
                .admin_token
                .as_ref()
                .map(|t| secrecy::ExposeSecret::expose_secret(t).to_owned())
                .unwrap_or_default(),
            client: reqwest::Client::new(),
            config,
            health,
            database: Some(database),
            shutdown,
            server: Some(server),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> TestResponse {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        read(request.send().await.expect("request sent")).await
    }

    /// Sends a prepared request.
    pub async fn send_request(&self, request: reqwest::RequestBuilder) -> TestResponse {
        read(request.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> TestResponse {
        self.send(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> TestResponse {
        self.send(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> TestResponse {
        self.send(Method::DELETE, path, Some(token), None).await
    }

    /// Creates a tenant as the platform admin and returns its id.
    pub async fn create_tenant(&self, name: &str) -> String {
        let response = self
            .post(
                "/v1/tenants",
                &self.admin_token,
                &serde_json::json!({ "name": name }),
            )
            .await;
        assert_eq!(response.status, 201, "create tenant: {}", response.text());
        response.json()["id"]
            .as_str()
            .expect("tenant id")
            .to_owned()
    }

    /// Creates an API key as the platform admin and returns `(key id, secret key)`.
    pub async fn create_api_key(&self, tenant: &str, role: &str) -> (String, String) {
        let response = self
            .post(
                &format!("/v1/tenants/{tenant}/api-keys"),
                &self.admin_token,
                &serde_json::json!({ "name": format!("{role} key"), "role": role }),
            )
            .await;
        assert_eq!(response.status, 201, "create key: {}", response.text());
        let body = response.json();
        (
            body["id"].as_str().expect("key id").to_owned(),
            body["key"].as_str().expect("key").to_owned(),
        )
    }

    /// The database (and data directory) this app runs on.
    pub fn database(&self) -> &TestDatabase {
        self.database
            .as_ref()
            .expect("database present until stopped")
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(self) {
        self.stop_and_keep_database().await;
    }

    /// Stops the server gracefully and hands back its database, to start another app on it.
    pub async fn stop_and_keep_database(mut self) -> TestDatabase {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server stopped cleanly");
        }
        self.database
            .take()
            .expect("database present until stopped")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl BackendFixture for TestApp {
    async fn start(backend: TestBackend) -> Option<Self> {
        TestApp::spawn(backend).await
    }
}

/// The defaults plus a port of its own, the test database and a known admin token.
pub fn test_figment(database: &TestDatabase) -> Figment {
    ConfigLoader::new()
        .without_environment()
        .figment()
        .merge(("data_dir", database.dir().display().to_string()))
        .merge(("listen", "127.0.0.1:0"))
        .merge(("database_url", database.url()))
        .merge(("admin_token", TEST_ADMIN_TOKEN))
        .merge(("shutdown.grace_period", "5s"))
}

/// "outer: inner: innermost".
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn read(response: reqwest::Response) -> TestResponse {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("response body").to_vec();
    TestResponse {
        status,
        headers,
        body,
    }
}

/// Logs from the app under test, shown when `SWITCHYARD_TEST_LOG` is set (for example to
/// `debug`), silent otherwise.
fn init_test_logging() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if let Ok(filter) = std::env::var("SWITCHYARD_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
    });
}

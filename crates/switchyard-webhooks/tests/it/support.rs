use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::Value;
use switchyard_webhooks::{
    Inbound, InboundRequest, KeyCache, Rejection, Scheme, Secret, SourceConfig, Verified,
};
use time::OffsetDateTime;
use url::Url;

pub fn python() -> Option<String> {
    switchyard_test_support::required_test_server("SWITCHYARD_TEST_PEERS_PYTHON")
}

pub fn node_modules() -> Option<String> {
    switchyard_test_support::required_test_server("SWITCHYARD_TEST_PEERS_NODE_MODULES")
}

/// Run a Python snippet with arguments (`sys.argv[1:]`); its stdout, trimmed.
pub fn py(python: &str, script: &str, args: &[&str]) -> String {
    let output = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8 output")
        .trim()
        .to_owned()
}

/// The directory that holds `node_modules`, so bare ESM imports in `--eval` resolve.
pub fn node_dir(node_modules: &str) -> PathBuf {
    Path::new(node_modules)
        .parent()
        .expect("node_modules has a parent")
        .to_path_buf()
}

pub fn node(node_modules: &str, script: &str, args: &[&str]) -> String {
    let output = Command::new("node")
        .current_dir(node_dir(node_modules))
        .args(["--input-type=module", "--eval", script, "--"])
        .args(args)
        .output()
        .expect("run node");
    assert!(
        output.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8 output")
        .trim()
        .to_owned()
}

pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// A raw request under construction.
#[derive(Clone)]
pub struct Req {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub received_at: OffsetDateTime,
}

impl Req {
    pub fn post(body: impl Into<Vec<u8>>) -> Self {
        Self {
            method: Method::POST,
            url: Url::parse("https://hooks.example.com/ingest/src_1").expect("url"),
            headers: HeaderMap::new(),
            body: body.into(),
            received_at: OffsetDateTime::now_utc(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
        self
    }

    pub fn without(mut self, name: &str) -> Self {
        self.headers.remove(name);
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn url(mut self, url: &str) -> Self {
        self.url = Url::parse(url).expect("url");
        self
    }

    /// Received at this Unix time (tolerance tests must not depend on how long signing took).
    pub fn at(mut self, unix: i64) -> Self {
        self.received_at = OffsetDateTime::from_unix_timestamp(unix).expect("time");
        self
    }

    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    pub fn inbound(&self) -> InboundRequest<'_> {
        InboundRequest {
            method: &self.method,
            url: &self.url,
            headers: &self.headers,
            body: &self.body,
            received_at: self.received_at,
        }
    }
}

pub fn config(scheme: Scheme, options: Value) -> SourceConfig {
    SourceConfig::from_json(scheme, &options, scheme == Scheme::None).expect("valid config")
}

pub fn secrets(values: &[&str]) -> Vec<Secret> {
    values.iter().map(|v| Secret::from(*v)).collect()
}

pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// Verify with an offline key cache (schemes with shared secrets).
pub fn check(config: &SourceConfig, secrets: &[Secret], req: &Req) -> Result<Verified, Rejection> {
    check_with(config, secrets, req, &KeyCache::offline())
}

pub fn check_with(
    config: &SourceConfig,
    secrets: &[Secret],
    req: &Req,
    keys: &KeyCache,
) -> Result<Verified, Rejection> {
    block_on(switchyard_webhooks::verify(
        config,
        secrets,
        &req.inbound(),
        keys,
    ))
}

pub fn process(
    config: &SourceConfig,
    secrets: &[Secret],
    req: &Req,
    keys: &KeyCache,
) -> Result<Inbound, Rejection> {
    block_on(switchyard_webhooks::process(
        config,
        secrets,
        &req.inbound(),
        keys,
    ))
}

pub fn code(result: Result<Verified, Rejection>) -> &'static str {
    match result {
        Ok(v) => panic!("expected a rejection, got {v:?}"),
        Err(e) => e.code(),
    }
}

/// An in-memory fetcher: URL → document.
pub struct MapFetcher(
    pub std::collections::HashMap<String, Vec<u8>>,
    pub std::sync::atomic::AtomicUsize,
);

#[async_trait::async_trait]
impl switchyard_webhooks::KeyFetcher for MapFetcher {
    async fn fetch(&self, url: &Url) -> Result<bytes::Bytes, switchyard_webhooks::FetchError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0
            .get(url.as_str())
            .map(|b| bytes::Bytes::from(b.clone()))
            .ok_or_else(|| switchyard_webhooks::FetchError(format!("no document at {url}")))
    }
}

pub fn map_cache(entries: Vec<(String, Vec<u8>)>) -> (Arc<MapFetcher>, KeyCache) {
    let fetcher = Arc::new(MapFetcher(
        entries.into_iter().collect(),
        std::sync::atomic::AtomicUsize::new(0),
    ));
    let cache = KeyCache::new(Arc::<MapFetcher>::clone(&fetcher));
    (fetcher, cache)
}

//! What every connector test does through the API: a server allowed to call stand-ins on
//! 127.0.0.1, a tenant's key, a connection, a sync run to its end, the records of a stream,
//! a linked webhook source, the runs a webhook started, and the answers kept for a leak scan.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_test_support::standin::{StandIn, StandInOptions};
use switchyard_test_support::{LeakScanner, TestApp, TestBackend};

/// Polls of a run or of a stream's runs, 50 ms apart, before a test gives up.
const POLLS: usize = 600;
const POLL_EVERY: Duration = Duration::from_millis(50);

/// The server with outbound HTTP to 127.0.0.1 allowed, where the stand-ins listen.
pub async fn spawn_app(backend: TestBackend) -> Option<TestApp> {
    spawn(backend, None).await
}

/// [`spawn_app`] serving the connectors crate's test manifests in `tests/manifests/<dir>`
/// (`""` for the folder itself) as the connector directory.
pub async fn spawn_app_with_manifests(backend: TestBackend, dir: &str) -> Option<TestApp> {
    let manifests = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../switchyard-connectors/tests/manifests")
        .join(dir);
    spawn(backend, Some(manifests)).await
}

async fn spawn(backend: TestBackend, manifests: Option<PathBuf>) -> Option<TestApp> {
    TestApp::spawn_with(backend, |figment| {
        let figment = figment
            .merge(("outbound.allow_http", true))
            .merge(("outbound.allow_cidrs", vec!["127.0.0.1/32"]));
        match manifests {
            Some(dir) => figment.merge(("connectors.directory", dir.display().to_string())),
            None => figment,
        }
    })
    .await
}

/// The generic stand-in provider taking `token`, without a rate limit, seeded with `items`
/// items.
pub async fn seeded_standin(token: &str, items: u64) -> StandIn {
    let standin = StandIn::start(StandInOptions {
        token: Some(token.into()),
        rate_limit: None,
        ..Default::default()
    })
    .await
    .unwrap();
    standin.seed(items);
    standin
}

/// A new tenant "Acme" and a `write` API key of it.
pub async fn tenant_key(app: &TestApp) -> String {
    let tenant = app.create_tenant("Acme").await;
    app.create_api_key(&tenant, "write").await.1
}

/// Creates a connection from `body`, asserting `201`; the connection as the API answers.
pub async fn create_connection(app: &TestApp, key: &str, body: &Value) -> Value {
    let created = app.post("/v1/connections", key, body).await;
    assert_eq!(created.status, 201, "{}", created.text());
    created.json()
}

/// The answer of `POST /v1/connections/{id}/test`, asserting `200`.
pub async fn test_connection(app: &TestApp, key: &str, connection: &str) -> Value {
    let test = app
        .post(
            &format!("/v1/connections/{connection}/test"),
            key,
            &json!({}),
        )
        .await;
    assert_eq!(test.status, 200, "{}", test.text());
    test.json()
}

/// Creates a webhook source linked to `connection`, asserting `201`; the source as answered
/// (its `ingest_url` is where deliveries go).
pub async fn create_source(
    app: &TestApp,
    key: &str,
    name: &str,
    scheme: &str,
    secret: &str,
    connection: &str,
) -> Value {
    let source = app
        .post(
            "/v1/sources",
            key,
            &json!({"name": name, "scheme": scheme, "secret": secret, "connection_id": connection}),
        )
        .await;
    assert_eq!(source.status, 201, "{}", source.text());
    source.json()
}

/// Waits for a run to finish and returns it.
pub async fn finished_run(app: &TestApp, key: &str, run: &str) -> Value {
    for _ in 0..POLLS {
        let response = app.get(&format!("/v1/runs/{run}"), key).await;
        assert_eq!(response.status, 200, "{}", response.text());
        let body = response.json();
        if ["succeeded", "failed", "cancelled"]
            .contains(&body["status"].as_str().unwrap_or_default())
        {
            return body;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    panic!("run {run} did not finish");
}

/// Starts a sync of `stream`, waits for its run and asserts it succeeded; the run.
pub async fn sync(app: &TestApp, key: &str, connection: &str, stream: &str) -> Value {
    let started = app
        .post(
            &format!("/v1/connections/{connection}/syncs/{stream}/run"),
            key,
            &json!({}),
        )
        .await;
    assert_eq!(started.status, 202, "{}", started.text());
    let run = finished_run(app, key, started.json()["run_id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{stream}: {run}");
    run
}

/// The runs of a connection's stream.
pub async fn stream_runs(app: &TestApp, key: &str, connection: &str, stream: &str) -> Vec<Value> {
    let runs = app
        .get(
            &format!("/v1/runs?subject=connection:{connection}:{stream}"),
            key,
        )
        .await;
    assert_eq!(runs.status, 200, "{}", runs.text());
    runs.json()["data"].as_array().unwrap().clone()
}

/// Waits for a webhook-triggered run of `stream` to start, then for it to finish; the run
/// (whatever its status: the caller asserts it).
pub async fn webhook_run(app: &TestApp, key: &str, connection: &str, stream: &str) -> Value {
    for _ in 0..POLLS {
        let runs = stream_runs(app, key, connection, stream).await;
        if let Some(run) = runs.iter().find(|r| r["trigger"] == "webhook") {
            return finished_run(app, key, run["id"].as_str().unwrap()).await;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    panic!("no webhook-triggered sync of `{stream}`");
}

/// Every page of a stream's records (in `model`'s form unless empty), following
/// `next_cursor` to the end, as the API answered them.
pub async fn record_pages(
    app: &TestApp,
    key: &str,
    connection: &str,
    stream: &str,
    model: &str,
) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/connections/{connection}/records/{stream}?limit=100");
        if !model.is_empty() {
            path.push_str(&format!("&model={model}"));
        }
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = app.get(&path, key).await;
        assert_eq!(page.status, 200, "{}", page.text());
        let body = page.json();
        cursor = Some(body["next_cursor"].as_str().unwrap().to_owned());
        let last = body["has_more"] == false;
        pages.push(body);
        if last {
            return pages;
        }
    }
}

/// Every record change of a stream (in `model`'s form unless empty).
pub async fn records(
    app: &TestApp,
    key: &str,
    connection: &str,
    stream: &str,
    model: &str,
) -> Vec<Value> {
    record_pages(app, key, connection, stream, model)
        .await
        .iter()
        .flat_map(|page| page["data"].as_array().unwrap().iter().cloned())
        .collect()
}

/// The `name`s of a catalogue entry's list `field` (`streams`, `auth_modes` by `type`...).
pub fn names<'a>(entry: &'a Value, field: &str, name: &str) -> Vec<&'a str> {
    entry[field]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item[name].as_str().unwrap())
        .collect()
}

/// Every answer a test saw, for the leak scan at its end.
#[derive(Default)]
pub struct Seen(Vec<(String, String)>);

impl Seen {
    /// Keeps `body` as seen at `place`; the body back, for chaining.
    pub fn keep(&mut self, place: &str, body: &Value) -> Value {
        self.0.push((place.to_owned(), body.to_string()));
        body.clone()
    }

    /// Keeps every page of a stream's records; the records.
    pub fn keep_pages(&mut self, pages: Vec<Value>) -> Vec<Value> {
        let mut records = Vec::new();
        for page in pages {
            let page = self.keep("records", &page);
            records.extend(page["data"].as_array().unwrap().iter().cloned());
        }
        records
    }

    /// Asserts no labelled secret appears in anything kept.
    pub fn assert_no_leaks(&self, secrets: &[(&str, &str)]) {
        let mut scanner = LeakScanner::new();
        for (label, secret) in secrets {
            scanner.watch(label, secret);
        }
        for (place, body) in &self.0 {
            scanner.add(place.clone(), body.clone().into_bytes());
        }
        scanner.assert_no_leaks();
    }
}

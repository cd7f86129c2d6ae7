//! A sync killed mid-run (`kill -9` of the server) resumes from its last stored page: after
//! a restart the job runs again as the same run, holding the same sync lease, continues at
//! the page after the checkpoint, and the stored records equal the stand-in's data exactly,
//! each added once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard_test_support::standin::{StandIn, StandInOptions};
use switchyard_test_support::{ServerProcess, TestBackend, TestDatabase};

const BINARY: &str = env!("CARGO_BIN_EXE_switchyard");
const KEK: &str = "c3luYy1jcmFzaC10ZXN0LWtleS0zMi1ieXRlcy1vayE=";
const TOKEN: &str = "sync-crash-standin-token";
/// 60 pages of 100; at 40 ms a page the sync takes over two seconds.
const ITEMS: u64 = 6_000;
/// Killed once this many pages were served: a sync stores ten pages at a time, so at least
/// two stores have happened, and the rest of what was read is lost with the process.
const KILL_AFTER_PAGES: usize = 25;

fn manifests() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../switchyard-connectors/tests/manifests")
}

fn start(database: &TestDatabase) -> ServerProcess {
    let data_dir = database.path("data");
    let extra = ["--database-url", database.url()];
    let directory = manifests().display().to_string();
    let env = [
        ("SWITCHYARD_VAULT__KEK__PROVIDER", "env"),
        ("SWITCHYARD_VAULT__KEK__KEY_BASE64", KEK),
        ("SWITCHYARD_OUTBOUND__ALLOW_HTTP", "true"),
        ("SWITCHYARD_OUTBOUND__ALLOW_CIDRS", "127.0.0.1/32"),
        ("SWITCHYARD_CONNECTORS__DIRECTORY", directory.as_str()),
        // The killed process's job is claimed again once its lease lapses.
        ("SWITCHYARD_WORKER__LEASE", "3s"),
        ("SWITCHYARD_WORKER__HEARTBEAT_INTERVAL", "1s"),
    ];
    ServerProcess::start_with_env(Path::new(BINARY), &data_dir, &extra, "info", &env)
}

fn list_pages(standin: &StandIn) -> Vec<u64> {
    standin
        .requests()
        .into_iter()
        .filter(|r| r.path == "/link/items" && r.status == 200)
        .map(|r| {
            let query = r.query.unwrap_or_default();
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "page")
                .map_or(1, |(_, v)| v.parse().unwrap())
        })
        .collect()
}

async fn killed_sync_resumes(backend: TestBackend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let standin = StandIn::start(StandInOptions {
        token: Some(TOKEN.into()),
        rate_limit: None,
        latency: Duration::from_millis(40),
        ..Default::default()
    })
    .await
    .unwrap();
    standin.seed(ITEMS);

    let server = start(&database);
    let admin = std::fs::read_to_string(database.path("data").join("admin-token")).unwrap();
    let admin = admin.trim().to_owned();
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, url: String, body: Option<Value>| {
        let mut request = http.request(method, url).bearer_auth(&admin);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (_, tenant) = call(
        reqwest::Method::POST,
        format!("{}/v1/tenants", server.url()),
        Some(json!({"name": "Crash"})),
    )
    .await;
    let tenant = tenant["id"].as_str().unwrap().to_owned();
    let (status, connection) = call(
        reqwest::Method::POST,
        format!("{}/v1/connections?tenant_id={tenant}", server.url()),
        Some(json!({"provider": "standin-link", "name": "crash", "config": {"base_url": standin.url()}, "credentials": {"token": TOKEN}})),
    )
    .await;
    assert_eq!(status, 201, "{connection}");
    let connection = connection["id"].as_str().unwrap().to_owned();
    let (status, started) = call(
        reqwest::Method::POST,
        format!(
            "{}/v1/connections/{connection}/syncs/users/run?tenant_id={tenant}",
            server.url()
        ),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 202, "{started}");
    let run = started["run_id"].as_str().unwrap().to_owned();

    let deadline = Instant::now() + Duration::from_secs(60);
    while list_pages(&standin).len() < KILL_AFTER_PAGES {
        assert!(
            Instant::now() < deadline,
            "the sync never got going: {:?}",
            list_pages(&standin)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill();
    let before = list_pages(&standin);
    assert!(
        *before.iter().max().unwrap() < 60,
        "killed mid-run: {before:?}"
    );
    standin.clear_requests();

    let server = start(&database);
    let deadline = Instant::now() + Duration::from_secs(90);
    let finished = loop {
        let (_, body) = call(
            reqwest::Method::GET,
            format!("{}/v1/runs/{run}?tenant_id={tenant}", server.url()),
            None,
        )
        .await;
        if ["succeeded", "failed", "cancelled"]
            .contains(&body["status"].as_str().unwrap_or_default())
        {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not finish after the restart: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(finished["status"], "succeeded", "{finished}");
    assert!(
        finished["attempts"].as_array().unwrap().len() >= 2,
        "{finished}"
    );

    // It went on where the killed process left it, not from page 1.
    let after = list_pages(&standin);
    assert!(
        !after.is_empty() && after[0] > 1,
        "resumed at page {:?}",
        after.first()
    );
    assert!(
        after[0] <= *before.iter().max().unwrap() + 1,
        "no page skipped: {before:?} then {after:?}"
    );

    // Every record once, exactly the stand-in's.
    let mut stored = std::collections::BTreeMap::new();
    let mut changes = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!(
            "{}/v1/connections/{connection}/records/users?tenant_id={tenant}&limit=200",
            server.url()
        );
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let (status, page) = call(reqwest::Method::GET, url, None).await;
        assert_eq!(status, 200, "{page}");
        for change in page["data"].as_array().unwrap() {
            assert_eq!(change["change"], "added", "{change}");
            changes += 1;
            stored.insert(
                change["primary_key"].as_str().unwrap().to_owned(),
                change["record"].clone(),
            );
        }
        cursor = Some(page["next_cursor"].as_str().unwrap().to_owned());
        if page["has_more"] == false {
            break;
        }
    }
    let expected: std::collections::BTreeMap<String, Value> = standin
        .items()
        .into_iter()
        .map(|item| (item.id.clone(), serde_json::to_value(&item).unwrap()))
        .collect();
    assert_eq!(changes, ITEMS as usize, "each record added once");
    assert!(stored == expected, "the stored records are the stand-in's");
    server.terminate();
}

#[tokio::test]
async fn a_killed_sync_resumes_on_sqlite() {
    killed_sync_resumes(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn a_killed_sync_resumes_on_postgres() {
    killed_sync_resumes(TestBackend::Postgres).await;
}

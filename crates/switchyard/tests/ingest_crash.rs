//! Durability of inbound webhooks across `kill -9`: a load generator sends deliveries while
//! the server is killed; after a restart every delivery that got a 2xx is stored and gets
//! processed. The generator's ledger of acknowledged ids must be a subset of the store's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::{
    collections::HashSet,
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use switchyard_test_support::{ServerProcess, TestBackend, TestDatabase};

const BINARY: &str = env!("CARGO_BIN_EXE_switchyard");
const KEK: &str = "Y3Jhc2gtdGVzdC1rZXktZW5jcnlwdGlvbi1rZXkhIT0=";
const SENDERS: usize = 16;

fn start(database: &TestDatabase) -> ServerProcess {
    let data_dir = database.path("data");
    let extra = ["--database-url", database.url()];
    let env = [
        ("SWITCHYARD_VAULT__KEK__PROVIDER", "env"),
        ("SWITCHYARD_VAULT__KEK__KEY_BASE64", KEK),
    ];
    ServerProcess::start_with_env(Path::new(BINARY), &data_dir, &extra, "info", &env)
}

async fn crash_loses_no_acknowledged_delivery(backend: TestBackend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let server = start(&database);
    let admin = std::fs::read_to_string(database.path("data").join("admin-token")).unwrap();
    let http = reqwest::Client::new();
    let tenant: Value = http
        .post(format!("{}/v1/tenants", server.url()))
        .bearer_auth(admin.trim())
        .json(&json!({"name": "Crash"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tenant = tenant["id"].as_str().unwrap().to_owned();
    let source: Value = http
        .post(format!("{}/v1/sources?tenant_id={tenant}", server.url()))
        .bearer_auth(admin.trim())
        .json(&json!({"name": "load", "scheme": "none", "allow_unverified": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let source_id = source["id"].as_str().unwrap().to_owned();
    let ingest = format!("{}/ingest/{source_id}", server.url());

    // The load generator: each sender posts distinct bodies until the server is gone.
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let (http, ingest, acked) = (http.clone(), ingest.clone(), Arc::clone(&acked));
            tokio::spawn(async move {
                for n in 0.. {
                    let body = json!({"sender": sender, "n": n}).to_string();
                    let Ok(response) = http.post(&ingest).body(body).send().await else {
                        break;
                    };
                    if response.status().is_success() {
                        let reply: Value = response.json().await.unwrap_or(Value::Null);
                        if let Some(id) = reply["id"].as_str() {
                            acked.lock().unwrap().insert(id.to_owned());
                        }
                    }
                }
            })
        })
        .collect();
    // Let a few hundred deliveries through, then die without any chance to flush.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 300 {
        assert!(
            Instant::now() < deadline,
            "the load generator got no acknowledgements"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();
    for sender in senders {
        sender.await.unwrap();
    }
    let acked: HashSet<String> = acked.lock().unwrap().clone();

    // After a restart, every acknowledged delivery is stored and gets processed.
    let server = start(&database);
    let mut stored = HashSet::new();
    let mut unprocessed = usize::MAX;
    let deadline = Instant::now() + Duration::from_secs(120);
    while unprocessed > 0 {
        assert!(
            Instant::now() < deadline,
            "{unprocessed} events were never processed"
        );
        stored.clear();
        unprocessed = 0;
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!(
                "{}/v1/inbound-events?tenant_id={tenant}&limit=200",
                server.url()
            );
            if let Some(cursor) = &cursor {
                url.push_str(&format!("&cursor={cursor}"));
            }
            let page: Value = http
                .get(url)
                .bearer_auth(admin.trim())
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for event in page["data"].as_array().unwrap() {
                stored.insert(event["id"].as_str().unwrap().to_owned());
                if event["status"] != "processed" {
                    unprocessed += 1;
                }
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        if unprocessed > 0 {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged deliveries were lost: {lost:?}",
        lost.len()
    );
    eprintln!(
        "{backend:?}: {} acknowledged before the kill, {} stored (the rest were in flight), all processed",
        acked.len(),
        stored.len()
    );
    server.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_delivery_on_sqlite() {
    crash_loses_no_acknowledged_delivery(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_delivery_on_postgres() {
    crash_loses_no_acknowledged_delivery(TestBackend::Postgres).await;
}

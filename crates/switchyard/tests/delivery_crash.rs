//! Durability of outbound delivery across `kill -9`: 10,000 events are published through the
//! API to an endpoint on a local receiver, and the server is killed while it delivers them.
//! After a restart, every event reaches the receiver at least once, repeats carry the same
//! `webhook-id`, and the ledger balances: published = succeeded + failed + pending.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{extract::State, http::HeaderMap, routing::post};
use serde_json::{Value, json};
use switchyard_test_support::{ServerProcess, TestBackend, TestDatabase};

const BINARY: &str = env!("CARGO_BIN_EXE_switchyard");
const KEK: &str = "Y3Jhc2gtdGVzdC1rZXktZW5jcnlwdGlvbi1rZXkhIT0=";
const EVENTS: usize = 10_000;
const PUBLISHERS: usize = 16;
/// Killed once this many distinct events have arrived.
const KILL_AFTER: usize = 2_500;

fn start(database: &TestDatabase) -> ServerProcess {
    let data_dir = database.path("data");
    let extra = ["--database-url", database.url()];
    let env = [
        ("SWITCHYARD_VAULT__KEK__PROVIDER", "env"),
        ("SWITCHYARD_VAULT__KEK__KEY_BASE64", KEK),
        ("SWITCHYARD_OUTBOUND__ALLOW_HTTP", "true"),
        ("SWITCHYARD_OUTBOUND__ALLOW_CIDRS", "127.0.0.1/32"),
        // Deliveries held by the killed process go again after 2 × 2 s + 5 s + 1 s.
        ("SWITCHYARD_OUTBOUND__TIMEOUT", "2s"),
        ("SWITCHYARD_OUTBOUND__LEASE_MARGIN", "1s"),
    ];
    ServerProcess::start_with_env(Path::new(BINARY), &data_dir, &extra, "info", &env)
}

/// Counts arrivals per `webhook-id`; answers 204.
async fn receive(
    State(seen): State<Arc<Mutex<HashMap<String, usize>>>>,
    headers: HeaderMap,
) -> axum::http::StatusCode {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    *seen.lock().unwrap().entry(id).or_default() += 1;
    axum::http::StatusCode::NO_CONTENT
}

fn event_id(n: usize) -> String {
    format!("evt-{n:05}")
}

/// Publishes events `todo` with `PUBLISHERS` tasks until done or the server is gone; returns
/// the ones acknowledged.
async fn publish(url: &str, token: &str, tenant: &str, todo: Vec<usize>) -> HashSet<usize> {
    let todo = Arc::new(todo);
    let next = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let http = reqwest::Client::new();
    let tasks: Vec<_> = (0..PUBLISHERS)
        .map(|_| {
            let (todo, next, acked, http) = (
                Arc::clone(&todo),
                Arc::clone(&next),
                Arc::clone(&acked),
                http.clone(),
            );
            let (url, token) = (
                format!("{url}/v1/events?tenant_id={tenant}"),
                token.to_owned(),
            );
            tokio::spawn(async move {
                while let Some(&n) = todo.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let body = json!({"type": "load.tick", "data": {"n": n}, "id": event_id(n)});
                    let Ok(response) = http.post(&url).bearer_auth(&token).json(&body).send().await
                    else {
                        break;
                    };
                    if response.status().is_success() {
                        acked.lock().unwrap().insert(n);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    acked.lock().unwrap().clone()
}

/// How many of the endpoint's deliveries have each status, by paging through the API.
async fn delivery_counts(
    url: &str,
    token: &str,
    tenant: &str,
    endpoint: &str,
) -> HashMap<String, usize> {
    let http = reqwest::Client::new();
    let mut counts = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut page_url =
            format!("{url}/v1/endpoints/{endpoint}/deliveries?tenant_id={tenant}&limit=200");
        if let Some(cursor) = &cursor {
            page_url.push_str(&format!("&cursor={cursor}"));
        }
        let page: Value = http
            .get(page_url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for delivery in page["data"].as_array().unwrap() {
            *counts
                .entry(delivery["status"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return counts,
        }
    }
}

async fn crash_loses_no_delivery(backend: TestBackend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let seen = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let receiver = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await });
    let distinct = |seen: &Mutex<HashMap<String, usize>>| seen.lock().unwrap().len();

    let server = start(&database);
    let admin = std::fs::read_to_string(database.path("data").join("admin-token")).unwrap();
    let admin = admin.trim().to_owned();
    let http = reqwest::Client::new();
    let tenant: Value = http
        .post(format!("{}/v1/tenants", server.url()))
        .bearer_auth(&admin)
        .json(&json!({"name": "Crash"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tenant = tenant["id"].as_str().unwrap().to_owned();
    let endpoint: Value = http
        .post(format!("{}/v1/endpoints?tenant_id={tenant}", server.url()))
        .bearer_auth(&admin)
        .json(&json!({"url": hook}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint = endpoint["id"].as_str().unwrap().to_owned();

    // Publish while the server delivers; kill it mid-way without any chance to flush.
    let publishing = {
        let (url, admin, tenant) = (server.url(), admin.clone(), tenant.clone());
        tokio::spawn(async move { publish(&url, &admin, &tenant, (0..EVENTS).collect()).await })
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while distinct(&seen) < KILL_AFTER {
        assert!(
            Instant::now() < deadline,
            "only {} events arrived",
            distinct(&seen)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill();
    let acked_before = publishing.await.unwrap();
    let seen_at_kill = distinct(&seen);

    // Restart; publish what was never acknowledged (an id published already is not sent twice).
    let server = start(&database);
    let rest: Vec<usize> = (0..EVENTS).filter(|n| !acked_before.contains(n)).collect();
    let acked_after = publish(&server.url(), &admin, &tenant, rest.clone()).await;
    assert_eq!(
        acked_after.len(),
        rest.len(),
        "every publish succeeds after the restart"
    );

    let deadline = Instant::now() + Duration::from_secs(180);
    while distinct(&seen) < EVENTS {
        assert!(
            Instant::now() < deadline,
            "{} of {EVENTS} events arrived after the restart",
            distinct(&seen)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = seen.lock().unwrap().clone();
    let expected: HashSet<String> = (0..EVENTS).map(event_id).collect();
    let arrived: HashSet<String> = seen.keys().cloned().collect();
    assert_eq!(arrived, expected, "every event arrived, and nothing else");
    let repeats: usize = seen.values().map(|n| n - 1).sum();

    // The ledger, once the last outcomes are written.
    let deadline = Instant::now() + Duration::from_secs(60);
    let counts = loop {
        let counts = delivery_counts(&server.url(), &admin, &tenant, &endpoint).await;
        let unfinished = counts.get("pending").copied().unwrap_or(0)
            + counts.get("sending").copied().unwrap_or(0);
        if unfinished == 0 || Instant::now() > deadline {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let count = |status: &str| counts.get(status).copied().unwrap_or(0);
    assert_eq!(
        count("succeeded") + count("failed") + count("pending") + count("sending"),
        EVENTS,
        "one delivery per published event: {counts:?}"
    );
    assert_eq!(count("succeeded"), EVENTS, "all delivered: {counts:?}");
    eprintln!(
        "{backend:?}: {} published before the kill, {seen_at_kill} delivered by then; \
         after the restart all {EVENTS} delivered, {repeats} sent more than once (same webhook-id)",
        acked_before.len()
    );
    server.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_delivery_loses_nothing_on_sqlite() {
    crash_loses_no_delivery(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_delivery_loses_nothing_on_postgres() {
    crash_loses_no_delivery(TestBackend::Postgres).await;
}

//! `connectors.rate_limit_redis_url`: provider budgets kept in Redis are one budget for every
//! server using that Redis. Two servers (separate databases, tenants and memory) call a
//! provider whose manifest allows 4 calls a second provider-wide; the provider sees the two
//! together keep to it, as it would from one process.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use switchyard_test_support::{TestApp, TestBackend, required_test_server};
use tokio::time::Instant;

use crate::providers::support::tenant_key;

const RATE: f64 = 4.0;
const BURST: f64 = 1.0;
const CALLS_PER_SERVER: usize = 6;

/// A provider answering `GET /me`, recording when each call arrived.
async fn provider() -> (String, Arc<Mutex<Vec<Instant>>>) {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&arrivals);
    let app = axum::Router::new().route(
        "/me",
        axum::routing::get(move || {
            seen.lock().unwrap().push(Instant::now());
            async { axum::Json(json!({"id": "me"})) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, arrivals)
}

async fn server(backend: TestBackend, redis: &str, prefix: &str) -> Option<TestApp> {
    let manifests = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../switchyard-connectors/tests/manifests/shared-budget");
    TestApp::spawn_with(backend, |figment| {
        figment
            .merge(("outbound.allow_http", true))
            .merge(("outbound.allow_cidrs", vec!["127.0.0.1/32"]))
            .merge(("connectors.directory", manifests.display().to_string()))
            .merge(("connectors.rate_limit_redis_url", redis))
            .merge(("connectors.rate_limit_key_prefix", prefix))
    })
    .await
}

/// A connection of `app` to the provider at `url`, and `CALLS_PER_SERVER` checks through it
/// at once.
async fn checks(app: &TestApp, url: &str) -> impl Future<Output = ()> {
    let key = tenant_key(app).await;
    let created = app
        .post(
            "/v1/connections",
            &key,
            &json!({"provider": "budgeted", "name": "Budgeted", "config": {"base_url": url}, "credentials": {"token": "t"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_owned();
    async move {
        let path = format!("/v1/connections/{id}/test");
        let empty = json!({});
        let calls = (0..CALLS_PER_SERVER).map(|_| app.post(&path, &key, &empty));
        for answer in futures::future::join_all(calls).await {
            assert_eq!(answer.status, 200, "{}", answer.text());
            assert_eq!(answer.json()["success"], true, "{}", answer.text());
        }
    }
}

async fn two_servers_share_one_budget(backend: TestBackend) {
    let Some(redis) = required_test_server("SWITCHYARD_TEST_REDIS_URL") else {
        return;
    };
    // A prefix of this run's own: keys of other runs never count.
    let prefix = format!("switchyard-test:shared:{}:", ulid::Ulid::new());
    let (Some(first), Some(second)) = (
        server(backend, &redis, &prefix).await,
        server(backend, &redis, &prefix).await,
    ) else {
        return;
    };
    let (url, arrivals) = provider().await;
    let (a, b) = (checks(&first, &url).await, checks(&second, &url).await);
    tokio::join!(a, b);

    let mut arrivals = arrivals.lock().unwrap().clone();
    arrivals.sort();
    assert_eq!(arrivals.len(), 2 * CALLS_PER_SERVER);
    // Judged over spans, not call by call: on a loaded machine one call can reach the
    // provider tens of milliseconds after its slot. One budget of 4/s (burst 1) spreads the
    // 12 calls over at least 2.75 s and lets at most 5 into any second; two budgets of their
    // own would finish in about 1.25 s with up to 10 in one second.
    let calls = arrivals.len() as f64;
    let span = arrivals[arrivals.len() - 1]
        .duration_since(arrivals[0])
        .as_secs_f64();
    let least = (calls - BURST) / RATE - 0.25;
    assert!(
        span >= least,
        "12 calls in {span:.3} s; one budget needs {least:.3} s"
    );
    let most_per_second = (RATE + BURST) as usize + 1;
    for (n, from) in arrivals.iter().enumerate() {
        let within = arrivals[n..]
            .iter()
            .take_while(|at| at.duration_since(*from) < Duration::from_secs(1))
            .count();
        assert!(
            within <= most_per_second,
            "{within} calls within a second of call {n}; one budget allows {most_per_second}"
        );
    }
}

#[tokio::test]
async fn two_servers_on_one_redis_share_a_provider_budget_sqlite() {
    two_servers_share_one_budget(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn two_servers_on_one_redis_share_a_provider_budget_postgres() {
    two_servers_share_one_budget(TestBackend::Postgres).await;
}

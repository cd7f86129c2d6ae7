//! Inbound webhook ingest throughput and acknowledgement latency, end to end over HTTP.
//!
//! ```sh
//! SWITCHYARD_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//! BENCH_REQUESTS=20000 BENCH_CONCURRENCY=64 cargo bench -p switchyard-server --bench ingest
//! ```
//! The server runs in this process (as `TestApp` starts it, release build); 64 client tasks
//! on keep-alive connections send 1 KiB JSON deliveries, each with a fresh delivery id and a
//! valid signature. For scale, the same client measures a hello-world axum handler that reads
//! the body and computes one HMAC, on the same machine with the same settings.
//!
//! `BENCH_ROLES` (default `api,worker,scheduler`) sets the server's roles: with `api` alone
//! nothing processes the stored deliveries during the run, which measures acknowledgement
//! on its own, as when processing runs in other processes.
//!
//! Each scenario also reports the peak resident set size (`VmHWM`, Linux only). It is per
//! process, so it covers the server *and* the load generator (and SQLite, which runs in
//! process; PostgreSQL's own memory is not included). The peak is reset before each scenario
//! (`/proc/self/clear_refs`), so every line shows its own peak, not the run's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use switchyard_test_support::{TestApp, TestBackend};
use switchyard_webhooks::standard_webhooks::{self, SigningSecret};

/// Makes request number `n`.
type RequestFactory = Arc<dyn Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Send + Sync>;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn body() -> String {
    let filler = "x".repeat(960);
    json!({"type": "order.created", "data": {"id": 42, "note": filler}}).to_string()
}

struct Report {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    failures: usize,
    peak_rss: Option<PeakRss>,
}

/// The process's peak resident set size over one scenario.
struct PeakRss {
    kib: u64,
    /// `false` when the peak could not be reset, so it covers the whole run so far.
    since_reset: bool,
}

/// Starts a new peak: writing 5 to `clear_refs` resets `VmHWM` to the current RSS.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// `VmHWM` from `/proc/self/status`, in KiB; `None` off Linux.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Sends `total` requests from `concurrency` tasks; `build(n)` makes request `n`.
async fn load(total: usize, concurrency: usize, build: RequestFactory) -> Report {
    let since_reset = reset_peak_rss();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, next, build) = (client.clone(), Arc::clone(&next), Arc::clone(&build));
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failures = 0;
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= total {
                        break;
                    }
                    let sent = Instant::now();
                    match build(&client, n).send().await {
                        Ok(response) if response.status().is_success() => {
                            let _ = response.bytes().await;
                            latencies.push(sent.elapsed());
                        }
                        _ => failures += 1,
                    }
                }
                (latencies, failures)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failures = 0;
    for task in tasks {
        let (mut l, f) = task.await.unwrap();
        latencies.append(&mut l);
        failures += f;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    Report {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        failures,
        peak_rss: peak_rss_kib().map(|kib| PeakRss { kib, since_reset }),
    }
}

fn print(label: &str, report: &Report) {
    let rss = match &report.peak_rss {
        Some(PeakRss { kib, since_reset }) => format!(
            "{:.1} MiB{}",
            *kib as f64 / 1024.0,
            if *since_reset { "" } else { " (since start)" }
        ),
        None => "n/a".to_owned(),
    };
    println!(
        "{label:<40} {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   failures {}   peak RSS {rss}",
        report.per_second,
        report.p50.as_secs_f64() * 1e3,
        report.p99.as_secs_f64() * 1e3,
        report.failures
    );
}

async fn hello_world_ceiling(total: usize, concurrency: usize) -> Report {
    async fn handler(body: axum::body::Bytes) -> &'static str {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"bench secret").unwrap();
        mac.update(&body);
        std::hint::black_box(mac.finalize());
        "ok"
    }
    let app = axum::Router::new().route("/hello", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hello", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let body = body();
    load(
        total,
        concurrency,
        Arc::new(move |client, _| client.post(&url).body(body.clone())),
    )
    .await
}

async fn ingest(
    backend: TestBackend,
    scheme: &str,
    total: usize,
    concurrency: usize,
) -> Option<Report> {
    let roles = std::env::var("BENCH_ROLES").unwrap_or_else(|_| "api,worker,scheduler".into());
    let app = TestApp::spawn_with(backend, |figment| figment.merge(("roles", roles))).await?;
    let tenant = app.create_tenant("Bench").await;
    let (_, key) = app.create_api_key(&tenant, "admin").await;
    let created = app
        .post(
            "/v1/sources",
            &key,
            &json!({"name": "bench", "scheme": scheme, "secret": SECRET}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let url = created.json()["ingest_url"].as_str().unwrap().to_owned();
    let body = body();
    let build: RequestFactory = match scheme {
        "github" => {
            let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
            mac.update(body.as_bytes());
            let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
            Arc::new(move |client, n| {
                client
                    .post(&url)
                    .header("x-hub-signature-256", &signature)
                    .header("x-github-event", "push")
                    .header("x-github-delivery", format!("bench-{n}"))
                    .header("content-type", "application/json")
                    .body(body.clone())
            })
        }
        _ => {
            let secret = SigningSecret::parse(SECRET).unwrap();
            Arc::new(move |client, n| {
                let id = format!("msg_bench_{n}");
                let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
                let signature = standard_webhooks::sign(&id, timestamp, body.as_bytes(), &secret);
                client
                    .post(&url)
                    .header("webhook-id", id)
                    .header("webhook-timestamp", timestamp.to_string())
                    .header("webhook-signature", signature)
                    .header("content-type", "application/json")
                    .body(body.clone())
            })
        }
    };
    let report = load(total, concurrency, build).await;
    app.stop().await;
    Some(report)
}

fn main() {
    let total = env_number("BENCH_REQUESTS", 20_000);
    let concurrency = env_number("BENCH_CONCURRENCY", 64);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        print(
            "hello world + HMAC (ceiling)",
            &hello_world_ceiling(total, concurrency).await,
        );
        for backend in [TestBackend::Sqlite, TestBackend::Postgres] {
            for scheme in ["github", "standard_webhooks"] {
                if let Some(report) = ingest(backend, scheme, total, concurrency).await {
                    print(&format!("ingest {backend:?} {scheme}"), &report);
                }
            }
        }
    });
}

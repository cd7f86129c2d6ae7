//! Sync benchmark: records per second of reading the local stand-in's virtual data set
//! (`BENCH_PAGES` pages of 100 records, default 10,000: a million records) three ways, and
//! the peak memory of each.
//!
//! 1. `bare`: a plain `reqwest` loop following `/next/items?page_size=100`, each body
//!    parsed into `serde_json::Value` and its records counted, as any client must;
//! 2. `engine`: the `standin-next` manifest connector's `collect` loop over the same pages,
//!    through the provider call stack; each page's records are counted and dropped;
//! 3. `sync/<engine>`: `sync::run` of the same connector into a `RecordStore` on a fresh
//!    SQLite file and (with `SWITCHYARD_TEST_DATABASE_URL`) a fresh PostgreSQL database,
//!    then a second sync of the unchanged data (every record `unchanged`).
//!
//! `cargo bench -p switchyard-connectors --bench sync` (release build). Knobs: `BENCH_PAGES`
//! (10000), `BENCH_ROUNDS` (3: rounds of bare and engine, alternating), `BENCH_CASES`
//! (comma-separated subset of `bare,engine,sync-sqlite,sync-postgres`).
//!
//! Not criterion: one case is one long run (a full sync takes minutes), which criterion's
//! sampling does not fit. Each case runs in a child process (this binary again, with
//! `--case`) so that its peak RSS (`VmHWM`) is its own: the stand-in serves from the parent.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{Value, json};
use switchyard_connectors::store::{ConnectionStore, NewConnection, RecordStore};
use switchyard_connectors::sync::{self, SyncCounts, SyncTarget};
use switchyard_connectors::{
    CallContext, ConnectionContext, Connector, ManifestConnector, manifest,
};
use switchyard_core::{ConnectionId, TenantId};
use switchyard_http::{
    AdaptiveConfig, AdaptiveLimits, BreakerConfig, BreakerRegistry, CallScope, Credential,
    CredentialError, CredentialSource, GuardedClient, InMemoryBackend, ProviderClient, Rate,
    RateLimiter, SsrfPolicy, SystemClock,
};
use switchyard_store::{Database, DatabaseOptions};
use switchyard_test_support::standin::{DataMode, StandIn, StandInOptions};
use switchyard_test_support::{TestBackend, TestDatabase};

const TOKEN: &str = "bench-token";
const PAGE_SIZE: u64 = 100;
/// Where the child finds the parent's stand-in.
const URL_VARIABLE: &str = "SYNC_BENCH_STANDIN_URL";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--case") {
        Some(at) => run_case(&args[at + 1]),
        None => run_parent(),
    }
}

// ----- the parent: serves the stand-in, runs every case in a child, prints the table -----

fn run_parent() {
    let pages = env("BENCH_PAGES", 10_000);
    let rounds = env("BENCH_ROUNDS", 3);
    let records = pages * PAGE_SIZE;
    let cases = std::env::var("BENCH_CASES")
        .unwrap_or_else(|_| "bare,engine,sync-sqlite,sync-postgres".into());
    let cases: Vec<&str> = cases.split(',').map(str::trim).collect();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let standin = runtime
        .block_on(StandIn::start(StandInOptions {
            token: Some(TOKEN.into()),
            rate_limit: None,
            data: DataMode::Virtual { count: records },
            ..Default::default()
        }))
        .unwrap();
    println!(
        "sync bench: {pages} pages of {PAGE_SIZE} ({records} records) from {}",
        standin.url()
    );

    let mut bare = Vec::new();
    let mut engine = Vec::new();
    for round in 1..=rounds {
        if cases.contains(&"bare") {
            let result = child("bare", standin.url());
            print_line(&format!("bare, round {round}"), &result, None);
            bare.push(result);
        }
        if cases.contains(&"engine") {
            let result = child("engine", standin.url());
            print_line(&format!("engine, round {round}"), &result, best(&bare));
            engine.push(result);
        }
        // The stand-in logs every request it answers; a long run should not grow it forever.
        standin.clear_requests();
    }
    let reference = best(&bare);
    for (case, name) in [("sync-sqlite", "sqlite"), ("sync-postgres", "postgres")] {
        if !cases.contains(&case) {
            continue;
        }
        if name == "postgres" && std::env::var("SWITCHYARD_TEST_DATABASE_URL").is_err() {
            println!("sync/postgres skipped: SWITCHYARD_TEST_DATABASE_URL is not set");
            continue;
        }
        let result = child(case, standin.url());
        print_line(&format!("sync/{name}, first"), &result, reference);
        if let Some(second) = result.get("second") {
            print_line(&format!("sync/{name}, unchanged"), second, reference);
        }
        standin.clear_requests();
    }
    drop(standin);
}

fn child(case: &str, url: &str) -> Value {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--case", case])
        .env(URL_VARIABLE, url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "case {case} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("case {case} printed {text:?}: {e}"))
}

fn rate(result: &Value) -> f64 {
    result["records"].as_f64().unwrap() / result["seconds"].as_f64().unwrap()
}

/// The fastest bare run: the ratio is against the best the loopback allowed.
fn best(results: &[Value]) -> Option<f64> {
    results.iter().map(rate).reduce(f64::max)
}

fn print_line(label: &str, result: &Value, reference: Option<f64>) {
    let ratio = reference.map_or(String::new(), |r| {
        format!(", {:.2}× bare", rate(result) / r)
    });
    println!(
        "{label:<26} {:>9} records in {:>7.2} s = {:>8.0} records/s{ratio}; peak RSS {:.1} MiB (start {:.1} MiB)",
        result["records"],
        result["seconds"].as_f64().unwrap(),
        rate(result),
        result["peak_kib"].as_f64().unwrap() / 1024.0,
        result["start_kib"].as_f64().unwrap() / 1024.0,
    );
}

// ----- a child: one case, one JSON line on stdout -----

fn run_case(case: &str) {
    let url = std::env::var(URL_VARIABLE).expect("the parent sets the stand-in's URL");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let result = runtime.block_on(async {
        match case {
            "bare" => bare(&url).await,
            "engine" => engine(&url).await,
            "sync-sqlite" => full_sync(&url, TestBackend::Sqlite).await,
            "sync-postgres" => full_sync(&url, TestBackend::Postgres).await,
            other => panic!("no case {other}"),
        }
    });
    println!("{result}");
}

/// Peak and current resident set of this process, KiB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Starts a new peak: `VmHWM` falls back to the current RSS.
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

fn measured(records: u64, started: Instant, start_kib: u64) -> Value {
    let seconds = started.elapsed().as_secs_f64();
    let (peak_kib, _) = memory();
    json!({"records": records, "seconds": seconds, "peak_kib": peak_kib, "start_kib": start_kib})
}

async fn bare(url: &str) -> Value {
    let client = reqwest::Client::new();
    reset_peak();
    let (_, start_kib) = memory();
    let started = Instant::now();
    let mut next = Some(format!("{url}/next/items?page_size={PAGE_SIZE}"));
    let mut records = 0;
    while let Some(page) = next.take() {
        let response = client.get(&page).bearer_auth(TOKEN).send().await.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        records += body["results"].as_array().unwrap().len() as u64;
        next = body["next"].as_str().map(str::to_owned);
    }
    measured(records, started, start_kib)
}

async fn engine(url: &str) -> Value {
    let (connector, calls, connection) = parts(url, TenantId::generate(), ConnectionId::generate());
    let cx = CallContext {
        calls: &calls,
        connection: &connection,
    };
    reset_peak();
    let (_, start_kib) = memory();
    let started = Instant::now();
    let mut checkpoint: Option<Value> = None;
    let mut records = 0;
    loop {
        let page = connector
            .collect(cx, "users", checkpoint.as_ref())
            .await
            .unwrap();
        records += page.records.len() as u64;
        if page.done {
            break;
        }
        checkpoint = Some(page.checkpoint);
    }
    measured(records, started, start_kib)
}

async fn full_sync(url: &str, backend: TestBackend) -> Value {
    let test_db = TestDatabase::create(backend)
        .await
        .expect("the parent checked that the backend is configured");
    let database = Database::connect(test_db.url(), &DatabaseOptions::default())
        .await
        .unwrap();
    database.migrate().await.unwrap();
    let tenant = TenantId::generate();
    let stored = ConnectionStore::new(database.clone())
        .create(NewConnection::new(tenant, "standin", "bench"))
        .await
        .unwrap();
    let (connector, calls, connection) = parts(url, tenant, stored.id);
    let records = RecordStore::new(database.clone());
    let cx = CallContext {
        calls: &calls,
        connection: &connection,
    };
    let target = || SyncTarget {
        tenant: &tenant,
        connection: &stored.id,
        stream: "users",
    };
    let (first, mut result) = sync_once(&connector, cx, &records, target()).await;
    let (second, second_result) = sync_once(&connector, cx, &records, target()).await;
    assert_eq!(first.added, first.pages * PAGE_SIZE, "{first:?}");
    assert_eq!(second.unchanged, first.added, "{second:?}");
    result["second"] = second_result;
    database.close().await;
    drop(test_db);
    result
}

async fn sync_once(
    connector: &ManifestConnector,
    cx: CallContext<'_>,
    records: &RecordStore,
    target: SyncTarget<'_>,
) -> (SyncCounts, Value) {
    reset_peak();
    let (_, start_kib) = memory();
    let started = Instant::now();
    let counts = sync::run(connector, cx, records, target, "run_bench", |_| {})
        .await
        .unwrap();
    (counts, measured(total(&counts), started, start_kib))
}

fn total(counts: &SyncCounts) -> u64 {
    counts.added + counts.updated + counts.unchanged
}

type Calls = ProviderClient<InMemoryBackend, StaticToken>;

/// The bearer token the stand-in wants, as a vault would hand it over.
struct StaticToken;

impl CredentialSource for StaticToken {
    async fn credential(&self, _: &CallScope) -> Result<Option<Credential>, CredentialError> {
        Ok(Some(Credential::Bearer(SecretString::from(TOKEN))))
    }
}

/// The `standin-next` connector, a call stack that reaches 127.0.0.1 and never waits for
/// its rate limiter, and the connection to the stand-in.
fn parts(
    url: &str,
    tenant: TenantId,
    connection: ConnectionId,
) -> (ManifestConnector, Calls, ConnectionContext) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/manifests/standin-next.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let manifest = manifest::load(&text, &path.display().to_string()).unwrap();
    let connector = ManifestConnector::new(manifest).unwrap();
    let policy = SsrfPolicy::strict()
        .with_allow_http(true)
        .with_allow_cidrs(["127.0.0.1/32".parse().unwrap()]);
    let client = GuardedClient::builder(policy)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let calls = ProviderClient::new(
        client,
        Arc::new(RateLimiter::in_memory(Rate::per_second(
            NonZeroU32::new(1_000_000_000).unwrap(),
        ))),
        Arc::new(AdaptiveLimits::new(
            AdaptiveConfig::default(),
            Arc::new(SystemClock),
        )),
        Arc::new(BreakerRegistry::new(
            BreakerConfig::default(),
            Arc::new(SystemClock),
        )),
        StaticToken,
    );
    let connection = ConnectionContext {
        tenant,
        connection,
        config: json!({"base_url": url}),
        base_url: None,
        auth_mode: None,
    };
    (connector, calls, connection)
}

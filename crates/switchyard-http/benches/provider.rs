//! Benchmarks of the provider call stack.
//!
//! `cargo bench -p switchyard-http --bench provider`
//! (`SWITCHYARD_TEST_REDIS_URL`, default `redis://127.0.0.1:6379/`, for the Redis cases)
//! - `limiter/in_memory`: one rate-limit decision in memory, one hot key (target < 1 µs).
//! - `limiter/in_memory_10k_keys`: the same spread over 10,000 keys.
//! - `limiter/redis`: one decision on Redis over loopback (one script call). After the
//!   criterion runs, 20,000 sequential decisions are timed one by one and p50/p99 printed
//!   (target p99 < 1 ms).
//! - `call/bare_reqwest` and `call/provider_stack`: a GET to a local server answering a small
//!   JSON body, first with a plain reqwest client, then through the whole stack (limiter,
//!   adaptive state, breaker, credential, SSRF-guarded client, span, metrics, observer-free);
//!   the ratio is the stack's overhead (target < 1.2×).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use secrecy::SecretString;
use switchyard_http::{
    AdaptiveConfig, AdaptiveLimits, BreakerConfig, BreakerRegistry, CallScope, Credential,
    CredentialError, CredentialSource, GuardedClient, InMemoryBackend, ProviderClient,
    ProviderPolicy, ProviderRequest, Rate, RateLimitBackend, RateLimiter, RedisBackend, SsrfPolicy,
    SystemClock,
};

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// High enough that every decision admits: the cost of deciding, not of waiting.
fn open_rate() -> Rate {
    Rate::per_second(nz(1_000_000_000))
}

fn redis_url() -> String {
    std::env::var("SWITCHYARD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

fn limiter(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut group = c.benchmark_group("limiter");
    let backend = runtime.block_on(async { InMemoryBackend::new() });
    group.bench_function("in_memory", |b| {
        b.iter(|| backend.check_now("ten_a/github/con_1", open_rate()));
    });
    let keys: Vec<String> = (0..10_000)
        .map(|i| format!("ten_a/github/con_{i}"))
        .collect();
    let mut next = 0usize;
    group.bench_function("in_memory_10k_keys", |b| {
        b.iter(|| {
            next = (next + 1) % keys.len();
            backend.check_now(&keys[next], open_rate())
        });
    });
    let redis = runtime.block_on(RedisBackend::connect(&redis_url(), "switchyard-bench:rl:"));
    let Ok(redis) = redis else {
        eprintln!(
            "limiter/redis skipped: Redis not reachable at {}",
            redis_url()
        );
        return;
    };
    group.bench_function("redis", |b| {
        b.to_async(&runtime).iter(|| async {
            redis
                .check("ten_a/github/con_1", open_rate())
                .await
                .unwrap()
        });
    });
    group.finish();
    report_redis_percentiles("multi-thread runtime", &runtime, &redis);
    // The same on a current-thread runtime: no wake-up hops between worker threads, which on
    // a 2-core machine shared with Redis is where much of the tail comes from.
    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let redis = single
        .block_on(RedisBackend::connect(&redis_url(), "switchyard-bench:rl:"))
        .unwrap();
    report_redis_percentiles("current-thread runtime", &single, &redis);
}

/// 20,000 sequential decisions timed one by one.
fn report_redis_percentiles(label: &str, runtime: &tokio::runtime::Runtime, redis: &RedisBackend) {
    let mut samples: Vec<Duration> = runtime.block_on(async {
        let mut samples = Vec::with_capacity(20_000);
        for _ in 0..20_000 {
            let started = Instant::now();
            redis
                .check("ten_a/github/con_1", open_rate())
                .await
                .unwrap();
            samples.push(started.elapsed());
        }
        samples
    });
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    eprintln!(
        "limiter/redis sequential decisions ({label}): p50 {:?}, p99 {:?}, max {:?}",
        at(0.50),
        at(0.99),
        samples[samples.len() - 1]
    );
}

struct Token;

impl CredentialSource for Token {
    async fn credential(&self, _: &CallScope) -> Result<Option<Credential>, CredentialError> {
        Ok(Some(Credential::Bearer(SecretString::from("bench-token"))))
    }
}

async fn local_server() -> SocketAddr {
    let app = axum::Router::new().route(
        "/users",
        axum::routing::get(|| async { axum::Json(serde_json::json!({"users": [{"id": "00u1"}]})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn call(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let addr = runtime.block_on(local_server());
    let url = format!("http://{addr}/users");
    let mut group = c.benchmark_group("call");

    let bare = reqwest::Client::new();
    group.bench_function("bare_reqwest", |b| {
        b.to_async(&runtime).iter(|| async {
            let response = bare
                .get(&url)
                .bearer_auth("bench-token")
                .send()
                .await
                .unwrap();
            response.bytes().await.unwrap()
        });
    });

    let stack = runtime.block_on(async {
        let ssrf = SsrfPolicy::strict()
            .with_allow_http(true)
            .with_allow_cidrs(["127.0.0.1/32".parse().unwrap()]);
        let client = GuardedClient::builder(ssrf).build().unwrap();
        ProviderClient::new(
            client,
            Arc::new(RateLimiter::in_memory(open_rate())),
            Arc::new(AdaptiveLimits::new(
                AdaptiveConfig::default(),
                Arc::new(SystemClock),
            )),
            Arc::new(BreakerRegistry::new(
                BreakerConfig::default(),
                Arc::new(SystemClock),
            )),
            Token,
        )
    });
    let policy = ProviderPolicy {
        rate: Some(open_rate()),
        ..ProviderPolicy::default()
    };
    let scope = CallScope {
        tenant: "ten_a".into(),
        provider: "okta".into(),
        connection: Some("con_1".into()),
    };
    let parsed: reqwest::Url = url.parse().unwrap();
    group.bench_function("provider_stack", |b| {
        b.to_async(&runtime).iter(|| async {
            let request = reqwest::Request::new(reqwest::Method::GET, parsed.clone());
            let call = ProviderRequest::new(scope.clone(), request, "/users");
            stack.call(&policy, call).await.unwrap().body
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = limiter, call
}
criterion_main!(benches);

//! Prometheus metrics: one process-wide recorder, so every crate records with the `metrics`
//! macros and `/metrics` renders them all.

use std::{
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use axum::{
    extract::{MatchedPath, Request},
    middleware::Next,
    response::Response,
};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

/// The installed recorder's handle. A mutex rather than a `OnceLock`: installing can fail, and
/// two apps built at once in one process (tests) must not both try.
static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// Latency buckets in seconds: fine below 100 ms, where API calls should land.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the process-wide recorder once and returns its handle; later calls (several apps
/// in one test process) share it. Must run before anything records a metric: the `metrics`
/// facade settles on a no-op recorder at its first use.
///
/// # Errors
/// When another recorder was installed by someone else.
pub fn install_recorder() -> Result<PrometheusHandle, BuildError> {
    let mut installed = HANDLE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(handle) = installed.as_ref() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)?
        .install_recorder()?;
    describe();
    metrics::gauge!("switchyard_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    *installed = Some(handle.clone());
    Ok(handle)
}

fn describe() {
    metrics::describe_counter!(
        "switchyard_http_requests_total",
        "HTTP requests served, by method, route template and status"
    );
    metrics::describe_histogram!(
        "switchyard_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to produce an HTTP response, by method and route template"
    );
    metrics::describe_gauge!("switchyard_build_info", "Always 1; labels carry the build");
}

/// Drains histogram samples into their buckets now and then, bounding memory between scrapes.
pub async fn run_upkeep(handle: PrometheusHandle, shutdown: tokio_util::sync::CancellationToken) {
    let mut interval = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = interval.tick() => handle.run_upkeep(),
            () = shutdown.cancelled() => return,
        }
    }
}

/// Counts requests and times them by route template (never by raw path, which would carry
/// ids and explode label cardinality).
pub async fn middleware(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(
        "switchyard_http_requests_total",
        "method" => method.clone(),
        "route" => route.clone(),
        "status" => status
    )
    .increment(1);
    metrics::histogram!(
        "switchyard_http_request_duration_seconds",
        "method" => method,
        "route" => route
    )
    .record(started.elapsed().as_secs_f64());
    response
}

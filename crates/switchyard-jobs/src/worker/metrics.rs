//! The worker's metrics: event counters and histograms recorded as things happen, and gauges
//! of the queue's depth refreshed by a periodic task (one query per refresh, not per job).

use std::{collections::HashSet, time::Duration};

use switchyard_store::Database;
use tokio_util::sync::CancellationToken;

use crate::queue::{self, Job};

pub(crate) fn claimed(job: &Job) {
    if let Some(started_at) = job.started_at {
        let latency = (started_at - job.run_at).as_seconds_f64().max(0.0);
        metrics::histogram!("switchyard_job_claim_latency_seconds", "kind" => job.kind.clone())
            .record(latency);
    }
}

pub(crate) fn finished(kind: &str, outcome: &'static str, run_time: Duration) {
    metrics::histogram!(
        "switchyard_job_run_seconds",
        "kind" => kind.to_owned(),
        "outcome" => outcome
    )
    .record(run_time.as_secs_f64());
}

pub(crate) fn retried(kind: &str, class: &'static str) {
    metrics::counter!("switchyard_job_retries_total", "kind" => kind.to_owned(), "class" => class)
        .increment(1);
}

pub(crate) fn dead(kind: &str) {
    metrics::counter!("switchyard_job_dead_total", "kind" => kind.to_owned()).increment(1);
}

pub(crate) fn lease_expired(kind: &str) {
    metrics::counter!("switchyard_job_lease_expiries_total", "kind" => kind.to_owned())
        .increment(1);
}

/// Refreshes `switchyard_jobs{kind,status}` and `switchyard_job_tenant_backlog{rank}` every
/// `interval` until `stop`. A depth series that disappears from the answer is set to 0 rather
/// than left at its last value (kinds and statuses are few, so keeping their series is fine).
pub(crate) async fn refresh_gauges(
    database: Database,
    interval: Duration,
    top_n: u32,
    stop: CancellationToken,
) {
    let mut depth_seen: HashSet<(String, &'static str)> = HashSet::new();
    let mut top_tenants: Vec<String> = Vec::new();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match queue::counts(&database).await {
            Ok(counts) => {
                let mut now_seen = HashSet::new();
                for (kind, status, count) in counts {
                    #[allow(clippy::cast_precision_loss)] // a gauge; exact beyond 2^53 is moot
                    metrics::gauge!("switchyard_jobs", "kind" => kind.clone(), "status" => status.as_str())
                        .set(count as f64);
                    now_seen.insert((kind, status.as_str()));
                }
                for (kind, status) in depth_seen.difference(&now_seen) {
                    metrics::gauge!("switchyard_jobs", "kind" => kind.clone(), "status" => *status)
                        .set(0.0);
                }
                depth_seen = now_seen;
            }
            Err(error) => tracing::warn!(error = %error, "job depth gauge refresh failed"),
        }
        if top_n == 0 {
            continue;
        }
        match queue::tenant_backlog(&database, top_n).await {
            Ok(backlog) => {
                // Labelled by rank, not tenant: the facade cannot remove a series, so a tenant
                // label would keep one for every tenant ever in the top N; ranks are exactly N.
                let counts = backlog.iter().map(|(_, n)| *n).chain(std::iter::repeat(0));
                for (rank, count) in (1..=top_n).zip(counts) {
                    #[allow(clippy::cast_precision_loss)]
                    metrics::gauge!("switchyard_job_tenant_backlog", "rank" => rank.to_string())
                        .set(count as f64);
                }
                // Who holds each rank goes to the log, where ids cost no series.
                let tenants: Vec<String> = backlog.into_iter().map(|(tenant, _)| tenant).collect();
                if tenants != top_tenants {
                    tracing::info!(tenants = ?tenants, "tenants with the largest job backlogs, largest first");
                    top_tenants = tenants;
                }
            }
            Err(error) => tracing::warn!(error = %error, "tenant backlog gauge refresh failed"),
        }
    }
}

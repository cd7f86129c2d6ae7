//! `switchyard jobs probe`: enqueue no-op probe jobs and time how the workers drain them.

use std::time::{Duration, Instant};

use serde_json::json;
use switchyard_jobs::probe;

use crate::{
    cli::{JobsCommand, ServerArgs},
    output, serve, telemetry,
};

/// How often the ledger is read while waiting.
const POLL: Duration = Duration::from_millis(100);

pub async fn run(command: JobsCommand) -> anyhow::Result<()> {
    match command {
        JobsCommand::Probe {
            count,
            timeout,
            json,
            server,
        } => probe_run(count, timeout, json, server).await,
    }
}

async fn probe_run(
    count: u32,
    timeout: Duration,
    as_json: bool,
    server: ServerArgs,
) -> anyhow::Result<()> {
    let config = serve::load_config(&server)?;
    telemetry::init(config.log_format);
    let database = serve::open_database(&config).await?;
    let started = Instant::now();
    let batch = probe::enqueue_batch(&database, count).await?;
    let enqueued_in = started.elapsed();
    let ledger = loop {
        let ledger = probe::ledger(&database, &batch.batch).await?;
        if ledger.effects >= u64::from(count) || started.elapsed() >= timeout {
            break ledger;
        }
        tokio::time::sleep(POLL).await;
    };
    database.close().await;
    let elapsed = started.elapsed();
    let complete = ledger.effects >= u64::from(count);
    let per_second = if elapsed.is_zero() {
        0.0
    } else {
        ledger.effects as f64 / elapsed.as_secs_f64()
    };
    let report = json!({
        "batch": batch.batch,
        "enqueued": count,
        "completed": ledger.effects,
        "executions": ledger.executions,
        "enqueue_ms": enqueued_in.as_millis(),
        "elapsed_ms": elapsed.as_millis(),
        "jobs_per_second": (per_second * 10.0).round() / 10.0,
    });
    if as_json {
        output::print_json(&report)?;
    } else {
        output::print_fields(
            &[
                ("BATCH", "batch"),
                ("ENQUEUED", "enqueued"),
                ("COMPLETED", "completed"),
                ("EXECUTIONS", "executions"),
                ("ENQUEUE MS", "enqueue_ms"),
                ("ELAPSED MS", "elapsed_ms"),
                ("JOBS/S", "jobs_per_second"),
            ],
            &report,
        )?;
    }
    if complete {
        Ok(())
    } else {
        anyhow::bail!(
            "{} of {count} probe jobs ran within {}; is a process with the worker role running?",
            ledger.effects,
            humantime::format_duration(timeout)
        )
    }
}

//! `switchyard sync run|list|schedule`: a connection's stream syncs.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::{
    cli::{ClientArgs, SyncCommand},
    client::{ApiClient, api_path},
    output,
    progress::{SyncCounts, SyncProgress},
};

/// How often the run is read while waiting; the server updates its counters about once a
/// second.
const POLL: Duration = Duration::from_millis(500);

const FINISHED: &[&str] = &["succeeded", "failed", "cancelled"];

pub async fn run(command: SyncCommand) -> anyhow::Result<()> {
    match command {
        SyncCommand::Run {
            connection,
            stream,
            tenant,
            no_wait,
            timeout,
            client,
        } => {
            let target = Target {
                connection: &connection,
                tenant: tenant.as_deref(),
            };
            run_sync(target, &stream, no_wait, timeout, &client).await
        }
        SyncCommand::List {
            connection,
            tenant,
            client,
        } => {
            let target = Target {
                connection: &connection,
                tenant: tenant.as_deref(),
            };
            list(target, &client).await
        }
        SyncCommand::Schedule {
            connection,
            stream,
            every,
            cron,
            time_zone,
            disable,
            tenant,
            client,
        } => {
            let schedule = match (every, cron) {
                (Some(every), _) => interval(every)?,
                (None, Some(expression)) => {
                    let time_zone = time_zone.as_deref().unwrap_or("UTC");
                    json!({"type": "cron", "expression": expression, "time_zone": time_zone})
                }
                // clap requires one of the two.
                (None, None) => bail!("give --every or --cron"),
            };
            let target = Target {
                connection: &connection,
                tenant: tenant.as_deref(),
            };
            let body = json!({"schedule": schedule, "enabled": !disable});
            let api = ApiClient::from_args(&client)?;
            let sync = api.put(&target.path(&["syncs", &stream]), &body).await?;
            if client.json {
                output::print_json(&sync)
            } else {
                output::print_fields(SYNC_FIELDS, &describe_sync(&sync))
            }
        }
    }
}

/// The connection a command works on, and the tenant the platform admin acts for.
#[derive(Clone, Copy)]
struct Target<'a> {
    connection: &'a str,
    tenant: Option<&'a str>,
}

impl Target<'_> {
    /// `/v1/connections/{id}/REST…?tenant_id=…`.
    fn path(&self, rest: &[&str]) -> String {
        let mut segments = vec!["v1", "connections", self.connection];
        segments.extend_from_slice(rest);
        api_path(&segments, &[("tenant_id", self.tenant)])
    }

    fn run_path(&self, run_id: &str) -> String {
        api_path(&["v1", "runs", run_id], &[("tenant_id", self.tenant)])
    }
}

fn interval(every: Duration) -> anyhow::Result<Value> {
    if every.subsec_nanos() != 0 || every.is_zero() {
        bail!("--every: give a whole number of seconds, at least one");
    }
    let seconds = u32::try_from(every.as_secs()).context("--every: too long")?;
    Ok(json!({"type": "interval", "every_seconds": seconds}))
}

async fn run_sync(
    target: Target<'_>,
    stream: &str,
    no_wait: bool,
    timeout: Duration,
    client: &ClientArgs,
) -> anyhow::Result<()> {
    let api = ApiClient::from_args(client)?;
    let started = api
        .post(&target.path(&["syncs", stream, "run"]), &json!({}))
        .await?;
    let run_id = started["run_id"]
        .as_str()
        .context("the server's answer has no `run_id`")?
        .to_owned();
    if no_wait {
        return if client.json {
            output::print_json(&started)
        } else {
            output::print_text(&format!("{run_id}\n"))
        };
    }
    let mut progress = SyncProgress::start(&run_id);
    let finished = tokio::select! {
        run = wait_for(&api, target, &run_id, timeout, &mut progress) => run,
        // The server runs the sync whether or not anyone watches.
        _ = tokio::signal::ctrl_c() => Err(anyhow!(
            "stopped waiting; {run_id} goes on: follow it with `switchyard runs show {run_id}`"
        )),
    };
    let waited = progress.elapsed();
    progress.finish();
    let run = finished?;
    if client.json {
        output::print_json(&run)?;
    } else {
        print_summary(&run, waited)?;
    }
    let status = run["status"].as_str().unwrap_or("unknown");
    if status == "succeeded" {
        return Ok(());
    }
    match run["error"]["message"].as_str() {
        Some(message) => bail!(
            "{run_id} {status}: {} ({})",
            message,
            run["error"]["class"].as_str().unwrap_or("unclassified")
        ),
        None => bail!("{run_id} {status}"),
    }
}

/// Reads the run until it finishes (or `timeout` passes), showing its progress.
async fn wait_for(
    api: &ApiClient,
    target: Target<'_>,
    run_id: &str,
    timeout: Duration,
    progress: &mut SyncProgress,
) -> anyhow::Result<Value> {
    loop {
        let run = api.get(&target.run_path(run_id)).await?;
        let status = run["status"].as_str().unwrap_or("unknown");
        progress.update(status, SyncCounts::of_run(&run));
        if FINISHED.contains(&status) {
            return Ok(run);
        }
        if progress.elapsed() >= timeout {
            bail!(
                "{run_id} is still {status} after {}; it goes on: follow it with `switchyard runs show {run_id}`",
                humantime::format_duration(timeout)
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

fn print_summary(run: &Value, waited: Duration) -> anyhow::Result<()> {
    let counts = SyncCounts::of_run(run);
    // The server's times, when it gave both; otherwise how long the CLI waited.
    let duration = match (
        timestamp(&run["started_at"]),
        timestamp(&run["finished_at"]),
    ) {
        (Some(started), Some(finished)) => {
            Duration::try_from(finished - started).unwrap_or_default()
        }
        _ => waited,
    };
    let duration = Duration::from_millis(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX));
    let summary = json!({
        "run": run["id"],
        "status": run["status"],
        "added": counts.added,
        "updated": counts.updated,
        "deleted": counts.deleted,
        "unchanged": counts.unchanged,
        "pages": counts.pages,
        "not_modified": counts.not_modified,
        "duration": humantime::format_duration(duration).to_string(),
    });
    output::print_fields(
        &[
            ("RUN", "run"),
            ("STATUS", "status"),
            ("ADDED", "added"),
            ("UPDATED", "updated"),
            ("DELETED", "deleted"),
            ("UNCHANGED", "unchanged"),
            ("PAGES", "pages"),
            ("304 PAGES", "not_modified"),
            ("DURATION", "duration"),
        ],
        &summary,
    )
}

fn timestamp(value: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(value.as_str()?, &Rfc3339).ok()
}

const SYNC_FIELDS: &[(&str, &str)] = &[
    ("STREAM", "stream"),
    ("SCHEDULE", "schedule"),
    ("ENABLED", "enabled"),
    ("NEXT RUN", "next_run_at"),
    ("LAST SCHEDULED", "last_scheduled_at"),
    ("CHECKPOINT", "checkpoint_at"),
];

async fn list(target: Target<'_>, client: &ClientArgs) -> anyhow::Result<()> {
    let api = ApiClient::from_args(client)?;
    let syncs = api.get(&target.path(&["syncs"])).await?;
    if client.json {
        return output::print_json(&syncs);
    }
    let rows: Vec<Value> = syncs
        .as_array()
        .into_iter()
        .flatten()
        .map(describe_sync)
        .collect();
    output::print_table(SYNC_FIELDS, &rows)
}

/// A stream's sync with its schedule in words (`every 1h`, `cron 0 * * * * (UTC)`).
fn describe_sync(sync: &Value) -> Value {
    let mut row = sync.clone();
    let schedule = &sync["schedule"];
    row["schedule"] = match schedule["type"].as_str() {
        Some("interval") => {
            let every = Duration::from_secs(schedule["every_seconds"].as_u64().unwrap_or(0));
            json!(format!("every {}", humantime::format_duration(every)))
        }
        Some("cron") => json!(format!(
            "cron {} ({})",
            schedule["expression"].as_str().unwrap_or("?"),
            schedule["time_zone"].as_str().unwrap_or("UTC")
        )),
        _ => Value::Null,
    };
    if row["schedule"].is_null() {
        row["enabled"] = Value::Null;
    }
    row
}

//! `switchyard purge [--dry-run]`.

use std::time::Duration;

use serde_json::json;
use switchyard_store::retention::{DEFAULT_BATCH_SIZE, count_expired, cutoff_for, purge_expired};

use crate::{cli::ServerArgs, output, serve, telemetry};

pub async fn run(dry_run: bool, server: ServerArgs) -> anyhow::Result<()> {
    let config = serve::load_config(&server)?;
    telemetry::init(config.log_format);
    let database = serve::open_database(&config).await?;
    let mut rows = Vec::new();
    for class in switchyard_server::retention::classes(&config) {
        let cutoff = cutoff_for(class.default_period);
        let report = if dry_run {
            count_expired(&database, &class, cutoff).await?
        } else {
            purge_expired(&database, &class, cutoff, DEFAULT_BATCH_SIZE).await?
        };
        rows.push(json!({
            "class": class.name,
            "retention": human_period(class.default_period),
            "older_than": cutoff.format(&time::format_description::well_known::Rfc3339)?,
            "rows": report.rows,
        }));
    }
    database.close().await;
    let verb = if dry_run { "WOULD DELETE" } else { "DELETED" };
    output::print_table(
        &[
            ("CLASS", "class"),
            ("RETENTION", "retention"),
            ("OLDER THAN", "older_than"),
            (verb, "rows"),
        ],
        &rows,
    )
}

/// `30d`, `24h`, `90s`: the largest whole unit.
fn human_period(period: Duration) -> String {
    let seconds = period.as_secs();
    match seconds {
        s if s > 0 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s > 0 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s => format!("{s}s"),
    }
}

//! `switchyard audit …`.

use anyhow::bail;
use switchyard_audit::AuditReader;

use crate::{cli::AuditCommand, client::ApiClient, output, serve, telemetry};

pub async fn run(command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::List {
            tenant,
            action,
            client,
        } => {
            let api = ApiClient::from_args(&client)?;
            let mut query = Vec::new();
            if let Some(tenant) = tenant {
                query.push(format!("tenant_id={tenant}"));
            }
            if let Some(action) = action {
                query.push(format!("action={action}"));
            }
            let events = api.list_all_with("/v1/audit-events", &query).await?;
            if client.json {
                return output::print_json(&serde_json::Value::Array(events));
            }
            let rows: Vec<serde_json::Value> = events
                .into_iter()
                .map(|mut event| {
                    event["actor_kind"] = event["actor"]["kind"].clone();
                    event["actor_id"] = event["actor"]["id"].clone();
                    event
                })
                .collect();
            output::print_table(
                &[
                    ("SEQ", "seq"),
                    ("TIME", "occurred_at"),
                    ("ACTOR", "actor_kind"),
                    ("ACTOR ID", "actor_id"),
                    ("ACTION", "action"),
                    ("TARGET", "target"),
                    ("OUTCOME", "outcome"),
                ],
                &rows,
            )
        }
        AuditCommand::Verify { server } => {
            let config = serve::load_config(&server)?;
            telemetry::init(config.log_format);
            let database = serve::open_database(&config).await?;
            let reports = AuditReader::new(&database).verify_all().await?;
            database.close().await;
            let mut text = String::new();
            for report in &reports {
                text.push_str(&format!("{report}\n"));
            }
            if reports.is_empty() {
                text.push_str("no audit entries yet\n");
            }
            output::print_text(&text)?;
            let broken = reports.iter().filter(|report| !report.is_ok()).count();
            if broken > 0 {
                bail!("{broken} audit chain(s) broken");
            }
            Ok(())
        }
    }
}

//! `switchyard runs list|show|retry`.

use serde_json::Value;

use crate::{cli::RunsCommand, client::ApiClient, output};

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("SUBJECT", "subject"),
    ("TRIGGER", "trigger"),
    ("STATUS", "status"),
    ("CREATED", "created_at"),
    ("FINISHED", "finished_at"),
];

pub async fn run(command: RunsCommand) -> anyhow::Result<()> {
    match command {
        RunsCommand::List {
            status,
            subject,
            tenant,
            client,
        } => {
            let api = ApiClient::from_args(&client)?;
            let mut query = Vec::new();
            for (name, value) in [
                ("status", status),
                ("subject", subject),
                ("tenant_id", tenant),
            ] {
                if let Some(value) = value {
                    query.push(format!("{name}={value}"));
                }
            }
            let runs = api.list_all_with("/v1/runs", &query).await?;
            if client.json {
                output::print_json(&Value::Array(runs))
            } else {
                output::print_table(COLUMNS, &runs)
            }
        }
        RunsCommand::Show {
            run_id,
            tenant,
            client,
        } => {
            let api = ApiClient::from_args(&client)?;
            let run = api
                .get(&format!(
                    "/v1/runs/{run_id}{}",
                    tenant_query(tenant.as_deref())
                ))
                .await?;
            if client.json {
                return output::print_json(&run);
            }
            output::print_fields(
                &[
                    ("ID", "id"),
                    ("SUBJECT", "subject"),
                    ("KIND", "kind"),
                    ("TRIGGER", "trigger"),
                    ("STATUS", "status"),
                    ("CREATED", "created_at"),
                    ("STARTED", "started_at"),
                    ("FINISHED", "finished_at"),
                    ("ERROR", "error"),
                ],
                &run,
            )?;
            output::print_text("\nATTEMPTS\n")?;
            let attempts = run["attempts"].as_array().cloned().unwrap_or_default();
            output::print_table(
                &[
                    ("#", "attempt"),
                    ("STARTED", "started_at"),
                    ("OUTCOME", "outcome"),
                    ("MS", "duration_ms"),
                    ("ERROR", "error"),
                ],
                &attempts,
            )
        }
        RunsCommand::Retry {
            run_id,
            tenant,
            client,
        } => {
            let api = ApiClient::from_args(&client)?;
            let path = format!("/v1/runs/{run_id}/retry{}", tenant_query(tenant.as_deref()));
            let retry = api.post(&path, &serde_json::json!({})).await?;
            if client.json {
                output::print_json(&retry)
            } else {
                output::print_text(&format!(
                    "retrying {run_id} as {}\n",
                    retry["id"].as_str().unwrap_or("a new run")
                ))
            }
        }
    }
}

fn tenant_query(tenant: Option<&str>) -> String {
    tenant.map_or_else(String::new, |tenant| format!("?tenant_id={tenant}"))
}

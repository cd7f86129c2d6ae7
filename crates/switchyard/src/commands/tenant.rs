//! `switchyard tenant create|list`.

use serde_json::json;

use crate::{cli::TenantCommand, client::ApiClient, output};

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("ENVIRONMENT", "environment"),
    ("CREATED", "created_at"),
];

pub async fn run(command: TenantCommand) -> anyhow::Result<()> {
    match command {
        TenantCommand::Create {
            name,
            environment,
            client,
        } => {
            let api = ApiClient::from_args(&client)?;
            let tenant = api
                .post(
                    "/v1/tenants",
                    &json!({ "name": name, "environment": environment }),
                )
                .await?;
            if client.json {
                output::print_json(&tenant)
            } else {
                output::print_fields(COLUMNS, &tenant)
            }
        }
        TenantCommand::Delete { tenant, client } => {
            let api = ApiClient::from_args(&client)?;
            let deleted = api.delete(&format!("/v1/tenants/{tenant}")).await?;
            if client.json {
                output::print_json(&deleted)
            } else {
                output::print_text(&format!(
                    "deleted {tenant}: its data keys are destroyed; its rows are purged after {}\n",
                    deleted["purge_after"]
                        .as_str()
                        .unwrap_or("the retention window")
                ))
            }
        }
        TenantCommand::List { client } => {
            let api = ApiClient::from_args(&client)?;
            let tenants = api.list_all("/v1/tenants").await?;
            if client.json {
                output::print_json(&serde_json::Value::Array(tenants))
            } else {
                output::print_table(COLUMNS, &tenants)
            }
        }
    }
}

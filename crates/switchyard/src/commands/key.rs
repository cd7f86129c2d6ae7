//! `switchyard key create|list|revoke`.

use serde_json::json;

use crate::{cli::KeyCommand, client::ApiClient, output};

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("ROLE", "role"),
    ("PREFIX", "prefix"),
    ("CREATED", "created_at"),
    ("REVOKED", "revoked_at"),
];

pub async fn run(command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Create {
            tenant,
            name,
            role,
            client,
        } => {
            let api = ApiClient::from_args(&client)?;
            let key = api
                .post(
                    &format!("/v1/tenants/{tenant}/api-keys"),
                    &json!({ "name": name, "role": role.as_str() }),
                )
                .await?;
            if client.json {
                return output::print_json(&key);
            }
            output::print_fields(
                &[
                    ("ID", "id"),
                    ("NAME", "name"),
                    ("ROLE", "role"),
                    ("KEY", "key"),
                ],
                &key,
            )?;
            output::print_text("\nThe key is shown only now: store it safely.\n")
        }
        KeyCommand::List { tenant, client } => {
            let api = ApiClient::from_args(&client)?;
            let keys = api
                .list_all(&format!("/v1/tenants/{tenant}/api-keys"))
                .await?;
            if client.json {
                output::print_json(&serde_json::Value::Array(keys))
            } else {
                output::print_table(COLUMNS, &keys)
            }
        }
        KeyCommand::Revoke {
            tenant,
            key_id,
            client,
        } => {
            let api = ApiClient::from_args(&client)?;
            let key = api
                .delete(&format!("/v1/tenants/{tenant}/api-keys/{key_id}"))
                .await?;
            if client.json {
                output::print_json(&key)
            } else {
                output::print_text(&format!("revoked {key_id}\n"))
            }
        }
    }
}

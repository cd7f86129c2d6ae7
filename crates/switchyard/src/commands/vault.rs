//! `switchyard vault …`.

use std::{path::PathBuf, sync::Arc};

use anyhow::{Context, bail};
use secrecy::SecretString;
use switchyard_audit::{Actor, AuditLog, AuditOptions};
use switchyard_vault::{
    AuditContext, AuditedVault, AwsKmsConfig, AwsKmsKek, EnvKek, FileKek, KeyEncryptionKey,
};

use crate::{cli::VaultCommand, client::ApiClient, output, serve, telemetry};

/// The variable `rotate-kek --to env` reads the new key from.
const NEW_KEK_VARIABLE: &str = "SWITCHYARD_VAULT_NEW_KEK_BASE64";

pub async fn run(command: VaultCommand) -> anyhow::Result<()> {
    match command {
        VaultCommand::DataKeys { tenant, client } => {
            let api = ApiClient::from_args(&client)?;
            let keys = api
                .get(&format!("/v1/tenants/{tenant}/vault/data-keys"))
                .await?;
            if client.json {
                return output::print_json(&keys);
            }
            let items = keys["data"].as_array().cloned().unwrap_or_default();
            output::print_table(
                &[
                    ("VERSION", "version"),
                    ("STATE", "state"),
                    ("KEK", "kek_id"),
                    ("CREATED", "created_at"),
                ],
                &items,
            )
        }
        VaultCommand::RotateDek { tenant, client } => {
            let api = ApiClient::from_args(&client)?;
            let rotation = api
                .post(
                    &format!("/v1/tenants/{tenant}/vault/rotate-dek"),
                    &serde_json::json!({}),
                )
                .await?;
            if client.json {
                return output::print_json(&rotation);
            }
            output::print_text(&format!(
                "data key version {} is active for {tenant}; data under the old key is re-sealed and the key retired after {}\n",
                rotation["version"],
                rotation["completes_after"]
                    .as_str()
                    .unwrap_or("the key cache TTL"),
            ))
        }
        VaultCommand::CompleteDekRotation { tenant, client } => {
            let api = ApiClient::from_args(&client)?;
            let report = api
                .post(
                    &format!("/v1/tenants/{tenant}/vault/complete-dek-rotation"),
                    &serde_json::json!({}),
                )
                .await?;
            if client.json {
                return output::print_json(&report);
            }
            let resealed = &report["resealed"];
            output::print_text(&format!(
                "re-sealed {} inbound payloads, {} event bodies and {} response bodies; \
                 re-encrypted {} secret versions; retired data keys {}\n",
                resealed["inbound_payloads"],
                resealed["event_bodies"],
                resealed["response_bodies"],
                report["reencrypted"],
                report["retired"]
            ))
        }
        VaultCommand::RotateKek { to, server } => {
            let config = serve::load_config(&server)?;
            telemetry::init(config.log_format);
            let database = serve::open_database(&config).await?;
            let vault = switchyard_server::vault_setup::open_vault(&config, &database)
                .await
                .context("cannot open the credential vault with the configured KEK")?;
            let (audit, writer) = AuditLog::start(&database, AuditOptions::default());
            let vault = AuditedVault::new(Arc::new(vault), audit);
            let context = AuditContext::new(Actor::Internal {
                component: "cli.vault.rotate-kek".to_owned(),
                run_id: None,
            });
            let report = match to {
                Some(spec) => vault.rotate_kek(&context, new_kek(&spec).await?).await?,
                None => vault.rewrap_keys(&context).await?,
            };
            writer.shutdown().await?;
            database.close().await;
            output::print_text(&format!(
                "re-wrapped {} keys under {}; no secret was re-encrypted\n",
                report.rewrapped, report.kek_id
            ))
        }
    }
}

/// Parses `file:PATH`, `env` or `aws-kms:KEY_ID`.
async fn new_kek(spec: &str) -> anyhow::Result<Arc<dyn KeyEncryptionKey>> {
    if let Some(path) = spec.strip_prefix("file:") {
        let path = PathBuf::from(path);
        return Ok(Arc::new(FileKek::load_or_create(&path)?));
    }
    if spec == "env" {
        let value = std::env::var(NEW_KEK_VARIABLE)
            .with_context(|| format!("--to env reads the new key from {NEW_KEK_VARIABLE}"))?;
        return Ok(Arc::new(EnvKek::from_base64(&SecretString::from(value))?));
    }
    if let Some(key_id) = spec.strip_prefix("aws-kms:") {
        return Ok(Arc::new(
            AwsKmsKek::connect(&AwsKmsConfig::new(key_id)).await?,
        ));
    }
    bail!("--to must be `file:PATH`, `env` or `aws-kms:KEY_ID`, not `{spec}`")
}

//! Opens the credential vault from configuration: the primary KEK, an optional secondary KEK
//! (during a rotation), and the data-key cache. Fails closed: if wrapped keys exist and the
//! configured KEKs cannot unwrap them, start-up stops here.

use std::sync::Arc;

use switchyard_config::{Config, KekSettings};
use switchyard_store::Database;
use switchyard_vault::{
    AwsKmsConfig, FileKek, KekConfig, KeyEncryptionKey, Vault, VaultError, VaultOptions,
    storage_for,
};

/// The vault's provider description for one KEK setting.
pub fn kek_config(config: &Config, settings: &KekSettings) -> KekConfig {
    match settings {
        KekSettings::File { path } => KekConfig::KeyFile {
            path: config.key_file_path(path.as_deref()),
        },
        KekSettings::Env { key_base64 } => KekConfig::Env {
            key_base64: key_base64.clone(),
        },
        KekSettings::AwsKms {
            key_id,
            region,
            endpoint_url,
        } => {
            let mut kms = AwsKmsConfig::new(key_id.clone());
            kms.region = region.clone();
            kms.endpoint_url = endpoint_url.clone();
            KekConfig::AwsKms(kms)
        }
    }
}

/// Loads a KEK that must already exist: a secondary KEK is never created.
async fn load_existing(
    config: &Config,
    settings: &KekSettings,
    database: &Database,
) -> Result<Arc<dyn KeyEncryptionKey>, VaultError> {
    if let KekSettings::File { path } = settings {
        let path = config.key_file_path(path.as_deref());
        return match FileKek::load(&path)? {
            Some(kek) => Ok(Arc::new(kek)),
            None => Err(VaultError::KeyFileMissing {
                path,
                stored_kek_ids: "(secondary KEK)".to_owned(),
            }),
        };
    }
    kek_config(config, settings)
        .load(storage_for(database).as_ref())
        .await
}

/// Opens the vault with the configured KEKs.
///
/// # Errors
/// When a KEK cannot be loaded, or stored keys name a KEK that is not configured, or a
/// configured KEK cannot unwrap the keys it is recorded as wrapping.
pub async fn open_vault(config: &Config, database: &Database) -> Result<Vault, VaultError> {
    let storage = storage_for(database);
    let primary = kek_config(config, &config.vault.kek)
        .load(storage.as_ref())
        .await?;
    let mut secondary = Vec::new();
    if let Some(settings) = &config.vault.secondary_kek {
        secondary.push(load_existing(config, settings, database).await?);
    }
    let options = VaultOptions {
        cache_ttl: config.vault.key_cache_ttl,
        ..VaultOptions::default()
    };
    Vault::open_with_keks(storage, primary, secondary, options).await
}

//! Turning a [`BlobConfig`] into an `object_store` client.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use secrecy::ExposeSecret;

use crate::aws_chain::DefaultChain;
use crate::config::{AzureBlobConfig, BlobConfig, LocalBlobConfig, S3BlobConfig};
use crate::error::{BlobError, Result};
use crate::local::LocalDirs;

/// Azurite's documented development account and key (public, not a secret).
const EMULATOR_ACCOUNT: &str = "devstoreaccount1";
const EMULATOR_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const EMULATOR_URL: &str = "http://127.0.0.1:10000/devstoreaccount1";

pub(crate) struct Backend {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) local: Option<LocalDirs>,
}

pub(crate) async fn build(config: &BlobConfig, data_dir: &Path) -> Result<Backend> {
    match config {
        BlobConfig::Local(local) => build_local(local, data_dir),
        BlobConfig::S3(s3) => Ok(Backend {
            store: with_prefix(Arc::new(build_s3(s3).await?), s3.prefix.as_deref())?,
            local: None,
        }),
        BlobConfig::Azure(azure) => Ok(Backend {
            store: with_prefix(Arc::new(build_azure(azure)?), azure.prefix.as_deref())?,
            local: None,
        }),
    }
}

fn build_local(config: &LocalBlobConfig, data_dir: &Path) -> Result<Backend> {
    let root = config
        .path
        .clone()
        .unwrap_or_else(|| data_dir.join("blobs"));
    let dirs = LocalDirs::open(&root)?;
    let store = LocalFileSystem::new_with_prefix(dirs.root())
        .map_err(|e| BlobError::Config(format!("blob directory {}: {e}", root.display())))?
        // Durable puts: fsync the file and the directory entries before returning.
        .with_fsync(true);
    Ok(Backend {
        store: Arc::new(store),
        local: Some(dirs),
    })
}

async fn build_s3(config: &S3BlobConfig) -> Result<object_store::aws::AmazonS3> {
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&config.bucket)
        .with_virtual_hosted_style_request(config.virtual_hosted_style);
    if let Some(endpoint) = &config.endpoint_url {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    let region = match (&config.access_key_id, &config.secret_access_key) {
        (Some(id), Some(secret)) => {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret.expose_secret());
            if let Some(token) = &config.session_token {
                builder = builder.with_token(token.expose_secret());
            }
            config.region.clone()
        }
        (None, None) => {
            let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
            if let Some(region) = &config.region {
                loader = loader.region(aws_config::Region::new(region.clone()));
            }
            let sdk = loader.load().await;
            let provider = sdk.credentials_provider().ok_or_else(|| {
                BlobError::Config("no AWS credentials provider is available".to_owned())
            })?;
            builder = builder.with_credentials(Arc::new(DefaultChain::new(provider)));
            config
                .region
                .clone()
                .or_else(|| sdk.region().map(ToString::to_string))
        }
        _ => {
            return Err(BlobError::Config(
                "s3: set both access_key_id and secret_access_key, or neither".to_owned(),
            ));
        }
    };
    builder
        .with_region(region.unwrap_or_else(|| "us-east-1".to_owned()))
        .build()
        .map_err(|e| BlobError::Config(format!("s3: {e}")))
}

fn build_azure(config: &AzureBlobConfig) -> Result<object_store::azure::MicrosoftAzure> {
    let account = match (&config.account, config.use_emulator) {
        (Some(account), _) => account.clone(),
        (None, true) => EMULATOR_ACCOUNT.to_owned(),
        (None, false) => return Err(BlobError::Config("azure: account is required".to_owned())),
    };
    let key = match (&config.access_key, config.use_emulator) {
        (Some(key), _) => Some(key.expose_secret().to_owned()),
        (None, true) => Some(EMULATOR_KEY.to_owned()),
        (None, false) => None,
    };
    // Checked here so a malformed key is reported without echoing any part of it.
    if let Some(key) = &key
        && base64::engine::general_purpose::STANDARD
            .decode(key)
            .is_err()
    {
        return Err(BlobError::Config(
            "azure: access_key is not valid base64".to_owned(),
        ));
    }
    let endpoint = match (&config.endpoint_url, config.use_emulator) {
        (Some(url), _) => Some(url.clone()),
        (None, true) => Some(EMULATOR_URL.to_owned()),
        (None, false) => None,
    };
    // Not `with_use_emulator`: that takes its address from a process environment variable.
    // Azurite is just an endpoint with a path-style account segment and a shared key.
    let mut builder = match &key {
        Some(key) => MicrosoftAzureBuilder::new().with_access_key(key),
        None => MicrosoftAzureBuilder::from_env(),
    }
    .with_account(account)
    .with_container_name(&config.container);
    if let Some(endpoint) = endpoint {
        builder = builder
            .with_allow_http(endpoint.starts_with("http://"))
            .with_endpoint(endpoint);
    }
    builder
        .build()
        .map_err(|e| BlobError::Config(format!("azure: {e}")))
}

fn with_prefix(store: Arc<dyn ObjectStore>, prefix: Option<&str>) -> Result<Arc<dyn ObjectStore>> {
    let Some(prefix) = prefix.filter(|p| !p.is_empty()) else {
        return Ok(store);
    };
    let path = object_store::path::Path::parse(prefix)
        .map_err(|e| BlobError::Config(format!("prefix {prefix:?}: {e}")))?;
    Ok(Arc::new(PrefixStore::new(store, path)))
}

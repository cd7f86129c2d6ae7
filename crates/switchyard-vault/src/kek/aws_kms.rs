//! AWS KMS as the KEK: data keys are generated and wrapped by KMS (`GenerateDataKey`,
//! `Encrypt`, `Decrypt`) and the KEK itself never leaves it.
//!
//! The wrap context becomes the KMS encryption context, so CloudTrail shows which tenant's key
//! each call concerns, and a wrapped key moved to another row fails to decrypt.

use std::{fmt, time::Duration};

use async_trait::async_trait;
use aws_config::{BehaviorVersion, retry::RetryConfig, timeout::TimeoutConfig};
use aws_sdk_kms::{
    Client,
    config::{Credentials, Region},
    error::{DisplayErrorContext, SdkError},
    primitives::Blob,
    types::DataKeySpec,
};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroize;

use super::{KeyEncryptionKey, WrapContext, WrappedKey, ensure_same_kek};
use crate::{
    crypto::KeyBytes,
    error::{Result, VaultError},
};

/// Static credentials (tests against moto, or deployments without an ambient role).
#[derive(Debug, Clone)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: Option<SecretString>,
}

/// Where the KMS key is and how to reach it. Unset fields use the AWS SDK's default chains
/// (environment, profile, instance/task role).
#[derive(Debug, Clone)]
pub struct AwsKmsConfig {
    /// Key id, key ARN, alias name (`alias/...`) or alias ARN.
    pub key_id: String,
    pub region: Option<String>,
    /// Overrides the KMS endpoint (moto, LocalStack, VPC endpoints).
    pub endpoint_url: Option<String>,
    pub credentials: Option<StaticCredentials>,
    /// Upper bound for one KMS call including retries.
    pub operation_timeout: Duration,
}

impl AwsKmsConfig {
    pub fn new(key_id: impl Into<String>) -> Self {
        Self {
            key_id: key_id.into(),
            region: None,
            endpoint_url: None,
            credentials: None,
            operation_timeout: Duration::from_secs(10),
        }
    }

    /// Builds a KMS client from this configuration (also useful to create keys in tests).
    pub async fn client(&self) -> Client {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_timeout(self.operation_timeout)
                    .build(),
            );
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url.clone());
        }
        if let Some(credentials) = &self.credentials {
            loader = loader.credentials_provider(Credentials::new(
                credentials.access_key_id.clone(),
                credentials.secret_access_key.expose_secret().to_owned(),
                credentials
                    .session_token
                    .as_ref()
                    .map(|token| token.expose_secret().to_owned()),
                None,
                "switchyard-static",
            ));
        }
        Client::new(&loader.load().await)
    }
}

/// A KEK held in AWS KMS.
pub struct AwsKmsKek {
    client: Client,
    /// The key's ARN: the stable name, whatever alias the configuration used.
    key_arn: String,
    id: String,
}

impl fmt::Debug for AwsKmsKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKmsKek").field("id", &self.id).finish()
    }
}

fn kms_error<E, R>(operation: &'static str, key_id: &str, error: &SdkError<E, R>) -> VaultError
where
    E: std::error::Error + Send + Sync + 'static,
    R: fmt::Debug,
{
    // The SDK's error text names the operation, service code and message; requests carry no
    // plaintext (the SDK never echoes request bodies), so it is safe to keep.
    VaultError::Kms {
        operation,
        key_id: key_id.to_owned(),
        message: DisplayErrorContext(error).to_string(),
    }
}

fn context_pairs(context: &WrapContext<'_>) -> [(String, String); 3] {
    [
        ("switchyard:tenant".to_owned(), context.tenant.to_owned()),
        (
            "switchyard:purpose".to_owned(),
            context.purpose.as_str().to_owned(),
        ),
        ("switchyard:version".to_owned(), context.version.to_string()),
    ]
}

fn key_from_blob(blob: Option<Blob>) -> Result<KeyBytes> {
    let mut bytes = blob.map(Blob::into_inner).ok_or(VaultError::Malformed {
        what: "KMS response without plaintext",
    })?;
    let key = KeyBytes::from_slice(&bytes);
    bytes.zeroize();
    key.ok_or(VaultError::Malformed {
        what: "KMS plaintext length",
    })
}

impl AwsKmsKek {
    /// Connects and resolves the key's ARN (`DescribeKey`), which also proves KMS is reachable
    /// and the key usable before the vault starts serving.
    pub async fn connect(config: &AwsKmsConfig) -> Result<Self> {
        if config.key_id.trim().is_empty() {
            return Err(VaultError::KekConfig {
                reason: "AWS KMS key id is empty".to_owned(),
            });
        }
        let client = config.client().await;
        let described = client
            .describe_key()
            .key_id(&config.key_id)
            .send()
            .await
            .map_err(|error| kms_error("DescribeKey", &config.key_id, &error))?;
        let metadata = described.key_metadata().ok_or(VaultError::Malformed {
            what: "DescribeKey response without metadata",
        })?;
        if !metadata.enabled() {
            return Err(VaultError::Kms {
                operation: "DescribeKey",
                key_id: config.key_id.clone(),
                message: "the key is disabled".to_owned(),
            });
        }
        let key_arn = metadata
            .arn()
            .map_or_else(|| metadata.key_id().to_owned(), ToOwned::to_owned);
        Ok(Self {
            client,
            id: format!("aws-kms:{key_arn}"),
            key_arn,
        })
    }

    pub fn key_arn(&self) -> &str {
        &self.key_arn
    }
}

#[async_trait]
impl KeyEncryptionKey for AwsKmsKek {
    fn kek_id(&self) -> &str {
        &self.id
    }

    async fn wrap(&self, key: &KeyBytes, context: &WrapContext<'_>) -> Result<WrappedKey> {
        let mut request = self
            .client
            .encrypt()
            .key_id(&self.key_arn)
            .plaintext(Blob::new(key.expose().to_vec()));
        for (name, value) in context_pairs(context) {
            request = request.encryption_context(name, value);
        }
        let output = request
            .send()
            .await
            .map_err(|error| kms_error("Encrypt", &self.key_arn, &error))?;
        let bytes = output
            .ciphertext_blob
            .map(Blob::into_inner)
            .ok_or(VaultError::Malformed {
                what: "KMS Encrypt response without ciphertext",
            })?;
        Ok(WrappedKey {
            kek_id: self.id.clone(),
            bytes,
        })
    }

    async fn unwrap(&self, wrapped: &WrappedKey, context: &WrapContext<'_>) -> Result<KeyBytes> {
        ensure_same_kek(self, wrapped)?;
        let mut request = self
            .client
            .decrypt()
            .key_id(&self.key_arn)
            .ciphertext_blob(Blob::new(wrapped.bytes.clone()));
        for (name, value) in context_pairs(context) {
            request = request.encryption_context(name, value);
        }
        let output = request.send().await.map_err(|error| {
            let unauthentic = error.as_service_error().is_some_and(|service| {
                service.is_invalid_ciphertext_exception() || service.is_incorrect_key_exception()
            });
            if unauthentic {
                VaultError::KekUnwrapFailed {
                    kek_id: self.id.clone(),
                }
            } else {
                kms_error("Decrypt", &self.key_arn, &error)
            }
        })?;
        key_from_blob(output.plaintext)
    }

    async fn generate(&self, context: &WrapContext<'_>) -> Result<(KeyBytes, WrappedKey)> {
        let mut request = self
            .client
            .generate_data_key()
            .key_id(&self.key_arn)
            .key_spec(DataKeySpec::Aes256);
        for (name, value) in context_pairs(context) {
            request = request.encryption_context(name, value);
        }
        let output = request
            .send()
            .await
            .map_err(|error| kms_error("GenerateDataKey", &self.key_arn, &error))?;
        let wrapped =
            output
                .ciphertext_blob
                .map(Blob::into_inner)
                .ok_or(VaultError::Malformed {
                    what: "KMS GenerateDataKey response without ciphertext",
                })?;
        let key = key_from_blob(output.plaintext)?;
        Ok((
            key,
            WrappedKey {
                kek_id: self.id.clone(),
                bytes: wrapped,
            },
        ))
    }
}

//! The AWS default credential chain as an `object_store` credential provider.
//!
//! object_store's own fallback knows instance metadata, ECS and web identity but not profiles,
//! SSO or `credential_process`; the SDK's chain knows them all and matches what the vault's KMS
//! provider uses, so one set of AWS settings works for both.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use object_store::CredentialProvider;
use object_store::aws::AwsCredential;
use tokio::sync::Mutex;

/// Refresh this long before expiry so a request never signs with credentials about to lapse.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub(crate) struct DefaultChain {
    provider: SharedCredentialsProvider,
    // The chain itself does not cache (the SDK caches in its clients), and instance metadata
    // must not be asked on every request.
    cached: Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

impl DefaultChain {
    pub(crate) fn new(provider: SharedCredentialsProvider) -> Self {
        Self {
            provider,
            cached: Mutex::new(None),
        }
    }
}

#[async_trait::async_trait]
impl CredentialProvider for DefaultChain {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cached = self.cached.lock().await;
        if let Some((credential, expiry)) = cached.as_ref() {
            let fresh = expiry.is_none_or(|at| {
                at.duration_since(SystemTime::now())
                    .is_ok_and(|left| left > REFRESH_MARGIN)
            });
            if fresh {
                return Ok(Arc::clone(credential));
            }
        }
        let credentials = self
            .provider
            .provide_credentials()
            .await
            .map_err(|source| object_store::Error::Unauthenticated {
                path: String::new(),
                source: Box::new(source),
            })?;
        let credential = Arc::new(AwsCredential {
            key_id: credentials.access_key_id().to_owned(),
            secret_key: credentials.secret_access_key().to_owned(),
            token: credentials.session_token().map(str::to_owned),
        });
        *cached = Some((Arc::clone(&credential), credentials.expiry()));
        Ok(credential)
    }
}

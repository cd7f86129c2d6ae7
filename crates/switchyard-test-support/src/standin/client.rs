//! The provider call stack as a test reaches the stand-in with it: the SSRF guard open to
//! 127.0.0.1 over http, a generous rate budget, and the stand-in's bearer token.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use switchyard_http::{
    AdaptiveConfig, AdaptiveLimits, BreakerConfig, BreakerRegistry, CallScope, Credential,
    CredentialError, CredentialSource, GuardedClient, InMemoryBackend, ProviderClient, Rate,
    RateLimiter, SsrfPolicy, SystemClock,
};

/// Every call carries `Authorization: Bearer {token}`, as a vault-held credential would.
#[derive(Clone)]
pub struct BearerToken(pub String);

impl CredentialSource for BearerToken {
    async fn credential(&self, _: &CallScope) -> Result<Option<Credential>, CredentialError> {
        Ok(Some(Credential::Bearer(SecretString::from(self.0.clone()))))
    }
}

/// A [`ProviderClient`] that can reach the stand-in.
pub fn provider_client<C: CredentialSource>(credentials: C) -> ProviderClient<InMemoryBackend, C> {
    let policy = SsrfPolicy::strict()
        .with_allow_http(true)
        .with_allow_cidrs(["127.0.0.1/32".parse().expect("a CIDR")]);
    let client = GuardedClient::builder(policy)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");
    ProviderClient::new(
        client,
        Arc::new(RateLimiter::in_memory(Rate::per_second(
            NonZeroU32::new(100_000).expect("non-zero"),
        ))),
        Arc::new(AdaptiveLimits::new(
            AdaptiveConfig::default(),
            Arc::new(SystemClock),
        )),
        Arc::new(BreakerRegistry::new(
            BreakerConfig::default(),
            Arc::new(SystemClock),
        )),
        credentials,
    )
}

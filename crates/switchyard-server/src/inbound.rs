//! The inbound webhook gateway as the server holds it: sources (cached for ingest), the
//! ingest writer, inbound events, the key cache for SNS certificates and Pub/Sub JWKS, and
//! the SSRF-guarded client those fetches and SNS confirmations go through.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use bytes::Bytes;
use switchyard_blob::BlobStore;
use switchyard_http::{GuardedClient, SsrfPolicy};
use switchyard_inbound::{
    events::InboundEvents,
    sources::{IngestSources, SourceStore},
    writer::IngestWriter,
};
use switchyard_webhooks::{FetchError, KeyCache, KeyFetcher};
use url::Url;

/// Everything the ingest and source routes share.
pub struct InboundGateway {
    pub sources: SourceStore,
    pub ingest_sources: IngestSources,
    pub writer: IngestWriter,
    pub events: InboundEvents,
    pub keys: KeyCache,
    pub http: GuardedClient,
    /// The public base URL (no trailing slash): `{public_url}/ingest/{source_id}`.
    pub public_url: String,
    pub default_body_limit: usize,
    pub default_dedup_window: Duration,
}

impl InboundGateway {
    pub fn ingest_url(&self, source: switchyard_core::SourceId) -> String {
        format!("{}/ingest/{source}", self.public_url)
    }
}

/// The SSRF policy from `[outbound]`.
///
/// # Errors
/// When an allow-list entry is not a CIDR.
pub fn ssrf_policy(config: &switchyard_config::OutboundConfig) -> Result<SsrfPolicy, String> {
    let cidrs = SsrfPolicy::parse_allow_list(&config.allow_cidrs.join(","))
        .map_err(|error| format!("outbound.allow_cidrs: {error}"))?;
    Ok(SsrfPolicy::strict()
        .with_allow_cidrs(cidrs)
        .with_allow_http(config.allow_http))
}

/// Fetches SNS certificates and Pub/Sub JWKS through the guarded client.
pub struct GuardedFetcher {
    pub http: GuardedClient,
}

/// Certificates and key sets are small; anything larger is not one.
const MAX_KEY_DOCUMENT: usize = 256 * 1024;

#[async_trait]
impl KeyFetcher for GuardedFetcher {
    async fn fetch(&self, url: &Url) -> Result<Bytes, FetchError> {
        let request = self
            .http
            .get(url.clone())
            .map_err(|denied| FetchError(format!("refused: {}", denied.code())))?;
        let response = self
            .http
            .send(request)
            .await
            .map_err(|error| FetchError(format!("fetch failed: {}", error.code())))?;
        if !response.status().is_success() {
            return Err(FetchError(format!("status {}", response.status().as_u16())));
        }
        let body = response
            .bytes()
            .await
            .map_err(|_| FetchError("reading the body failed".to_owned()))?;
        if body.len() > MAX_KEY_DOCUMENT {
            return Err(FetchError("key document too large".to_owned()));
        }
        Ok(body)
    }
}

/// Builds the gateway's parts that need no running task.
pub fn key_cache(http: GuardedClient) -> KeyCache {
    KeyCache::new(Arc::new(GuardedFetcher { http }))
}

/// Blob store from configuration.
///
/// # Errors
/// When the backend cannot be opened.
pub async fn open_blobs(
    config: &switchyard_config::Config,
) -> Result<BlobStore, switchyard_blob::BlobError> {
    BlobStore::open(&config.blob, &config.data_dir).await
}

//! Inbound webhook verification for Switchyard: pure functions over the raw request, no
//! database and no HTTP server.
//!
//! For `POST /ingest/{source_id}` the server:
//!
//! 1. builds a [`SourceConfig`] once, when the source is created (`POST /v1/sources`), from its
//!    `scheme`, `options` and `allow_unverified`; a [`ConfigError`] is a 422;
//! 2. for each request, builds an [`InboundRequest`] from the raw bytes and the *public* URL,
//!    and calls [`process`] with the source's secrets (current and those in their rotation
//!    grace period) and a process-wide [`KeyCache`] around its SSRF-guarded [`KeyFetcher`];
//! 3. answers an [`Inbound::Handshake`] as its [`HandshakeAction`] says (for SNS: GET the
//!    subscribe URL, then 200), stores an [`Inbound::Delivery`] under its
//!    [`Verified::delivery_id`], and turns a [`Rejection`] into a 401 problem with
//!    [`Rejection::code`].
//!
//! [`handshake`] and [`verify`] are the two halves of [`process`]; [`delivery_id`],
//! [`event_type`] and [`canonical_event`] read a request without verifying it.
//!
//! Verification works on the raw bytes only, compares in constant time after checking
//! lengths, rejects timestamps outside the tolerance in both directions (default ±300 s), and
//! fails closed. [`standard_webhooks`] also holds the signer that outbound delivery uses.
//! Schemes, options, dedup keys and event types per provider: `docs/webhooks-inbound.md`.

mod config;
mod crypto;
mod error;
mod event;
mod handshake;
mod keys;
mod request;
mod schemes;
mod secret;
pub mod standard_webhooks;

pub use config::{
    GitlabMode, HmacAlgorithm, Scheme, SchemeOptions, SignatureEncoding, SourceConfig,
};
pub use error::{ConfigError, Rejection};
pub use event::{canonical_event, delivery_id, event_type};
pub use handshake::{Handshake, HandshakeAction, HandshakeKind, HandshakeReply, handshake};
pub use keys::{FetchError, KeyCache, KeyFetcher, NoFetcher};
pub use request::InboundRequest;
pub use secret::Secret;

use time::OffsetDateTime;

/// An authentic delivery and what was learned verifying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub scheme: Scheme,
    /// The dedup key: the provider's delivery id, else the SHA-256 hex of the body.
    pub delivery_id: String,
    pub event_type: Option<String>,
    /// Which of the configured secrets matched (to tell when a previous one is still in use).
    pub secret_index: Option<usize>,
    /// The time the provider signed, when the scheme signs one.
    pub signed_at: Option<OffsetDateTime>,
    /// Who signed, for key-based schemes: the SNS topic ARN, the Pub/Sub service account.
    pub principal: Option<String>,
}

/// Verify a request with the source's scheme. Secrets are tried in order; any may match.
pub async fn verify(
    config: &SourceConfig,
    secrets: &[Secret],
    req: &InboundRequest<'_>,
    keys: &KeyCache,
) -> Result<Verified, Rejection> {
    let outcome = schemes::verify(config, secrets, req, keys).await?;
    Ok(Verified {
        scheme: config.scheme(),
        delivery_id: delivery_id(config, req),
        event_type: event_type(config, req),
        secret_index: outcome.secret_index,
        signed_at: outcome.signed_at,
        principal: outcome.principal,
    })
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    Handshake(Handshake),
    Delivery(Verified),
}

/// Handshake detection and verification in the order the providers need: a handshake the
/// provider signs is answered only once it verifies.
pub async fn process(
    config: &SourceConfig,
    secrets: &[Secret],
    req: &InboundRequest<'_>,
    keys: &KeyCache,
) -> Result<Inbound, Rejection> {
    if let Some(handshake) = handshake(config, req) {
        if handshake.verify_first {
            verify(config, secrets, req, keys).await?;
        }
        return Ok(Inbound::Handshake(handshake));
    }
    verify(config, secrets, req, keys)
        .await
        .map(Inbound::Delivery)
}

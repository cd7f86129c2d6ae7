//! `Idempotency-Key` on POST requests.
//!
//! The first request with a key claims it atomically in the store and its response is kept;
//! a repeat with the same method, path and body gets that response again (marked with
//! `idempotent-replayed: true`); a repeat with anything different is `idempotency_key_reused`
//! (422); a repeat while the first is still running is `idempotency_key_in_use` (409).
//! Server errors release the key, so the client can retry.
//!
//! Responses that show a secret once (a new API key) are kept without the secret: handlers
//! attach a [`ReplayBody`], and a replay returns that instead, so no secret is ever stored
//! outside the vault.

use std::sync::Arc;

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use switchyard_core::ErrorCode;
use switchyard_store::{IdempotencyStart, Store, StoredResponse};

use crate::{AppState, auth::Principal, error::ApiError};

pub const IDEMPOTENCY_KEY_HEADER: HeaderName = HeaderName::from_static("idempotency-key");
pub const REPLAYED_HEADER: HeaderName = HeaderName::from_static("idempotent-replayed");
const MAX_KEY_LEN: usize = 255;

/// What a replay of this response returns instead of its body, set by handlers whose
/// response holds a secret shown only once.
#[derive(Debug, Clone)]
pub struct ReplayBody(pub Bytes);

pub async fn middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(key) = request.headers().get(&IDEMPOTENCY_KEY_HEADER) else {
        return next.run(request).await;
    };
    let key = match validate_key(key) {
        Ok(key) => key,
        Err(error) => return error.into_response(),
    };
    let Some(principal) = request.extensions().get::<Principal>().copied() else {
        return ApiError::new(ErrorCode::Unauthenticated).into_response();
    };
    match run_once(state, principal.idempotency_scope(), key, request, next).await {
        Ok(response) | Err(response) => response,
    }
}

async fn run_once(
    state: AppState,
    scope: String,
    key: String,
    request: Request,
    next: Next,
) -> Result<Response, Response> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, state.api.body_limit_bytes)
        .await
        .map_err(|_| ApiError::new(ErrorCode::PayloadTooLarge).into_response())?;
    let request_hash = fingerprint(
        &parts.method,
        parts.uri.path_and_query().map_or("", |p| p.as_str()),
        &body,
    );
    let ttl = time::Duration::try_from(state.api.idempotency_ttl).unwrap_or(time::Duration::DAY);

    let claim = state
        .store
        .claim_idempotency_key(&scope, &key, &request_hash, ttl)
        .await
        .map_err(|error| ApiError::from(error).into_response())?;
    match claim {
        IdempotencyStart::Claimed => {}
        IdempotencyStart::InProgress => {
            return Err(ApiError::new(ErrorCode::IdempotencyKeyInUse)
                .with_detail("retry once the first request has finished")
                .into_response());
        }
        IdempotencyStart::Mismatch => {
            return Err(ApiError::new(ErrorCode::IdempotencyKeyReused)
                .with_detail("this key was used with a different method, path or body")
                .into_response());
        }
        IdempotencyStart::Completed(stored) => return Ok(replay(stored)),
    }

    // If the client goes away mid-request the handler future is dropped; the guard frees the
    // key so a retry is not told "in progress" until the record expires.
    let mut guard = ReleaseOnDrop::new(Arc::clone(&state.store), scope.clone(), key.clone());
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|error| ApiError::internal(error).into_response())?
        .to_bytes();

    if parts.status.is_server_error() {
        // Dropping the armed guard releases the key: a server error is worth retrying.
        return Ok(Response::from_parts(parts, Body::from(body)));
    }
    let replay_body = parts
        .extensions
        .get::<ReplayBody>()
        .map_or_else(|| body.clone(), |replay| replay.0.clone());
    let stored = StoredResponse {
        status: parts.status.as_u16(),
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: replay_body.to_vec(),
    };
    state
        .store
        .complete_idempotency_key(&scope, &key, &stored)
        .await
        .map_err(|error| ApiError::from(error).into_response())?;
    guard.disarm();
    Ok(Response::from_parts(parts, Body::from(body)))
}

fn validate_key(value: &HeaderValue) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::new(ErrorCode::InvalidHeader).with_detail(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
        ))
    };
    let key = value.to_str().map_err(|_| invalid())?;
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid());
    }
    Ok(key.to_owned())
}

/// Identifies "the same request": method, path with query, and exact body bytes.
fn fingerprint(method: &Method, path_and_query: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_str().as_bytes());
    hasher.update(b"\n");
    hasher.update(path_and_query.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    hex::encode(hasher.finalize())
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body).into_response();
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_TYPE);
    if let Some(content_type) = stored
        .content_type
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        headers.insert(header::CONTENT_TYPE, content_type);
    }
    headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

struct ReleaseOnDrop {
    claim: Option<(Arc<dyn Store>, String, String)>,
}

impl ReleaseOnDrop {
    fn new(store: Arc<dyn Store>, scope: String, key: String) -> Self {
        Self {
            claim: Some((store, scope, key)),
        }
    }

    fn disarm(&mut self) {
        self.claim = None;
    }
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        if let Some((store, scope, key)) = self.claim.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(error) = store.release_idempotency_key(&scope, &key).await {
                    tracing::warn!(%error, "could not release an idempotency key");
                }
            });
        }
    }
}

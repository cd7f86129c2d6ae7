//! Who is calling: the bearer credential is resolved once per request, in middleware, into a
//! [`Principal`] that handlers receive as an extractor.

use axum::{
    extract::{FromRequestParts, Request, State},
    http::{HeaderValue, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use switchyard_audit::Actor;
use switchyard_core::{ErrorCode, Role, TenantId};
use switchyard_store::ApiKeyPrincipal;
use switchyard_vault::AuditContext;

use crate::{AppState, admin_token, credentials, error::ApiError};

/// The authenticated caller of a `/v1` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// Holds the platform admin token: manages tenants and may act on any tenant.
    PlatformAdmin,
    /// Holds an API key of one tenant.
    TenantKey(ApiKeyPrincipal),
}

impl Principal {
    /// Allows only the platform admin.
    pub fn require_platform_admin(&self) -> Result<(), ApiError> {
        match self {
            Principal::PlatformAdmin => Ok(()),
            Principal::TenantKey(_) => Err(ApiError::new(ErrorCode::InsufficientRole)
                .with_detail("this operation needs the platform admin token")),
        }
    }

    /// Allows the platform admin, and keys of `tenant` with at least `role`. A key of another
    /// tenant gets `not_found`, exactly as if the resource did not exist, so existence never
    /// leaks across tenants.
    pub fn require_tenant(&self, tenant: TenantId, role: Role) -> Result<(), ApiError> {
        match self {
            Principal::PlatformAdmin => Ok(()),
            Principal::TenantKey(key) if key.tenant_id != tenant => {
                Err(ApiError::not_found(format_args!("tenant `{tenant}`")))
            }
            Principal::TenantKey(key) if !key.role.allows(role) => Err(ApiError::new(
                ErrorCode::InsufficientRole,
            )
            .with_detail(format!(
                "this operation needs the `{role}` role; the key has `{}`",
                key.role
            ))),
            Principal::TenantKey(_) => Ok(()),
        }
    }

    /// How the audit log names this caller.
    pub fn actor(&self) -> Actor {
        match self {
            Principal::PlatformAdmin => Actor::PlatformAdmin,
            Principal::TenantKey(key) => Actor::ApiKey { key_id: key.key_id },
        }
    }

    /// The caller and the current request id, for audited operations.
    pub fn audit_context(&self) -> AuditContext {
        AuditContext::new(self.actor()).with_request_id(crate::request_id::current())
    }

    /// Separates callers' idempotency keys: a tenant's keys never meet another's.
    pub fn idempotency_scope(&self) -> String {
        match self {
            Principal::PlatformAdmin => "platform".to_owned(),
            Principal::TenantKey(key) => format!("tenant:{}", key.tenant_id),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .copied()
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated))
    }
}

/// Resolves the bearer credential, or answers 401.
pub async fn middleware(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = match bearer_token(request.headers()) {
        Ok(token) => token.to_owned(),
        Err(error) => return unauthenticated(error),
    };
    match authenticate(&state, &token).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(error) => unauthenticated(error),
    }
}

/// A 401 carries `WWW-Authenticate`, as RFC 9110 asks; other errors pass through.
fn unauthenticated(error: ApiError) -> Response {
    let is_401 = error.code() == ErrorCode::Unauthenticated;
    let mut response = error.into_response();
    if is_401 {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

async fn authenticate(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    if token.starts_with(credentials::API_KEY_PREFIX) {
        let hash = credentials::hash_credential(token);
        return match state.store.find_active_key_by_hash(&hash).await? {
            Some(key) => Ok(Principal::TenantKey(key)),
            None => Err(ApiError::new(ErrorCode::Unauthenticated)
                .with_detail("the API key is unknown or revoked")),
        };
    }
    if admin_token::is_admin_token(state.store.as_ref(), token).await? {
        Ok(Principal::PlatformAdmin)
    } else {
        Err(ApiError::new(ErrorCode::Unauthenticated).with_detail("the token is not valid"))
    }
}

fn bearer_token(headers: &axum::http::HeaderMap) -> Result<&str, ApiError> {
    let missing = || {
        ApiError::new(ErrorCode::Unauthenticated)
            .with_detail("send `Authorization: Bearer <API key or admin token>`")
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| missing())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(missing());
    }
    Ok(token)
}

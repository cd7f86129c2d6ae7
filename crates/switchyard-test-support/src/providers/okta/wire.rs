//! Okta's wire conventions every route shares: the error body, how a credential is checked
//! (`SSWS` API tokens and OAuth access tokens with scopes), and the per-endpoint rate limits
//! signalled with `X-Rate-Limit-Limit/-Remaining/-Reset` on every answer.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    Json,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::Shared;

/// An error as Okta answers it: `{"errorCode","errorSummary","errorLink","errorId","errorCauses"}`.
#[derive(Debug, Clone)]
pub(crate) enum OktaError {
    /// No `Authorization` header, or not one Okta understands.
    InvalidSession,
    /// An unknown, revoked or expired token.
    InvalidToken,
    /// A valid token without the scope (OAuth) or right the route needs.
    AccessDenied {
        missing_scope: Option<String>,
    },
    /// `Not found: Resource not found: {id} ({kind})`.
    NotFound {
        id: String,
        kind: &'static str,
    },
    /// `E0000001`, with one cause.
    Validation {
        what: String,
        cause: String,
    },
    /// A `filter` or `search` the API cannot parse.
    InvalidSearch,
    RateLimited,
}

impl OktaError {
    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            Self::InvalidSession => (
                StatusCode::UNAUTHORIZED,
                "E0000005",
                "Invalid session".into(),
            ),
            Self::InvalidToken => (
                StatusCode::UNAUTHORIZED,
                "E0000011",
                "Invalid token provided".into(),
            ),
            Self::AccessDenied { .. } => (
                StatusCode::FORBIDDEN,
                "E0000006",
                "You do not have permission to perform the requested action".into(),
            ),
            Self::NotFound { id, kind } => (
                StatusCode::NOT_FOUND,
                "E0000007",
                format!("Not found: Resource not found: {id} ({kind})"),
            ),
            Self::Validation { what, .. } => (
                StatusCode::BAD_REQUEST,
                "E0000001",
                format!("Api validation failed: {what}"),
            ),
            Self::InvalidSearch => (
                StatusCode::BAD_REQUEST,
                "E0000031",
                "Invalid search criteria.".into(),
            ),
            Self::RateLimited => (
                StatusCode::TOO_MANY_REQUESTS,
                "E0000047",
                "API call exceeded rate limit due to too many requests.".into(),
            ),
        }
    }
}

impl IntoResponse for OktaError {
    fn into_response(self) -> Response {
        let (status, code, summary) = self.parts();
        let causes = match &self {
            Self::Validation { cause, .. } => json!([{"errorSummary": cause}]),
            _ => json!([]),
        };
        let body = json!({
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": format!("oae{}", uuid::Uuid::new_v4().simple()),
            "errorCauses": causes,
        });
        let mut response = (status, Json(body)).into_response();
        if let Self::AccessDenied {
            missing_scope: Some(scope),
        } = &self
        {
            // What Okta's resource server adds for an OAuth token lacking a scope.
            let challenge = format!(
                "Bearer realm=\"IdpMyAccountAPI\", error=\"insufficient_scope\", \
                 error_description=\"The access token provided does not contain the required scopes.\", \
                 scope=\"{scope}\""
            );
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

/// The OAuth scope a Management API call needs, by method and path.
fn required_scope(method: &Method, path: &str) -> Option<&'static str> {
    let read = *method == Method::GET;
    if path.starts_with("/api/v1/users") {
        Some(if read {
            "okta.users.read"
        } else {
            "okta.users.manage"
        })
    } else if path.starts_with("/api/v1/groups") {
        Some(if read {
            "okta.groups.read"
        } else {
            "okta.groups.manage"
        })
    } else if path.starts_with("/api/v1/apps") {
        Some(if read {
            "okta.apps.read"
        } else {
            "okta.apps.manage"
        })
    } else if path.starts_with("/api/v1/logs") {
        Some("okta.logs.read")
    } else {
        None
    }
}

/// How the caller authenticated, for routes whose answer depends on it (`/users/me`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    ApiToken,
    ServiceApp,
}

/// Checks `Authorization` on every `/api/v1` route: `SSWS {api token}` (all rights, the
/// admin who created it) or `Bearer {access token}` issued by `/oauth2/v1/token` (its
/// scopes only).
pub(crate) async fn authenticate(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let Some(scope) = required_scope(request.method(), &path) else {
        return next.run(request).await;
    };
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let caller = if let Some(token) = header.strip_prefix("SSWS ") {
        match &shared.options.api_token {
            Some(expected) if token == expected => Caller::ApiToken,
            _ => return OktaError::InvalidToken.into_response(),
        }
    } else if let Some(token) = header.strip_prefix("Bearer ") {
        match shared.oauth.scopes_of(token) {
            None => return OktaError::InvalidToken.into_response(),
            Some(granted) if !granted.iter().any(|s| s == scope) => {
                return OktaError::AccessDenied {
                    missing_scope: Some(scope.to_owned()),
                }
                .into_response();
            }
            Some(_) => Caller::ServiceApp,
        }
    } else {
        return OktaError::InvalidSession.into_response();
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// Okta's rate-limit buckets for the routes the stand-in serves, per minute (the defaults of
/// an Okta Workforce org). Each path prefix counts apart, as Okta counts endpoints apart.
pub const DEFAULT_LIMITS: &[(&str, u32)] = &[
    ("/oauth2/v1/token", 600),
    ("/api/v1/users", 600),
    ("/api/v1/groups", 500),
    ("/api/v1/apps", 100),
    ("/api/v1/logs", 120),
];

/// The budgets of every endpoint bucket, over a fixed window on the wall clock.
#[derive(Debug)]
pub(crate) struct Budgets {
    window: Duration,
    limits: Vec<(String, u32)>,
    state: Mutex<BTreeMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    resets_at: SystemTime,
    used: u32,
    /// The next answers that must be `429` whatever the budget (a test forcing a limit).
    forced: u32,
}

impl Budgets {
    pub(crate) fn new(limits: Vec<(String, u32)>, window: Duration) -> Self {
        Self {
            window,
            limits,
            state: Mutex::default(),
        }
    }

    fn bucket_of(&self, path: &str) -> (String, u32) {
        self.limits
            .iter()
            .filter(|(prefix, _)| path.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .cloned()
            .unwrap_or_else(|| ("/".to_owned(), 600))
    }

    /// The next `times` requests under the bucket of `path` answer `429`, with
    /// `X-Rate-Limit-Remaining: 0` and a reset one second away.
    pub(crate) fn force(&self, path: &str, times: u32) {
        let (prefix, _) = self.bucket_of(path);
        let now = SystemTime::now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = state.entry(prefix).or_insert(Bucket {
            resets_at: now + self.window,
            used: 0,
            forced: 0,
        });
        bucket.forced += times;
    }

    /// Spends one request of `path`'s bucket: the headers to send, and whether it is refused.
    fn take(&self, path: &str) -> (u32, u32, SystemTime, bool) {
        let (prefix, limit) = self.bucket_of(path);
        let now = SystemTime::now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = state.entry(prefix).or_insert(Bucket {
            resets_at: now + self.window,
            used: 0,
            forced: 0,
        });
        if now >= bucket.resets_at {
            bucket.resets_at = now + self.window;
            bucket.used = 0;
        }
        if bucket.forced > 0 {
            bucket.forced -= 1;
            return (limit, 0, now + Duration::from_secs(1), true);
        }
        let refused = bucket.used >= limit;
        if !refused {
            bucket.used += 1;
        }
        (limit, limit - bucket.used, bucket.resets_at, refused)
    }
}

fn write_signals(headers: &mut HeaderMap, limit: u32, remaining: u32, resets_at: SystemTime) {
    let reset = resets_at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        .ceil() as u64;
    headers.insert("x-rate-limit-limit", HeaderValue::from(limit));
    headers.insert("x-rate-limit-remaining", HeaderValue::from(remaining));
    headers.insert("x-rate-limit-reset", HeaderValue::from(reset));
}

/// Counts every request against its bucket and signals the bucket on the answer; a spent
/// bucket answers `429 E0000047` (Okta sends no `Retry-After`: clients wait for the reset).
pub(crate) async fn rate_limit(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let (limit, remaining, resets_at, refused) = shared.budgets.take(request.uri().path());
    let mut response = if refused {
        OktaError::RateLimited.into_response()
    } else {
        next.run(request).await
    };
    write_signals(response.headers_mut(), limit, remaining, resets_at);
    response
}

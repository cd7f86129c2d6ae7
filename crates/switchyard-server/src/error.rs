//! The one error type of the API and its RFC 9457 Problem Details body.
//!
//! Handlers return [`ApiError`]; it never carries internal detail to the client for 5xx
//! responses: the cause is logged once, here, with the request id that the client also sees.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use switchyard_core::ErrorCode;
use switchyard_store::StoreError;
use utoipa::ToSchema;

use crate::request_id;

/// The media type of every error response.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem, extended with a stable `code` and the `request_id`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:switchyard:error:{code}`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short summary of the problem type.
    pub title: &'static str,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request, when there is more to say than the title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The stable machine-readable code; see `docs/errors.md`.
    #[schema(example = "not_found")]
    pub code: &'static str,
    /// The id of the request, also in the `x-request-id` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// A finer stable code under `code`: why a webhook failed verification
    /// (`signature_mismatch`, `timestamp_out_of_tolerance`, …; see `docs/webhooks-inbound.md`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// An error the API returns to its caller.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    detail: Option<String>,
    reason: Option<&'static str>,
    /// Logged, never shown.
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ApiError {
    pub fn new(code: ErrorCode) -> Self {
        Self {
            code,
            detail: None,
            reason: None,
            source: None,
        }
    }

    /// Adds a client-facing explanation. Never put secrets or internal state here.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// An internal failure: the client sees only "internal", the log sees `source`.
    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            code: ErrorCode::Internal,
            detail: None,
            reason: None,
            source: Some(source.into()),
        }
    }

    /// Adds a finer stable code (see [`Problem::reason`]).
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::NotFound).with_detail(format!("{what} was not found"))
    }

    /// The client-facing explanation, if any.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let code = match &error {
            // The pool could not hand out a connection in time: the database is overloaded
            // or down, which a client may retry.
            StoreError::Database(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed) => {
                ErrorCode::Unavailable
            }
            _ => ErrorCode::Internal,
        };
        Self {
            code,
            detail: None,
            reason: None,
            source: Some(Box::new(error)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let request_id = request_id::current();
        if status.is_server_error() {
            let cause = self.source.as_deref().map(error_chain);
            tracing::error!(
                code = %self.code,
                request_id = request_id.as_deref().unwrap_or(""),
                cause = cause.as_deref().unwrap_or("none"),
                "request failed"
            );
        }
        let problem = Problem {
            problem_type: format!("urn:switchyard:error:{}", self.code),
            title: self.code.title(),
            status: status.as_u16(),
            // 5xx responses never describe internals.
            detail: if status.is_server_error() {
                None
            } else {
                self.detail
            },
            code: self.code.as_str(),
            request_id,
            reason: self.reason,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

/// "outer: inner: innermost", so one log line shows the whole cause.
fn error_chain(error: &(dyn std::error::Error + Send + Sync + 'static)) -> String {
    let mut text = error.to_string();
    let mut source: Option<&(dyn std::error::Error + 'static)> = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Answers requests that match no route.
pub async fn route_not_found() -> ApiError {
    ApiError::new(ErrorCode::RouteNotFound)
}

/// Answers a known route called with a method it does not serve.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed)
}

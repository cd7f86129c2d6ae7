//! Every request the stand-in answered, for tests that check what a client sent.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, PoisonError},
};

use axum::{
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::Response,
};

use super::state::Shared;

/// Request headers the log keeps. `authorization` is kept as its scheme only (`Bearer`):
/// credentials stay out of anything a test might print.
const KEPT_HEADERS: &[&str] = &[
    "accept",
    "content-type",
    "idempotency-key",
    "if-none-match",
    "prefer",
    "traceparent",
    "user-agent",
    "x-github-api-version",
];

/// One answered request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    /// The kept headers by lower-case name (several values joined with `, `).
    pub headers: BTreeMap<String, String>,
    /// The status answered, `304` for a not-modified page, the injected one for a failure.
    pub status: u16,
}

#[derive(Debug, Default)]
pub(crate) struct RequestLog(Mutex<Vec<LoggedRequest>>);

impl RequestLog {
    pub(crate) fn entries(&self) -> Vec<LoggedRequest> {
        self.lock().clone()
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<LoggedRequest>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) async fn record(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    record_into(&shared.log, request, next).await
}

/// Answers the request and logs it in `log` (for the provider stand-ins' own state).
pub(crate) async fn record_into(log: &RequestLog, request: Request, next: Next) -> Response {
    let mut headers = BTreeMap::new();
    for name in KEPT_HEADERS {
        let values: Vec<&str> = request
            .headers()
            .get_all(*name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        if !values.is_empty() {
            headers.insert((*name).to_owned(), values.join(", "));
        }
    }
    if let Some(scheme) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_whitespace().next())
    {
        headers.insert("authorization".to_owned(), scheme.to_owned());
    }
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let response = next.run(request).await;
    log.lock().push(LoggedRequest {
        method,
        path,
        query,
        headers,
        status: response.status().as_u16(),
    });
    response
}

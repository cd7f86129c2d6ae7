//! Failures a test injects: the next requests under a path prefix get a chosen status, body
//! and headers instead of their real answer. Injected responses are sent exactly as given,
//! before authentication and the rate limit (no rate-limit headers are added to them).

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, PoisonError},
};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderName, HeaderValue, StatusCode, header},
    middleware::Next,
    response::Response,
};
use serde_json::Value;

use super::state::Shared;

/// A failure for the next `times` requests whose path starts with `path_prefix`.
///
/// ```ignore
/// standin.inject(Failure::new("/link/items", 429).header("retry-after", "2"));
/// standin.inject(
///     Failure::new("/offset/items", 400).json_body(json!({"code": "rate_limit_exceeded"})),
/// );
/// ```
#[derive(Debug, Clone)]
pub struct Failure {
    path_prefix: String,
    status: StatusCode,
    times: u32,
    body: Option<Value>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Failure {
    /// Once, with no body.
    ///
    /// # Panics
    /// When `status` is not an HTTP status code: a mistake in the test.
    pub fn new(path_prefix: impl Into<String>, status: u16) -> Self {
        Self {
            path_prefix: path_prefix.into(),
            status: StatusCode::from_u16(status)
                .unwrap_or_else(|_| panic!("{status} is not an HTTP status code")),
            times: 1,
            body: None,
            headers: Vec::new(),
        }
    }

    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }

    /// A JSON body (sent with `content-type: application/json`).
    pub fn json_body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// # Panics
    /// When the name or value is not a valid header: a mistake in the test.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name =
            HeaderName::try_from(name).unwrap_or_else(|_| panic!("{name:?} is not a header name"));
        let value = HeaderValue::try_from(value)
            .unwrap_or_else(|_| panic!("{value:?} is not a header value"));
        self.headers.push((name, value));
        self
    }

    fn response(&self) -> Response {
        let mut response = Response::new(match &self.body {
            Some(body) => Body::from(body.to_string()),
            None => Body::empty(),
        });
        *response.status_mut() = self.status;
        if self.body.is_some() {
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        for (name, value) in &self.headers {
            response.headers_mut().append(name.clone(), value.clone());
        }
        response
    }
}

/// Pending failures, oldest first; the first whose prefix matches answers.
#[derive(Debug, Default)]
pub(crate) struct Faults(Mutex<VecDeque<Failure>>);

impl Faults {
    pub(crate) fn push(&self, failure: Failure) {
        if failure.times > 0 {
            self.lock().push_back(failure);
        }
    }

    /// The response for a failure due on `path`, counting it off.
    pub(crate) fn take(&self, path: &str) -> Option<Response> {
        let mut pending = self.lock();
        let index = pending
            .iter()
            .position(|failure| path.starts_with(&failure.path_prefix))?;
        let failure = &mut pending[index];
        let response = failure.response();
        failure.times -= 1;
        if failure.times == 0 {
            pending.remove(index);
        }
        Some(response)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Failure>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) async fn inject(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    if !shared.options.latency.is_zero() {
        tokio::time::sleep(shared.options.latency).await;
    }
    match shared.faults.take(request.uri().path()) {
        Some(response) => response,
        None => next.run(request).await,
    }
}

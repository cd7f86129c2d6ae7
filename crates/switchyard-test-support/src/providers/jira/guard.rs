//! The layers in front of the routes: the request log, forced failures, Jira's rate limit
//! and its authentication (basic on the site, bearer on the 3LO gateway).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use axum::{
    Json,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use serde_json::json;
use time::{OffsetDateTime, macros::format_description};

use super::Shared;
use super::routes::jira_error;
use crate::standin::{Failure, RateLimit, request_log};

type App = State<Arc<Shared>>;

pub(crate) async fn log(State(shared): App, request: Request, next: Next) -> Response {
    request_log::record_into(&shared.log, request, next).await
}

pub(crate) async fn forced_failures(State(shared): App, request: Request, next: Next) -> Response {
    match shared.faults.take(request.uri().path()) {
        Some(response) => response,
        None => next.run(request).await,
    }
}

pub(crate) async fn authenticate(State(shared): App, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let options = &shared.options;
    if let Some(rest) = request.uri().path().strip_prefix("/ex/jira/") {
        let cloud_id = rest.split('/').next().unwrap_or_default();
        if presented.strip_prefix("Bearer ") != Some(options.access_token.as_str()) {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"code": 401, "message": "Unauthorized"})),
            )
                .into_response();
        }
        if cloud_id != options.cloud_id {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({"code": 404, "message": "Not Found"})),
            )
                .into_response();
        }
        return next.run(request).await;
    }
    let expected = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", options.email, options.api_token));
    if presented.strip_prefix("Basic ") == Some(expected.as_str()) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")],
        "Client must be authenticated to access this resource.",
    )
        .into_response()
}

/// A fixed-window request budget (Jira's real limits are cost-based; a window is enough
/// to make a client meet a spent budget).
#[derive(Debug)]
pub(crate) struct Budget {
    rate: RateLimit,
    window: Mutex<(SystemTime, u32)>,
}

impl Budget {
    pub(crate) fn new(rate: RateLimit) -> Self {
        Self {
            rate,
            window: Mutex::new((SystemTime::now() + rate.window, 0)),
        }
    }

    /// Spends one request: `Ok(remaining)`, or `Err(wait)` when the budget is spent.
    fn take(&self) -> Result<u32, Duration> {
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let now = SystemTime::now();
        if now >= window.0 {
            *window = (now + self.rate.window, 0);
        }
        if window.1 >= self.rate.limit {
            return Err(window.0.duration_since(now).unwrap_or_default());
        }
        window.1 += 1;
        Ok(self.rate.limit - window.1)
    }
}

/// `X-RateLimit-Reset` as Atlassian documents it: `yyyy-MM-ddTHH:mmZ`, rounded up.
fn reset_header(wait: Duration) -> String {
    let at = OffsetDateTime::now_utc() + wait + Duration::from_secs(59);
    at.format(format_description!("[year]-[month]-[day]T[hour]:[minute]Z"))
        .unwrap_or_default()
}

/// Jira's 429: `Retry-After`, `X-RateLimit-Reset` and `RateLimit-Reason`.
pub(crate) fn throttled(path_prefix: &str, retry_after: u64) -> Failure {
    Failure::new(path_prefix, 429)
        .json_body(json!({"errorMessages": ["Rate limit exceeded."], "errors": {}}))
        .header("retry-after", &retry_after.to_string())
        .header(
            "x-ratelimit-reset",
            &reset_header(Duration::from_secs(retry_after)),
        )
        .header("ratelimit-reason", "jira-burst-based")
}

pub(crate) async fn rate_limit(State(shared): App, request: Request, next: Next) -> Response {
    let Some(budget) = &shared.budget else {
        return next.run(request).await;
    };
    let limit = budget.rate.limit;
    match budget.take() {
        Err(wait) => {
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            let mut response = jira_error(
                StatusCode::TOO_MANY_REQUESTS,
                &["Rate limit exceeded."],
                json!({}),
            );
            let headers = response.headers_mut();
            signal(headers, limit, 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            if let Ok(value) = HeaderValue::from_str(&reset_header(wait)) {
                headers.insert("x-ratelimit-reset", value);
            }
            headers.insert(
                "ratelimit-reason",
                HeaderValue::from_static("jira-burst-based"),
            );
            response
        }
        Ok(remaining) => {
            let mut response = next.run(request).await;
            signal(response.headers_mut(), limit, remaining);
            response
        }
    }
}

fn signal(headers: &mut HeaderMap, limit: u32, remaining: u32) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    let near = u64::from(remaining) * 5 < u64::from(limit);
    headers.insert(
        "x-ratelimit-nearlimit",
        HeaderValue::from_static(if near { "true" } else { "false" }),
    );
}

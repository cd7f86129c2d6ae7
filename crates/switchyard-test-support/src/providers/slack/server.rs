//! The HTTP side: every `/api/{method}` request is logged, may meet an injected failure,
//! spends its method's rate budget, has its arguments and token read, and is answered with
//! Slack's headers.

use std::sync::Arc;

use axum::{
    Router,
    body::Bytes,
    extract::{Path, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header},
    middleware::{self, Next},
    response::Response,
    routing::any,
};
use serde_json::json;

use super::{
    methods,
    state::{MethodCall, SlackShared},
    wire::{self, Args, BodyKind, SlackError, json_response},
};
use crate::standin::request_log;

pub(crate) fn router(shared: Arc<SlackShared>) -> Router {
    Router::new()
        .route("/api/{method}", any(api))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            inject_failures,
        ))
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), log))
        .with_state(shared)
}

async fn log(State(shared): State<Arc<SlackShared>>, request: Request, next: Next) -> Response {
    shared.record_arrival(request.uri().path());
    request_log::record_into(&shared.log, request, next).await
}

async fn inject_failures(
    State(shared): State<Arc<SlackShared>>,
    request: Request,
    next: Next,
) -> Response {
    match shared.faults.take(request.uri().path()) {
        Some(response) => response,
        None => next.run(request).await,
    }
}

async fn api(
    State(shared): State<Arc<SlackShared>>,
    Path(method): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut response = answer(&shared, &method, &uri, &headers, &body);
    let req_id = uuid::Uuid::new_v4().simple().to_string();
    if let Ok(value) = HeaderValue::from_str(&req_id) {
        response.headers_mut().insert("x-slack-req-id", value);
    }
    response
}

fn answer(
    shared: &SlackShared,
    method: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let Some(spec) = methods::spec(method) else {
        return json_response(StatusCode::OK, &SlackError::new("unknown_method").body());
    };
    if let Err(retry_after) = shared.spend(spec.name, spec.per_minute) {
        return rate_limited(retry_after);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let parsed = Args::parse(uri.query(), headers, body);
    let (args, kind) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return json_response(StatusCode::OK, &error.body()),
    };
    // About one message a second per channel, on top of the method's minute budget.
    if spec.name == "chat.postMessage"
        && let Some(channel) = args.str("channel")
        && let Err(retry_after) = shared.spend_channel_post(channel)
    {
        return rate_limited(retry_after);
    }
    let mut granted = None;
    let outcome = shared
        .authenticate(wire::presented_token(headers, &args))
        .and_then(|grant| {
            let result = methods::call(shared, spec.name, &args, &grant);
            granted = Some(grant);
            result
        });
    shared.record_call(MethodCall {
        method: spec.name.to_owned(),
        args: args.0.clone(),
        content_type,
        error: outcome.as_ref().err().map(|e| e.error.clone()),
    });
    let mut body = match outcome {
        Ok(body) => body,
        Err(error) => error.body(),
    };
    if kind == BodyKind::JsonWithoutCharset && body["ok"] == json!(true) {
        body["warning"] = json!("missing_charset");
        body["response_metadata"]["warnings"] = json!(["missing_charset"]);
    }
    let mut response = json_response(StatusCode::OK, &body);
    if let Some(grant) = granted {
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&grant.scopes.join(",")) {
            headers.insert("x-oauth-scopes", value);
        }
        if let Ok(value) = HeaderValue::from_str(&spec.accepted.join(",")) {
            headers.insert("x-accepted-oauth-scopes", value);
        }
    }
    response
}

/// Slack's rate-limit answer: 429, `Retry-After` in seconds and `ratelimited`; nothing done.
fn rate_limited(retry_after: u64) -> Response {
    let mut response = json_response(
        StatusCode::TOO_MANY_REQUESTS,
        &SlackError::new("ratelimited").body(),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

//! `Authorization: Bearer <token>` on every route when the options set a token.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::Response,
};

use super::{
    problem::{Dialect, Problem},
    state::Shared,
};

pub(crate) async fn require_token(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = shared.options.token.as_deref() else {
        return next.run(request).await;
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let problem = match presented {
        Some(token) if token == expected => return next.run(request).await,
        Some(_) => Problem::BadCredentials,
        None => Problem::MissingCredentials,
    };
    let mut response = problem.response(Dialect::of_path(request.uri().path()));
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

//! Who is calling: the personal access token, an installation token this server issued, or
//! (on `/app/…` routes, checked there) an App JWT. GitHub takes `Bearer` and `token` alike.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::Response,
};

use super::{Shared, errors};

/// The credential a request was answered for, in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    /// The personal access token.
    User,
    /// An installation token.
    Installation,
}

/// The token in `Authorization: Bearer …` or `Authorization: token …`.
pub(crate) fn presented(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        .then(|| token.trim())
}

pub(crate) async fn authenticate(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
    next: Next,
) -> Response {
    // App routes take a JWT, which the route itself verifies.
    if request.uri().path().starts_with("/app/") {
        return next.run(request).await;
    }
    let caller = match presented(request.headers()) {
        None => return errors::requires_authentication(),
        Some(token) if shared.options.token.as_deref() == Some(token) => Caller::User,
        Some(token) if shared.installations.accepts(token) => Caller::Installation,
        Some(_) => return errors::bad_credentials(),
    };
    request.extensions_mut().insert(caller.clone());
    let mut response = next.run(request).await;
    // A classic token's scopes are on every answer to it; other tokens carry none.
    if caller == Caller::User
        && let Ok(scopes) = HeaderValue::from_str(&shared.options.scopes.join(", "))
    {
        response.headers_mut().insert("x-oauth-scopes", scopes);
    }
    response
}

/// The REST API versions GitHub serves; another `X-GitHub-Api-Version` is a `400`.
const API_VERSIONS: &[&str] = &["2022-11-28", "2026-03-10"];

pub(crate) async fn api_version(request: Request, next: Next) -> Response {
    let asked = request
        .headers()
        .get("x-github-api-version")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let selected = match asked {
        None => API_VERSIONS[0].to_owned(),
        Some(version) if API_VERSIONS.contains(&version.as_str()) => version,
        Some(version) => {
            return errors::error(
                StatusCode::BAD_REQUEST,
                &format!("API version {version} is not supported."),
                "https://docs.github.com/rest/about-the-rest-api/api-versions",
            );
        }
    };
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&selected) {
        response
            .headers_mut()
            .insert("x-github-api-version-selected", value);
    }
    response
}

//! GitHub's error answers: `{"message","documentation_url","status"}` with the status as a
//! string, as `api.github.com` sends them today.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

/// The documentation link GitHub puts on generic errors.
pub(crate) const REST_DOCS: &str = "https://docs.github.com/rest";

pub(crate) fn error(status: StatusCode, message: &str, documentation_url: &str) -> Response {
    let body = json!({
        "message": message,
        "documentation_url": documentation_url,
        "status": status.as_str(),
    });
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

pub(crate) fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not Found", REST_DOCS)
}

pub(crate) fn bad_credentials() -> Response {
    error(StatusCode::UNAUTHORIZED, "Bad credentials", REST_DOCS)
}

pub(crate) fn requires_authentication() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "Requires authentication",
        REST_DOCS,
    )
}

pub(crate) fn not_accessible_by_integration(documentation_url: &str) -> Response {
    error(
        StatusCode::FORBIDDEN,
        "Resource not accessible by integration",
        documentation_url,
    )
}

/// `422` for a request body missing a required field.
pub(crate) fn missing_field(field: &str, documentation_url: &str) -> Response {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        &format!("Invalid request.\n\n\"{field}\" wasn't supplied."),
        documentation_url,
    )
}

/// `400` for a body that is not JSON.
pub(crate) fn problems_parsing_json(documentation_url: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "Problems parsing JSON",
        documentation_url,
    )
}

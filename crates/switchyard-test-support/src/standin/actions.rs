//! The credential check and the one write action.

use std::sync::Arc;

use axum::{
    Json,
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{
    problem::{Dialect, Problem},
    state::{SavedResponse, Shared},
};

/// `GET /me` → `{"id":1,"login":…}` with `x-oauth-scopes: <scopes, comma-separated>`, as
/// GitHub's `GET /user` answers a token check.
pub(crate) async fn me(State(shared): State<Arc<Shared>>) -> Response {
    let mut response = Json(json!({ "id": 1, "login": shared.options.login })).into_response();
    if let Ok(scopes) = HeaderValue::from_str(&shared.options.scopes.join(", ")) {
        response.headers_mut().insert("x-oauth-scopes", scopes);
    }
    response
}

/// `POST /items` with `{"name":…,"email":…}` → `201` and the new item. With an
/// `Idempotency-Key`, the first response for that key (whatever its status) is saved and
/// replayed for every later request with the key, marked `idempotent-replayed: true`, as
/// Stripe does.
pub(crate) async fn create_item(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let Some(key) = key else {
        return render(&create(&shared, &body), false);
    };
    let mut saved = shared.idempotency();
    if let Some(first) = saved.get(&key) {
        return render(first, true);
    }
    let first = create(&shared, &body);
    saved.insert(key, first.clone());
    render(&first, false)
}

fn create(shared: &Shared, body: &[u8]) -> SavedResponse {
    let outcome = new_item(shared, body);
    let (status, body) = match outcome {
        Ok(item) => (StatusCode::CREATED, item),
        Err(problem) => (problem.status(), problem.body(Dialect::Rest)),
    };
    SavedResponse {
        status,
        body: Bytes::from(body.to_string()),
    }
}

fn new_item(shared: &Shared, body: &[u8]) -> Result<Value, Problem> {
    let request: Value = serde_json::from_slice(body).map_err(|_| Problem::InvalidJson)?;
    let field = |name: &'static str| {
        request[name]
            .as_str()
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
            .ok_or(Problem::MissingField(name))
    };
    let (name, email) = (field("name")?, field("email")?);
    let mut data = shared.data();
    let set = data.stored_mut().map_err(|_| Problem::ReadOnly)?;
    let item = set.create(name, email, shared.clock.stamp());
    Ok(json!(item))
}

fn render(saved: &SavedResponse, replayed: bool) -> Response {
    let mut response = Response::new(Body::from(saved.body.clone()));
    *response.status_mut() = saved.status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

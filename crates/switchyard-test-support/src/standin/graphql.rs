//! The `graphql_relay` style: one `POST /graphql` whose `items` connection pages by Relay
//! cursors. The document is not parsed; it must only mention `items`.

use std::sync::Arc;

use axum::{
    Json,
    body::Bytes,
    extract::State,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{
    params::{PageLimits, check_page_size},
    problem::{Dialect, Problem, respond},
    state::Shared,
    tokens::Cursor,
};

/// GitHub's connection bounds: `first` is required, 1 to 100.
const FIRST_LIMITS: PageLimits = PageLimits {
    default: 0,
    max: 100,
};

/// `POST /graphql` with `{"query":"…items…","variables":{"first":N,"after":"…"|null}}` →
/// `{"data":{"items":{"edges":[{"cursor":…,"node":{…}}],"pageInfo":{"hasNextPage":…,"endCursor":…}}}}`.
pub(crate) async fn graphql(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    respond(Dialect::GraphQl, items_connection(&shared, &body))
}

fn items_connection(shared: &Shared, body: &[u8]) -> Result<Response, Problem> {
    let request: Value = serde_json::from_slice(body).map_err(|_| Problem::InvalidJson)?;
    let mentions_items = request["query"]
        .as_str()
        .is_some_and(|query| query.contains("items"));
    if !mentions_items {
        return Err(Problem::UnknownQuery);
    }
    let variables = &request["variables"];
    let first = variables["first"]
        .as_u64()
        .and_then(|first| usize::try_from(first).ok())
        .ok_or_else(|| Problem::InvalidParameter {
            name: "first",
            reason: "a whole number is required".into(),
        })?;
    let first = check_page_size("first", first, FIRST_LIMITS)?;
    let after = match &variables["after"] {
        Value::Null => None,
        Value::String(token) => match Cursor::decode(token) {
            Ok(Cursor::Id(id)) => Some(id),
            _ => return Err(Problem::InvalidCursor),
        },
        _ => return Err(Problem::InvalidCursor),
    };
    let window = shared.data().after_id(after.as_deref(), first);
    let edges: Vec<Value> = window
        .items
        .iter()
        .map(|item| json!({ "cursor": Cursor::Id(item.id.clone()).encode(), "node": item }))
        .collect();
    let end_cursor = edges
        .last()
        .map_or(Value::Null, |edge| edge["cursor"].clone());
    Ok(Json(json!({
        "data": { "items": {
            "edges": edges,
            "pageInfo": { "hasNextPage": window.more, "endCursor": end_cursor },
        } }
    }))
    .into_response())
}

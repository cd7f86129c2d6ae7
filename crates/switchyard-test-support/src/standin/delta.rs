//! The `delta_token` style, shaped like Microsoft Graph's delta queries.
//!
//! A round is a walk of pages joined by `@odata.nextLink` (a `$skiptoken`); its last page
//! carries `@odata.deltaLink` (a `$deltatoken`). The first round lists every item; a round
//! started from a delta token lists what changed since that token, deletions as
//! `{"id":…,"@removed":{"reason":"deleted"}}`. A delta token names the change log's position
//! when its round *began*, so a change made during a round is listed again by the next one:
//! changes arrive at least once, never lost.

use std::sync::Arc;

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, Uri},
    response::Response,
};
use serde_json::{Map, Value, json};

use super::{
    dataset::{Change, Version},
    listing::list_response,
    params::{PageLimits, Params, check_page_size},
    problem::{Dialect, Problem, respond},
    state::Shared,
    tokens::{SkipToken, decode_delta_token, encode_delta_token},
};

/// Graph's page size comes from `Prefer: odata.maxpagesize=N`: 100 unless asked, at most 999.
const DELTA_LIMITS: PageLimits = PageLimits {
    default: 100,
    max: 999,
};

/// `GET /delta/items[?$deltatoken=…|?$skiptoken=…]` →
/// `{"value":[…],"@odata.nextLink":"<abs>"}` or, on a round's last page,
/// `{"value":[…],"@odata.deltaLink":"<abs>/delta/items?$deltatoken=…"}`.
pub(crate) async fn delta_items(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    respond(Dialect::Graph, delta_page(&shared, &uri, &headers))
}

fn delta_page(shared: &Shared, uri: &Uri, headers: &HeaderMap) -> Result<Response, Problem> {
    let params = Params::of(uri)?;
    let asked_size = max_page_size(headers)?;
    let page_size = asked_size.unwrap_or(DELTA_LIMITS.default);
    let data = shared.data();
    let now = data.version();
    let still_valid =
        |version: Version| version.generation == now.generation && version.sequence <= now.sequence;
    let round = match (params.get("$deltatoken"), params.get("$skiptoken")) {
        (None, None) => SkipToken {
            since: None,
            began: now,
            after: String::new(),
        },
        (Some(token), None) => {
            let since = decode_delta_token(token).map_err(|_| Problem::ResyncRequired)?;
            if !still_valid(since) {
                return Err(Problem::ResyncRequired);
            }
            SkipToken {
                since: Some(since.sequence),
                began: now,
                after: String::new(),
            }
        }
        (None, Some(token)) => {
            let round = SkipToken::decode(token).map_err(|_| Problem::InvalidCursor)?;
            if !still_valid(round.began) {
                return Err(Problem::ResyncRequired);
            }
            round
        }
        (Some(_), Some(_)) => {
            return Err(Problem::InvalidParameter {
                name: "$skiptoken",
                reason: "cannot be combined with $deltatoken".into(),
            });
        }
    };
    let after = (!round.after.is_empty()).then_some(round.after.as_str());
    let window = data.changes(round.since, after, page_size);
    drop(data);

    let mut body = Map::new();
    let value: Vec<Value> = window.items.iter().map(render).collect();
    let link = match window.items.last() {
        Some(last) if window.more => {
            let next = SkipToken {
                after: last.id().to_owned(),
                ..round
            };
            (
                "@odata.nextLink",
                format!("/delta/items?$skiptoken={}", next.encode()),
            )
        }
        _ => (
            "@odata.deltaLink",
            format!(
                "/delta/items?$deltatoken={}",
                encode_delta_token(round.began)
            ),
        ),
    };
    body.insert("value".into(), Value::Array(value));
    body.insert(link.0.into(), Value::String(shared.url(&link.1)));
    let mut response = list_response(headers, &Value::Object(body), None);
    if let Some(size) = asked_size
        && let Ok(applied) = HeaderValue::from_str(&format!("odata.maxpagesize={size}"))
    {
        response.headers_mut().insert("preference-applied", applied);
    }
    Ok(response)
}

fn render(change: &Change) -> Value {
    match change {
        Change::Present(item) => json!(item),
        Change::Removed(id) => json!({ "id": id, "@removed": { "reason": "deleted" } }),
    }
}

/// `Prefer: odata.maxpagesize=N`, among other preferences, when asked for.
fn max_page_size(headers: &HeaderMap) -> Result<Option<usize>, Problem> {
    let asked = headers
        .get_all("prefer")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|preference| preference.trim().strip_prefix("odata.maxpagesize="));
    let Some(asked) = asked else {
        return Ok(None);
    };
    let size = asked
        .trim()
        .parse()
        .map_err(|_| Problem::InvalidParameter {
            name: "odata.maxpagesize",
            reason: "must be a whole number".into(),
        })?;
    check_page_size("odata.maxpagesize", size, DELTA_LIMITS).map(Some)
}

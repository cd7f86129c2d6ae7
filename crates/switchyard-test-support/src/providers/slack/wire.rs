//! The Web API's wire format: arguments from the query string, a form body or a JSON body;
//! the token from `Authorization: Bearer` or the `token` argument; answers that are HTTP 200
//! with `"ok"` in the body, and the headers Slack sends with them.

use std::collections::BTreeMap;

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::{Map, Value, json};

/// A method's arguments, whatever carried them. JSON bodies keep their types; form and query
/// values are strings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Args(pub BTreeMap<String, Value>);

impl Args {
    /// Query parameters, then the body's (a body argument wins, as it is the later one).
    pub(crate) fn parse(
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(Self, BodyKind), SlackError> {
        let mut args = BTreeMap::new();
        for (name, value) in form_pairs(query.unwrap_or_default().as_bytes())? {
            args.insert(name, Value::String(value));
        }
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let kind = if body.is_empty() {
            BodyKind::None
        } else if content_type.starts_with("application/json") {
            let Value::Object(map) =
                serde_json::from_slice(body).map_err(|_| SlackError::new("invalid_json"))?
            else {
                return Err(SlackError::new("json_not_object"));
            };
            args.extend(map);
            if content_type.contains("charset=utf-8") {
                BodyKind::Json
            } else {
                BodyKind::JsonWithoutCharset
            }
        } else if content_type.starts_with("application/x-www-form-urlencoded") {
            for (name, value) in form_pairs(body)? {
                args.insert(name, Value::String(value));
            }
            BodyKind::Form
        } else {
            return Err(SlackError::new("invalid_post_type"));
        };
        Ok((Self(args), kind))
    }

    /// A string argument; an empty one counts as absent.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A boolean written `true`/`1` (form) or `true` (JSON).
    pub fn flag(&self, name: &str) -> bool {
        match self.0.get(name) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true" || s == "1",
            Some(Value::Number(n)) => n.as_u64() == Some(1),
            _ => false,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// `limit`: absent means everything; 1 to 1,000 otherwise (`invalid_limit`).
    pub(crate) fn limit(&self) -> Result<Option<usize>, SlackError> {
        let text = match self.0.get("limit") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) if s.is_empty() => return Ok(None),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(SlackError::new("invalid_limit")),
        };
        match text.parse::<usize>() {
            // `limit=0` is Slack's "no limit".
            Ok(0) => Ok(None),
            Ok(n) if n <= MAX_LIMIT => Ok(Some(n)),
            _ => Err(SlackError::new("invalid_limit")),
        }
    }
}

/// The most `limit` a list method takes.
pub(crate) const MAX_LIMIT: usize = 1_000;

/// How the arguments came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    None,
    Form,
    Json,
    /// `application/json` without `; charset=utf-8`: accepted with a `missing_charset`
    /// warning, as Slack does.
    JsonWithoutCharset,
}

fn form_pairs(bytes: &[u8]) -> Result<Vec<(String, String)>, SlackError> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes)
        .map_err(|_| SlackError::new("invalid_form_data"))
}

/// The token a request presents: the bearer header, else the `token` argument.
pub(crate) fn presented_token<'a>(headers: &'a HeaderMap, args: &'a Args) -> Option<&'a str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .or_else(|| args.str("token"))
}

/// An `{"ok": false, "error": …}` answer, with any extra fields (`needed`, `provided`).
#[derive(Debug, Clone, PartialEq)]
pub struct SlackError {
    pub error: String,
    pub extra: Map<String, Value>,
}

impl SlackError {
    pub fn new(error: &str) -> Self {
        Self {
            error: error.to_owned(),
            extra: Map::new(),
        }
    }

    /// `missing_scope` with the scope the method needs and the ones the token has.
    pub(crate) fn missing_scope(needed: &str, provided: &[String]) -> Self {
        let mut error = Self::new("missing_scope");
        error.extra.insert("needed".into(), json!(needed));
        error
            .extra
            .insert("provided".into(), json!(provided.join(",")));
        error
    }

    pub(crate) fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("ok".into(), json!(false));
        body.insert("error".into(), json!(self.error));
        body.extend(self.extra.clone());
        Value::Object(body)
    }
}

/// A JSON answer with Slack's content type.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// `{"ok": true, …}` with the method's fields.
pub(crate) fn ok(fields: Value) -> Value {
    let mut body = Map::new();
    body.insert("ok".into(), json!(true));
    if let Value::Object(fields) = fields {
        body.extend(fields);
    }
    Value::Object(body)
}

/// Opaque cursors, base64 of `{kind}:{last id}` as Slack's look (`dXNlcjpVMEc5V0ZYTlo=` is
/// `user:U0G9WFXNZ`). A cursor of another kind, or not base64, is `invalid_cursor`.
pub(crate) fn encode_cursor(kind: &str, last: &str) -> String {
    STANDARD.encode(format!("{kind}:{last}"))
}

pub(crate) fn decode_cursor(kind: &str, args: &Args) -> Result<Option<String>, SlackError> {
    let Some(cursor) = args.str("cursor") else {
        return Ok(None);
    };
    let invalid = || SlackError::new("invalid_cursor");
    let bytes = STANDARD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let last = text
        .strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix(':'))
        .filter(|last| !last.is_empty())
        .ok_or_else(invalid)?;
    Ok(Some(last.to_owned()))
}

/// One page of ids after `after` (exclusive), at most `limit`, and the cursor to the next.
pub(crate) fn page<'a>(
    kind: &str,
    ids: impl Iterator<Item = &'a String>,
    after: Option<&str>,
    limit: Option<usize>,
) -> (Vec<&'a String>, String) {
    let mut rest = ids.filter(|id| after.is_none_or(|after| id.as_str() > after));
    let limit = limit.unwrap_or(usize::MAX);
    let taken: Vec<&String> = rest.by_ref().take(limit).collect();
    let next = match taken.last() {
        Some(last) if rest.next().is_some() => encode_cursor(kind, last),
        _ => String::new(),
    };
    (taken, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_other_kinds() {
        let cursor = encode_cursor("user", "U0G9WFXNZ");
        assert_eq!(
            cursor, "dXNlcjpVMEc5V0ZYTlo=",
            "the description's own example"
        );
        let args = |c: &str| Args([("cursor".to_owned(), json!(c))].into());
        assert_eq!(
            decode_cursor("user", &args(&cursor)).unwrap().as_deref(),
            Some("U0G9WFXNZ")
        );
        assert!(decode_cursor("channel", &args(&cursor)).is_err());
        assert!(decode_cursor("user", &args("not base64!")).is_err());
    }

    #[test]
    fn pages_end_with_an_empty_cursor() {
        let ids: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let (first, next) = page("x", ids.iter(), None, Some(2));
        assert_eq!(first, [&ids[0], &ids[1]]);
        let (second, last) = page("x", ids.iter(), Some("b"), Some(2));
        assert_eq!((second, last.as_str()), (vec![&ids[2]], ""));
        assert!(!next.is_empty());
    }
}

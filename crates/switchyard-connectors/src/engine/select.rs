//! Reading values out of response bodies with JSONPath (RFC 9535).

use serde_json::Value;
use serde_json_path::JsonPath;

use crate::connector::ConnectorError;

/// A JSONPath the manifest loader already checked; parsing again cannot fail, but an
/// error still gets a clear message rather than a panic.
pub fn path(text: &str) -> Result<JsonPath, ConnectorError> {
    JsonPath::parse(text)
        .map_err(|e| ConnectorError::InvalidResponse(format!("JSONPath `{text}`: {e}")))
}

/// Every value `path` selects.
pub fn all<'v>(value: &'v Value, path: &JsonPath) -> Vec<&'v Value> {
    path.query(value).all()
}

/// The first value `path` selects, if it is not null.
pub fn first<'v>(value: &'v Value, path: &JsonPath) -> Option<&'v Value> {
    path.query(value)
        .all()
        .into_iter()
        .next()
        .filter(|v| !v.is_null())
}

/// A value as a key part or a parameter: strings as they are, numbers and booleans in JSON.
pub fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A record's primary key: its key parts joined with `/`.
pub fn primary_key(record: &Value, paths: &[JsonPath]) -> Result<String, ConnectorError> {
    let mut parts = Vec::with_capacity(paths.len());
    for path in paths {
        let part = first(record, path).and_then(text).ok_or_else(|| {
            ConnectorError::InvalidResponse(format!("a record has no primary key at `{path}`"))
        })?;
        parts.push(part);
    }
    Ok(parts.join("/"))
}

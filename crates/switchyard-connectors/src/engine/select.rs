//! Reading values out of response bodies with JSONPath (RFC 9535).

use std::collections::HashMap;

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

/// The values `path` selects at the positions `keep` names, in that order, moved out of
/// `document` (nulls are left in their places): a page's records, taken instead of copied
/// once nothing else reads the body. A path can select one value twice, or a value and
/// another inside it; moving would then empty a later one, so such a selection is copied.
pub fn take(document: &mut Value, path: &JsonPath, keep: &[usize]) -> Vec<Value> {
    let selected = all(document, path);
    let kept: Vec<&Value> = keep
        .iter()
        .filter_map(|&i| selected.get(i).copied())
        .collect();
    // Values are told apart by address: the document does not change between this look
    // and the move below, so each value stays where the query found it.
    let mut wanted: HashMap<*const Value, usize> = HashMap::with_capacity(kept.len());
    for (place, value) in kept.iter().enumerate() {
        if wanted.insert(std::ptr::from_ref(*value), place).is_some() {
            return kept.into_iter().cloned().collect();
        }
    }
    if count_outermost(document, &wanted, 0) < wanted.len() {
        return kept.into_iter().cloned().collect();
    }
    let mut taken = vec![Value::Null; wanted.len()];
    move_outermost(document, &wanted, &mut taken, 0);
    taken
}

/// How many of `wanted` are found without looking inside one of them (stops at all).
fn count_outermost(node: &Value, wanted: &HashMap<*const Value, usize>, found: usize) -> usize {
    if found == wanted.len() {
        return found;
    }
    if wanted.contains_key(&std::ptr::from_ref(node)) {
        return found + 1;
    }
    match node {
        Value::Array(items) => items
            .iter()
            .fold(found, |found, item| count_outermost(item, wanted, found)),
        Value::Object(map) => map
            .values()
            .fold(found, |found, item| count_outermost(item, wanted, found)),
        _ => found,
    }
}

/// Moves each of `wanted` into its place in `taken`; returns how many were moved so far.
fn move_outermost(
    node: &mut Value,
    wanted: &HashMap<*const Value, usize>,
    taken: &mut [Value],
    moved: usize,
) -> usize {
    if moved == wanted.len() {
        return moved;
    }
    if let Some(&place) = wanted.get(&std::ptr::from_ref::<Value>(node)) {
        taken[place] = node.take();
        return moved + 1;
    }
    match node {
        Value::Array(items) => items.iter_mut().fold(moved, |moved, item| {
            move_outermost(item, wanted, taken, moved)
        }),
        Value::Object(map) => map.values_mut().fold(moved, |moved, item| {
            move_outermost(item, wanted, taken, moved)
        }),
        _ => moved,
    }
}

/// The first value `path` selects, if it is not null.
pub fn first<'v>(value: &'v Value, path: &JsonPath) -> Option<&'v Value> {
    path.query(value).first().filter(|v| !v.is_null())
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
    let part = |path: &JsonPath| {
        first(record, path).and_then(text).ok_or_else(|| {
            ConnectorError::InvalidResponse(format!("a record has no primary key at `{path}`"))
        })
    };
    // One part, the usual case, needs no joining.
    if let [path] = paths {
        return part(path);
    }
    let parts = paths.iter().map(part).collect::<Result<Vec<_>, _>>()?;
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn take_from(document: &mut Value, path: &str, keep: &[usize]) -> Vec<Value> {
        take(document, &JsonPath::parse(path).unwrap(), keep)
    }

    #[test]
    fn kept_values_are_moved_out_in_the_order_asked() {
        let mut document = json!({"items": [{"id": 1}, {"id": 2}, {"id": 3}], "next": "x"});
        let taken = take_from(&mut document, "$.items[*]", &[2, 0]);
        assert_eq!(taken, [json!({"id": 3}), json!({"id": 1})]);
        assert_eq!(
            document,
            json!({"items": [null, {"id": 2}, null], "next": "x"})
        );
    }

    #[test]
    fn a_value_selected_twice_is_copied() {
        let mut document = json!({"items": [{"id": 1}]});
        let taken = take_from(&mut document, "$.items[0,0]", &[0, 1]);
        assert_eq!(taken, [json!({"id": 1}), json!({"id": 1})]);
        assert_eq!(document, json!({"items": [{"id": 1}]}));
    }

    #[test]
    fn values_inside_other_selected_values_are_copied() {
        let mut document = json!({"items": [{"id": 1}]});
        let original = document.clone();
        let taken = take_from(&mut document, "$..*", &[0, 1, 2]);
        assert_eq!(taken, [json!([{"id": 1}]), json!({"id": 1}), json!(1)]);
        assert_eq!(document, original);
    }

    #[test]
    fn the_root_itself_can_be_taken() {
        let mut document = json!({"id": 1});
        assert_eq!(take_from(&mut document, "$", &[0]), [json!({"id": 1})]);
        assert_eq!(document, Value::Null);
    }

    #[test]
    fn primary_keys_join_their_parts() {
        let record = json!({"org": "o", "id": 7, "flag": true});
        let paths = |texts: &[&str]| -> Vec<JsonPath> {
            texts.iter().map(|t| JsonPath::parse(t).unwrap()).collect()
        };
        assert_eq!(primary_key(&record, &paths(&["$.id"])).unwrap(), "7");
        assert_eq!(
            primary_key(&record, &paths(&["$.org", "$.id", "$.flag"])).unwrap(),
            "o/7/true"
        );
        assert!(primary_key(&record, &paths(&["$.org", "$.missing"])).is_err());
    }
}

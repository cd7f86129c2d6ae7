//! Canonical JSON and the content hash of a record.
//!
//! A record is unchanged when its content hash is. The hash must therefore not depend on the
//! order in which a provider happened to send an object's keys, nor on whether serde_json's
//! `preserve_order` feature is on somewhere in the build (it keeps insertion order then):
//! objects are written with their keys sorted, at every level.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::{Result, StoreError};

/// A JSON document in canonical form, with its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Canonical {
    /// Compact JSON, object keys sorted by their bytes.
    pub text: String,
    /// SHA-256 of `text`, lowercase hex.
    pub hash: String,
}

impl Canonical {
    pub(crate) fn of(value: &Value) -> Result<Self> {
        let text = canonical_json(value)?;
        let hash = hex::encode(Sha256::digest(text.as_bytes()));
        Ok(Self { text, hash })
    }
}

/// `value` as compact JSON with the keys of every object sorted.
pub(crate) fn canonical_json(value: &Value) -> Result<String> {
    serde_json::to_string(&Sorted(value)).map_err(StoreError::InvalidJson)
}

/// Serialises the wrapped value like `Value` does, except for the order of object keys.
struct Sorted<'a>(&'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Sorted(item))?;
                }
                seq.end()
            }
            Value::Object(object) => {
                let mut entries: Vec<(&String, &Value)> = object.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, &Sorted(value))?;
                }
                map.end()
            }
            scalar => scalar.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::{Map, json};

    /// An object built with its keys in the given order (kept if `preserve_order` is on).
    fn object(entries: &[(&str, Value)]) -> Value {
        let mut map = Map::new();
        for (key, value) in entries {
            map.insert((*key).to_owned(), value.clone());
        }
        Value::Object(map)
    }

    #[test]
    fn key_order_does_not_change_the_text_or_hash() {
        let inner_ab = object(&[("a", json!(1)), ("b", json!([2, {"z": 1, "y": 2}]))]);
        let inner_ba = object(&[("b", json!([2, {"y": 2, "z": 1}])), ("a", json!(1))]);
        let one = object(&[("name", json!("x")), ("inner", inner_ab)]);
        let two = object(&[("inner", inner_ba), ("name", json!("x"))]);
        let (one, two) = (Canonical::of(&one).unwrap(), Canonical::of(&two).unwrap());
        assert_eq!(one, two);
        assert_eq!(
            one.text,
            r#"{"inner":{"a":1,"b":[2,{"y":2,"z":1}]},"name":"x"}"#
        );
        assert_eq!(one.hash.len(), 64);
    }

    #[test]
    fn different_content_differs() {
        let base = Canonical::of(&json!({"a": [1, 2]})).unwrap();
        for other in [
            json!({"a": [2, 1]}),
            json!({"a": [1, 2.0]}),
            json!({"a": "[1,2]"}),
        ] {
            assert_ne!(Canonical::of(&other).unwrap().hash, base.hash, "{other}");
        }
    }

    #[test]
    fn hash_is_sha256_of_the_text() {
        // sha256("{}"), computed independently.
        assert_eq!(
            Canonical::of(&json!({})).unwrap().hash,
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[test]
    fn strings_are_escaped() {
        let text = canonical_json(&json!({"q\"": "line\nbreak"})).unwrap();
        assert_eq!(text, r#"{"q\"":"line\nbreak"}"#);
    }
}

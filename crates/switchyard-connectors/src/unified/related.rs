//! `related` fields: a unified field whose value says whether another stream of the same
//! connection holds a matching record (GitHub's `mfa_enabled` is "not in the 2FA-disabled
//! member list"; Okta's is "has an ACTIVE factor").
//!
//! A mapping cannot answer that from the record alone. [`CompiledMapping::related_keys`]
//! collects a page's key values per related field, [`lookup_page`] asks the record store once
//! per field which of them have a match, and [`CompiledMapping::apply_with`] maps each record
//! with the answers. Without answers ([`CompiledMapping::apply`]) related fields are null.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use switchyard_core::{ConnectionId, TenantId};

use super::coerce::kind;
use super::compile::CompiledMapping;
use super::error::MappingError;
use crate::store::{RecordStore, RelatedQuery, StoreError};

/// A JSONPath made only of member names (`$.profile.user_id`), which both databases can
/// extract from a stored record: SQLite's `json_extract` and PostgreSQL's `#>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberPath {
    text: String,
    members: Vec<String>,
}

impl MemberPath {
    /// `$` followed by one or more `.name`, each name ASCII letters, digits and `_`, not
    /// starting with a digit. `None` for anything else (brackets, wildcards, filters).
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix('$')?;
        let mut members = Vec::new();
        for member in rest.strip_prefix('.')?.split('.') {
            let mut chars = member.chars();
            let first = chars.next()?;
            let valid = (first.is_ascii_alphabetic() || first == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return None;
            }
            members.push(member.to_owned());
        }
        Some(Self {
            text: text.to_owned(),
            members,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The member names, outermost first.
    pub fn members(&self) -> &[String] {
        &self.members
    }
}

/// What one `related` field asks of the record store.
#[derive(Debug, Clone, PartialEq)]
pub struct RelatedLookup {
    /// The target field.
    pub field: String,
    /// The related stream.
    pub stream: String,
    /// Where the key is in a related record; `None`: its primary key.
    pub matches: Option<MemberPath>,
    /// Only related records holding this value (a string, integer or boolean) there count.
    pub filter: Option<(MemberPath, Value)>,
}

impl RelatedLookup {
    /// The store query for this lookup.
    pub fn query(&self) -> RelatedQuery<'_> {
        RelatedQuery {
            stream: &self.stream,
            matches: self.matches.as_ref().map(MemberPath::members),
            filter: self
                .filter
                .as_ref()
                .map(|(path, value)| (path.members(), value)),
        }
    }
}

/// The record store's answers for one page: per related field, the key values that have a
/// matching record, or nothing when the related stream has never completed a sync.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RelatedMatches(BTreeMap<String, Option<BTreeSet<String>>>);

impl RelatedMatches {
    /// Records the answer for `field`: `None` when its stream has never completed a sync.
    pub fn insert(&mut self, field: &str, found: Option<BTreeSet<String>>) {
        self.0.insert(field.to_owned(), found);
    }

    /// Whether `key` has a match for `field`; `None` when that is not known.
    pub(super) fn contains(&self, field: &str, key: &str) -> Option<bool> {
        self.0.get(field)?.as_ref().map(|found| found.contains(key))
    }
}

/// The text a key value is looked up as: a string as is, an integer in decimal (as stored
/// primary keys write numbers). `None` for null; other values cannot be keys.
pub(super) fn key_text(field: &str, value: &Value) -> Result<Option<String>, MappingError> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text.clone())),
        Value::Number(number) if number.is_i64() || number.is_u64() => Ok(Some(number.to_string())),
        other => Err(MappingError::Coercion {
            field: field.to_owned(),
            expected: "a string or an integer to look up",
            found: kind(other),
        }),
    }
}

/// Asks the record store, once per related field of `mapping`, which of `records`' keys have a
/// matching record in the related stream of the same tenant and connection.
///
/// # Errors
/// The store's error.
pub async fn lookup_page(
    mapping: &CompiledMapping,
    records: &[&Value],
    store: &RecordStore,
    tenant: &TenantId,
    connection: &ConnectionId,
) -> Result<RelatedMatches, StoreError> {
    let mut matches = RelatedMatches::default();
    for (lookup, keys) in mapping.related_keys(records.iter().copied()) {
        let found = store
            .related_matches(tenant, connection, &lookup.query(), &keys)
            .await?;
        matches.insert(&lookup.field, found);
    }
    Ok(matches)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn member_paths_are_dotted_names_only() {
        let members = |text: &str| MemberPath::parse(text).map(|p| p.members().to_vec());
        assert_eq!(members("$.id"), Some(vec!["id".to_owned()]));
        assert_eq!(
            members("$.profile.user_id"),
            Some(vec!["profile".to_owned(), "user_id".to_owned()])
        );
        assert_eq!(members("$._x1"), Some(vec!["_x1".to_owned()]));
        for rejected in [
            "$", "$.", "id", "$..id", "$.a.", "$['id']", "$.a[0]", "$.*", "$.1a", "$.a-b", "$.a b",
            "$.é", "@.id",
        ] {
            assert_eq!(members(rejected), None, "{rejected}");
        }
    }

    #[test]
    fn keys_are_strings_or_integers() {
        assert_eq!(
            key_text("f", &Value::from("u1")).unwrap(),
            Some("u1".into())
        );
        assert_eq!(key_text("f", &Value::from(42)).unwrap(), Some("42".into()));
        assert_eq!(
            key_text("f", &Value::from(u64::MAX)).unwrap(),
            Some(u64::MAX.to_string())
        );
        assert_eq!(key_text("f", &Value::Null).unwrap(), None);
        for bad in [
            Value::from(1.5),
            Value::from(true),
            serde_json::json!({}),
            serde_json::json!([1]),
        ] {
            assert!(matches!(
                key_text("f", &bad),
                Err(MappingError::Coercion { field, .. }) if field == "f"
            ));
        }
    }
}

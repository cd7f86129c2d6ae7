//! An in-memory copy of one stream, kept the way the sync loop keeps the record store: pages
//! upsert their records and delete their deletions, and a complete full read removes what it
//! did not see. Comparing it with the expected records shows what a read lost or kept stale.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::connector::Page;

/// Records by primary key.
pub type Records = BTreeMap<String, Value>;

#[derive(Debug, Default)]
pub(super) struct Replica {
    pub(super) records: Records,
    /// Keys the current read listed or confirmed unchanged.
    seen: BTreeSet<String>,
}

impl Replica {
    pub(super) fn begin_read(&mut self) {
        self.seen.clear();
    }

    /// Applies one page; answers the keys a `304` page called unchanged that the replica
    /// never held (the connector claims records it never delivered).
    pub(super) fn apply(&mut self, page: &Page) -> Vec<String> {
        for record in &page.records {
            self.seen.insert(record.primary_key.clone());
            self.records
                .insert(record.primary_key.clone(), record.data.clone());
        }
        for key in &page.deletions {
            self.records.remove(key);
        }
        let mut unknown = Vec::new();
        for key in &page.unchanged {
            if !self.records.contains_key(key) {
                unknown.push(key.clone());
            }
            self.seen.insert(key.clone());
        }
        if page.done && page.full_read.is_some() {
            let seen = &self.seen;
            self.records.retain(|key, _| seen.contains(key));
        }
        unknown
    }
}

/// How a replica differs from what was expected.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Difference {
    Missing { key: String },
    Unexpected { key: String },
    Changed { key: String, pointer: String },
}

/// Compares `actual` with `expected`. `extra_allowed`: records beyond the expected ones are
/// not a difference (a read by update time cannot see deletions).
pub(super) fn compare(
    expected: &Records,
    actual: &Records,
    extra_allowed: bool,
) -> Vec<Difference> {
    let mut differences = Vec::new();
    for (key, want) in expected {
        match actual.get(key) {
            None => differences.push(Difference::Missing { key: key.clone() }),
            Some(got) => {
                if let Some(pointer) = first_difference(want, got, String::new()) {
                    differences.push(Difference::Changed {
                        key: key.clone(),
                        pointer,
                    });
                }
            }
        }
    }
    if !extra_allowed {
        for key in actual.keys().filter(|key| !expected.contains_key(*key)) {
            differences.push(Difference::Unexpected { key: key.clone() });
        }
    }
    differences
}

/// The JSON pointer of the first place `a` and `b` differ, if they do.
fn first_difference(a: &Value, b: &Value, at: String) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter()
                .find_map(|key| match (x.get(key), y.get(key)) {
                    (Some(p), Some(q)) => first_difference(p, q, format!("{at}/{}", escape(key))),
                    _ => Some(format!("{at}/{}", escape(key))),
                })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, format!("{at}/{i}"))),
        _ if a == b => None,
        _ => Some(at),
    }
}

/// RFC 6901: `~` and `/` in a key.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::connector::Record;

    fn page(records: &[(&str, Value)], deletions: &[&str], done: bool, full: bool) -> Page {
        Page {
            records: records
                .iter()
                .map(|(key, data)| Record {
                    primary_key: (*key).to_owned(),
                    data: data.clone(),
                })
                .collect(),
            deletions: deletions.iter().map(|k| (*k).to_owned()).collect(),
            unchanged: Vec::new(),
            not_modified: false,
            checkpoint: Value::Null,
            done,
            full_read: full.then(|| "read".to_owned()),
        }
    }

    #[test]
    fn a_complete_full_read_removes_what_it_did_not_list() {
        let mut replica = Replica::default();
        replica.begin_read();
        replica.apply(&page(&[("a", json!(1)), ("b", json!(2))], &[], true, true));
        replica.begin_read();
        replica.apply(&page(&[("a", json!(3))], &[], false, false));
        assert_eq!(replica.records.len(), 2, "not before the read is done");
        replica.apply(&page(&[], &[], true, true));
        assert_eq!(replica.records, Records::from([("a".into(), json!(3))]));
    }

    #[test]
    fn a_changes_read_keeps_what_it_did_not_list_and_applies_deletions() {
        let mut replica = Replica::default();
        replica.apply(&page(&[("a", json!(1)), ("b", json!(2))], &[], true, true));
        replica.begin_read();
        replica.apply(&page(&[("c", json!(3))], &["a"], true, false));
        let keys: Vec<&String> = replica.records.keys().collect();
        assert_eq!(keys, ["b", "c"]);
    }

    #[test]
    fn differences_name_the_key_and_the_pointer() {
        let expected = Records::from([
            ("a".into(), json!({"x": {"y/z": [1, 2]}})),
            ("b".into(), json!({})),
        ]);
        let actual = Records::from([
            ("a".into(), json!({"x": {"y/z": [1, 3]}})),
            ("c".into(), json!({})),
        ]);
        assert_eq!(
            compare(&expected, &actual, false),
            [
                Difference::Changed {
                    key: "a".into(),
                    pointer: "/x/y~1z/1".into()
                },
                Difference::Missing { key: "b".into() },
                Difference::Unexpected { key: "c".into() },
            ]
        );
        assert_eq!(compare(&expected, &actual, true).len(), 2);
    }
}

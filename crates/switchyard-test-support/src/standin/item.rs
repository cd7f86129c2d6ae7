//! The one resource every style serves: an item, shaped like a directory user.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// An item as every route renders it:
/// `{"id":"u00042","name":"User 42","email":"user42@example.test","status":"active","updated_at":"2024-01-01T00:00:00Z"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub id: String,
    pub name: String,
    pub email: String,
    pub status: ItemStatus,
    /// Whole seconds, as GitHub and Okta send them; the data set sets it on every change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemStatus {
    Active,
    Suspended,
}

impl Item {
    /// An active item; `updated_at` is a placeholder until the data set stores it.
    pub fn new(id: impl Into<String>, name: impl Into<String>, email: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            email: email.into(),
            status: ItemStatus::Active,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    /// The item numbered `number` (from 1) of a generated set whose ids have `width` digits.
    /// Every tenth is suspended, so filters and mappings see both states.
    pub(crate) fn generated(number: u64, width: usize, updated_at: OffsetDateTime) -> Self {
        Self {
            id: generated_id(number, width),
            name: format!("User {number}"),
            email: format!("user{number}@example.test"),
            status: if number.is_multiple_of(10) {
                ItemStatus::Suspended
            } else {
                ItemStatus::Active
            },
            updated_at,
        }
    }
}

/// `u` and the number zero-padded to `width` digits, so ids sort like their numbers.
pub(crate) fn generated_id(number: u64, width: usize) -> String {
    format!("u{number:0width$}")
}

/// Digits a generated id needs for `count` items: at least five (`u00042`), more so that
/// ids still sort by number in a larger set.
pub(crate) fn id_width(count: u64) -> usize {
    count.max(1).to_string().len().max(5)
}

/// Generated items were changed one second apart, the last one at `last`.
pub(crate) fn generated_updated_at(
    number: u64,
    count: u64,
    last: OffsetDateTime,
) -> OffsetDateTime {
    let seconds_before = i64::try_from(count.saturating_sub(number)).unwrap_or(i64::MAX);
    last.saturating_sub(Duration::seconds(seconds_before))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_sort_like_their_numbers() {
        let width = id_width(1_000_000);
        assert_eq!(width, 7);
        assert_eq!(generated_id(42, id_width(100)), "u00042");
        assert!(generated_id(99_999, width) < generated_id(100_000, width));
    }

    #[test]
    fn renders_the_documented_shape() {
        let item = Item::generated(42, 5, OffsetDateTime::UNIX_EPOCH);
        assert_eq!(
            serde_json::to_value(&item).unwrap(),
            serde_json::json!({
                "id": "u00042", "name": "User 42", "email": "user42@example.test",
                "status": "active", "updated_at": "1970-01-01T00:00:00Z"
            })
        );
    }
}

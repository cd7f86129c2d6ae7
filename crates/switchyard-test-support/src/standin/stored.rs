//! A data set kept in memory that tests change, with a change log for delta rounds.

use std::{
    collections::{BTreeMap, BTreeSet},
    ops::Bound,
};

use time::OffsetDateTime;

use super::{
    dataset::{Change, Slice, Version, Window},
    item::{Item, generated_id, generated_updated_at, id_width},
};

#[derive(Debug, Default)]
pub(crate) struct Stored {
    items: BTreeMap<String, Entry>,
    /// The update order `(updated_at, id)`, kept beside the items so `updated_since` reads are
    /// range scans.
    by_update: BTreeSet<(OffsetDateTime, String)>,
    /// Deleted ids and the sequence number of their deletion, for delta rounds.
    removed: BTreeMap<String, u64>,
    /// Bumped by every change; an entry remembers the number of its last change.
    sequence: u64,
    generation: u64,
    /// The highest generated number handed out, so a created item never reuses a deleted id.
    highest_number: u64,
}

#[derive(Debug)]
struct Entry {
    item: Item,
    changed: u64,
}

impl Stored {
    /// Stores `item` as changed at `at`, replacing one with its id.
    pub(crate) fn upsert(&mut self, mut item: Item, at: OffsetDateTime) -> Item {
        item.updated_at = at;
        self.sequence += 1;
        if let Some(old) = self.items.remove(&item.id) {
            self.by_update.remove(&(old.item.updated_at, old.item.id));
        }
        self.removed.remove(&item.id);
        self.by_update.insert((at, item.id.clone()));
        self.items.insert(
            item.id.clone(),
            Entry {
                item: item.clone(),
                changed: self.sequence,
            },
        );
        item
    }

    /// Deletes the item, remembering the deletion for delta rounds.
    pub(crate) fn delete(&mut self, id: &str) -> Option<Item> {
        let entry = self.items.remove(id)?;
        self.sequence += 1;
        self.by_update
            .remove(&(entry.item.updated_at, entry.item.id.clone()));
        self.removed.insert(entry.item.id.clone(), self.sequence);
        Some(entry.item)
    }

    /// Stores generated items numbered 1..=count, changed one second apart up to `at`.
    pub(crate) fn seed(&mut self, count: u64, at: OffsetDateTime) {
        let width = id_width(count);
        for number in 1..=count {
            let updated_at = generated_updated_at(number, count, at);
            self.upsert(Item::generated(number, width, updated_at), updated_at);
        }
        self.highest_number = self.highest_number.max(count);
    }

    /// A new item under the next generated id that was never used.
    pub(crate) fn create(&mut self, name: String, email: String, at: OffsetDateTime) -> Item {
        let id = loop {
            self.highest_number += 1;
            let id = generated_id(self.highest_number, id_width(self.highest_number));
            if !self.items.contains_key(&id) && !self.removed.contains_key(&id) {
                break id;
            }
        };
        self.upsert(Item::new(id, name, email), at)
    }

    /// Makes every delta token issued so far unknown, as an expired sync state is.
    pub(crate) fn expire_delta_tokens(&mut self) {
        self.generation += 1;
    }

    pub(crate) fn version(&self) -> Version {
        Version {
            generation: self.generation,
            sequence: self.sequence,
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<Item> {
        self.items.get(id).map(|entry| entry.item.clone())
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn after_id(&self, after: Option<&str>, limit: usize) -> Window {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut rest = self
            .items
            .range::<str, _>((start, Bound::Unbounded))
            .map(|(_, entry)| entry.item.clone());
        take_window(&mut rest, limit)
    }

    pub(crate) fn offset_by_id(&self, offset: usize, limit: usize) -> Slice {
        Slice {
            items: self
                .items
                .values()
                .skip(offset)
                .take(limit)
                .map(|entry| entry.item.clone())
                .collect(),
            total: self.items.len(),
        }
    }

    pub(crate) fn updated_after(
        &self,
        since: OffsetDateTime,
        after: Option<(OffsetDateTime, &str)>,
        limit: usize,
    ) -> Window {
        let from = (since, String::new());
        let start = match after {
            Some((at, id)) if (at, id) >= (since, "") => Bound::Excluded((at, id.to_owned())),
            _ => Bound::Included(from),
        };
        let mut rest = self
            .by_update
            .range((start, Bound::Unbounded))
            .filter_map(|(_, id)| self.get(id));
        take_window(&mut rest, limit)
    }

    pub(crate) fn offset_updated(
        &self,
        since: OffsetDateTime,
        offset: usize,
        limit: usize,
    ) -> Slice {
        let matching = || self.by_update.range((since, String::new())..);
        Slice {
            items: matching()
                .skip(offset)
                .take(limit)
                .filter_map(|(_, id)| self.get(id))
                .collect(),
            total: matching().count(),
        }
    }

    pub(crate) fn changes(
        &self,
        since: Option<u64>,
        after: Option<&str>,
        limit: usize,
    ) -> Window<Change> {
        let start = || {
            (
                after.map_or(Bound::Unbounded, Bound::Excluded),
                Bound::Unbounded,
            )
        };
        let present = self
            .items
            .range::<str, _>(start())
            .filter(|(_, entry)| since.is_none_or(|since| entry.changed > since))
            .map(|(_, entry)| Change::Present(entry.item.clone()));
        // A full round (no token) lists what exists; deletions matter only since a token.
        let removed = self
            .removed
            .range::<str, _>(start())
            .filter(|(_, deleted)| since.is_some_and(|since| **deleted > since))
            .map(|(id, _)| Change::Removed(id.clone()));
        let mut merged = merge_by_id(present, removed);
        take_window(&mut merged, limit)
    }
}

/// Up to `limit` items, and whether another follows.
pub(crate) fn take_window<T>(rest: &mut impl Iterator<Item = T>, limit: usize) -> Window<T> {
    let items: Vec<T> = rest.by_ref().take(limit).collect();
    let more = rest.next().is_some();
    Window { items, more }
}

/// Two id-ordered streams of changes with disjoint ids, as one id-ordered stream.
fn merge_by_id(
    left: impl Iterator<Item = Change>,
    right: impl Iterator<Item = Change>,
) -> impl Iterator<Item = Change> {
    let mut left = left.peekable();
    let mut right = right.peekable();
    std::iter::from_fn(move || match (left.peek(), right.peek()) {
        (Some(l), Some(r)) if r.id() < l.id() => right.next(),
        (Some(_), _) => left.next(),
        (None, _) => right.next(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn ids(window: &Window) -> Vec<&str> {
        window.items.iter().map(|item| item.id.as_str()).collect()
    }

    #[test]
    fn keyset_reads_by_update_find_an_item_changed_mid_walk() {
        let mut set = Stored::default();
        let t0 = datetime!(2024-01-01 0:00 UTC);
        set.seed(4, t0);
        let first = set.updated_after(OffsetDateTime::UNIX_EPOCH, None, 2);
        assert_eq!(ids(&first), ["u00001", "u00002"]);
        set.upsert(set.get("u00001").unwrap(), t0 + time::Duration::seconds(5));
        let last = first.items.last().map(|i| (i.updated_at, i.id.as_str()));
        let rest = set.updated_after(OffsetDateTime::UNIX_EPOCH, last, 10);
        assert_eq!(ids(&rest), ["u00003", "u00004", "u00001"]);
        assert!(!rest.more);
    }

    #[test]
    fn changes_since_a_sequence_include_deletions_in_id_order() {
        let mut set = Stored::default();
        let t0 = datetime!(2024-01-01 0:00 UTC);
        set.seed(3, t0);
        let since = set.version().sequence;
        set.delete("u00001");
        set.upsert(Item::new("u00003", "Renamed", "r@example.test"), t0);
        set.upsert(Item::new("u00000", "New", "n@example.test"), t0);
        let window = set.changes(Some(since), None, 10);
        let ids: Vec<&str> = window.items.iter().map(Change::id).collect();
        assert_eq!(ids, ["u00000", "u00001", "u00003"]);
        assert_eq!(window.items[1], Change::Removed("u00001".into()));
        assert_eq!(set.changes(None, None, 10).items.len(), 3);
    }

    #[test]
    fn create_takes_a_free_id() {
        let mut set = Stored::default();
        let t0 = datetime!(2024-01-01 0:00 UTC);
        set.seed(2, t0);
        set.delete("u00002");
        set.upsert(Item::new("u00003", "Taken", "t@example.test"), t0);
        let created = set.create("A".into(), "a@example.test".into(), t0);
        assert_eq!(created.id, "u00004");
    }
}

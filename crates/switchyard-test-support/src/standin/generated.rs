//! A read-only data set of `count` items computed from their position, for benchmarks: no
//! item exists until a page asks for it, so a million items cost a million nothing.
//!
//! Item `n` (from 1) is `Item::generated(n)`, changed one second after item `n - 1`, the last
//! one at the clock's start. Ids are zero-padded to one width, so id order, update order and
//! position order are the same, and every read is a binary search plus one page of work.

use time::OffsetDateTime;

use super::{
    dataset::{Slice, Window},
    item::{Item, generated_id, generated_updated_at, id_width},
};

#[derive(Debug)]
pub(crate) struct Generated {
    count: u64,
    width: usize,
    last_change: OffsetDateTime,
}

impl Generated {
    pub(crate) fn new(count: u64, last_change: OffsetDateTime) -> Self {
        Self {
            count,
            width: id_width(count),
            last_change,
        }
    }

    pub(crate) fn len(&self) -> usize {
        usize::try_from(self.count).unwrap_or(usize::MAX)
    }

    pub(crate) fn get(&self, id: &str) -> Option<Item> {
        let position = self.first_position(|position| self.id_at(position).as_str() >= id);
        (position < self.count && self.id_at(position) == id).then(|| self.item_at(position))
    }

    pub(crate) fn after_id(&self, after: Option<&str>, limit: usize) -> Window {
        let start = after.map_or(0, |after| {
            self.first_position(|position| self.id_at(position).as_str() > after)
        });
        self.window_from(start, limit)
    }

    pub(crate) fn offset_by_id(&self, offset: usize, limit: usize) -> Slice {
        self.slice_from(0, offset, limit)
    }

    pub(crate) fn updated_after(
        &self,
        since: OffsetDateTime,
        after: Option<(OffsetDateTime, &str)>,
        limit: usize,
    ) -> Window {
        let from_since = self.first_updated_at_or_after(since);
        let start = after.map_or(from_since, |(at, id)| {
            let after_key = self.first_position(|position| {
                (self.updated_at(position), self.id_at(position).as_str()) > (at, id)
            });
            after_key.max(from_since)
        });
        self.window_from(start, limit)
    }

    pub(crate) fn offset_updated(
        &self,
        since: OffsetDateTime,
        offset: usize,
        limit: usize,
    ) -> Slice {
        self.slice_from(self.first_updated_at_or_after(since), offset, limit)
    }

    fn first_updated_at_or_after(&self, since: OffsetDateTime) -> u64 {
        self.first_position(|position| self.updated_at(position) >= since)
    }

    fn window_from(&self, start: u64, limit: usize) -> Window {
        let end = start.saturating_add(limit as u64).min(self.count);
        Window {
            items: (start..end)
                .map(|position| self.item_at(position))
                .collect(),
            more: end < self.count,
        }
    }

    fn slice_from(&self, first: u64, offset: usize, limit: usize) -> Slice {
        let start = first.saturating_add(offset as u64).min(self.count);
        let end = start.saturating_add(limit as u64).min(self.count);
        Slice {
            items: (start..end)
                .map(|position| self.item_at(position))
                .collect(),
            total: usize::try_from(self.count - first).unwrap_or(usize::MAX),
        }
    }

    /// The first position where `holds` is true, for a predicate false up to some position
    /// and true from there on; `count` when it never holds.
    fn first_position(&self, holds: impl Fn(u64) -> bool) -> u64 {
        let (mut low, mut high) = (0, self.count);
        while low < high {
            let middle = low + (high - low) / 2;
            if holds(middle) {
                high = middle;
            } else {
                low = middle + 1;
            }
        }
        low
    }

    fn id_at(&self, position: u64) -> String {
        generated_id(position + 1, self.width)
    }

    fn updated_at(&self, position: u64) -> OffsetDateTime {
        generated_updated_at(position + 1, self.count, self.last_change)
    }

    fn item_at(&self, position: u64) -> Item {
        Item::generated(position + 1, self.width, self.updated_at(position))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn reads_any_page_of_a_million_items_by_position() {
        let set = Generated::new(1_000_000, datetime!(2024-01-01 0:00 UTC));
        let slice = set.offset_by_id(499_900, 100);
        assert_eq!(slice.total, 1_000_000);
        assert_eq!(slice.items[0].id, "u0499901");
        let next = set.after_id(Some("u0499901"), 2);
        assert_eq!(next.items[0].id, "u0499902");
        assert_eq!(
            set.get("u1000000").map(|i| i.name),
            Some("User 1000000".into())
        );
        assert_eq!(set.get("u1000001"), None);
        let last = set.updated_after(datetime!(2024-01-01 0:00 UTC), None, 10);
        assert_eq!(last.items.len(), 1);
        assert!(!last.more);
    }
}

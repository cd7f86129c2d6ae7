//! The items a stand-in serves, stored or generated, and the orders every style reads them in.
//!
//! Two orders exist: by id (every full listing) and by `(updated_at, id)` from an inclusive
//! lower bound (`updated_since`). Keyset reads ("after this position") never skip an item that
//! changes during a walk: a change moves it to the end of the update order, where the walk
//! still finds it. Offset reads can, which is how real offset APIs behave.

use time::OffsetDateTime;

use super::{generated::Generated, item::Item, stored::Stored};

/// A page read by keyset: the items and whether more follow.
#[derive(Debug)]
pub(crate) struct Window<T = Item> {
    pub(crate) items: Vec<T>,
    pub(crate) more: bool,
}

/// A page read by offset: the items and how many match in all.
#[derive(Debug)]
pub(crate) struct Slice {
    pub(crate) items: Vec<Item>,
    pub(crate) total: usize,
}

/// One entry of a delta round: an item as it is now, or the id of one that was deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    Present(Item),
    Removed(String),
}

impl Change {
    pub(crate) fn id(&self) -> &str {
        match self {
            Self::Present(item) => &item.id,
            Self::Removed(id) => id,
        }
    }
}

/// Where the change log stands: a delta token names one. `generation` changes when a test
/// expires every token issued so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Version {
    pub(crate) generation: u64,
    pub(crate) sequence: u64,
}

/// The data set was generated from a count and cannot change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadOnly;

#[derive(Debug)]
pub(crate) enum DataSet {
    Stored(Stored),
    Generated(Generated),
}

impl DataSet {
    /// Items by id, after `after` when given.
    pub(crate) fn after_id(&self, after: Option<&str>, limit: usize) -> Window {
        match self {
            Self::Stored(set) => set.after_id(after, limit),
            Self::Generated(set) => set.after_id(after, limit),
        }
    }

    /// Items by id from `offset`.
    pub(crate) fn offset_by_id(&self, offset: usize, limit: usize) -> Slice {
        match self {
            Self::Stored(set) => set.offset_by_id(offset, limit),
            Self::Generated(set) => set.offset_by_id(offset, limit),
        }
    }

    /// Items with `updated_at >= since` by `(updated_at, id)`, after `after` when given.
    pub(crate) fn updated_after(
        &self,
        since: OffsetDateTime,
        after: Option<(OffsetDateTime, &str)>,
        limit: usize,
    ) -> Window {
        match self {
            Self::Stored(set) => set.updated_after(since, after, limit),
            Self::Generated(set) => set.updated_after(since, after, limit),
        }
    }

    /// Items with `updated_at >= since` by `(updated_at, id)` from `offset`.
    pub(crate) fn offset_updated(
        &self,
        since: OffsetDateTime,
        offset: usize,
        limit: usize,
    ) -> Slice {
        match self {
            Self::Stored(set) => set.offset_updated(since, offset, limit),
            Self::Generated(set) => set.offset_updated(since, offset, limit),
        }
    }

    /// A delta round's page in id order: every current item when `since` is `None`, else what
    /// changed after that sequence number, deletions included.
    pub(crate) fn changes(
        &self,
        since: Option<u64>,
        after: Option<&str>,
        limit: usize,
    ) -> Window<Change> {
        match self {
            Self::Stored(set) => set.changes(since, after, limit),
            Self::Generated(set) => {
                let window = match since {
                    None => set.after_id(after, limit),
                    // Nothing ever changes in a generated set.
                    Some(_) => Window {
                        items: Vec::new(),
                        more: false,
                    },
                };
                Window {
                    items: window.items.into_iter().map(Change::Present).collect(),
                    more: window.more,
                }
            }
        }
    }

    pub(crate) fn version(&self) -> Version {
        match self {
            Self::Stored(set) => set.version(),
            Self::Generated(_) => Version {
                generation: 0,
                sequence: 0,
            },
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<Item> {
        match self {
            Self::Stored(set) => set.get(id),
            Self::Generated(set) => set.get(id),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Stored(set) => set.len(),
            Self::Generated(set) => set.len(),
        }
    }

    pub(crate) fn stored_mut(&mut self) -> Result<&mut Stored, ReadOnly> {
        match self {
            Self::Stored(set) => Ok(set),
            Self::Generated(_) => Err(ReadOnly),
        }
    }
}

//! Recomputing a chain from the genesis and naming the first broken link.

use std::fmt;

use serde::Serialize;

use crate::{Chain, hash::GENESIS, storage::StoredRow};

/// The result of verifying one chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub chain: Chain,
    /// Entries that verified, from sequence number 1 up to the break (or all of them).
    pub verified: u64,
    /// The first broken link, if any.
    pub broken: Option<ChainBreak>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.broken.is_none()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.broken {
            None => write!(f, "{}: ok, {} entries", self.chain, self.verified),
            Some(broken) => write!(
                f,
                "{}: BROKEN at entry {}: {} ({} entries verified before it)",
                self.chain, broken.seq, broken.kind, self.verified
            ),
        }
    }
}

/// Where a chain breaks, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    /// The sequence number at which verification stopped.
    pub seq: u64,
    pub kind: BreakKind,
}

/// How a link is broken. The checks run in this order for each entry, so the kind names the
/// most specific explanation: a gap before anything else, then the link, then the contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BreakKind {
    /// Entry `seq` is missing: entries were deleted. `found` is the next stored sequence
    /// number, or `None` when the chain head counts entries that are no longer there (the
    /// newest entries were deleted).
    SequenceGap { found: Option<u64> },
    /// Entry `seq` does not point at the hash of entry `seq - 1`: entries were reordered,
    /// inserted, or an edited entry was re-hashed (then the edit is at `seq - 1`).
    PrevHashMismatch,
    /// Entry `seq`'s stored hash does not match its contents: the entry was edited.
    HashMismatch,
    /// The chain head (last sequence number and hash) disagrees with the entries: the head
    /// was altered or is missing.
    HeadMismatch,
}

impl fmt::Display for BreakKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakKind::SequenceGap { found: Some(found) } => write!(
                f,
                "the entry is missing, the next one stored is {found} (entries were deleted)"
            ),
            BreakKind::SequenceGap { found: None } => f.write_str(
                "the entry is missing though the chain head counts it (the newest entries were deleted)",
            ),
            BreakKind::PrevHashMismatch => f.write_str(
                "it does not link to the entry before it (entries were reordered or inserted)",
            ),
            BreakKind::HashMismatch => {
                f.write_str("its hash does not match its contents (the entry was edited)")
            }
            BreakKind::HeadMismatch => {
                f.write_str("the chain head disagrees with the stored entries")
            }
        }
    }
}

/// Walks a chain's rows in sequence order.
#[derive(Debug)]
pub(crate) struct ChainWalk {
    verified: u64,
    prev_hash: String,
}

impl ChainWalk {
    pub(crate) fn new() -> Self {
        Self {
            verified: 0,
            prev_hash: GENESIS.to_owned(),
        }
    }

    pub(crate) fn verified(&self) -> u64 {
        self.verified
    }

    /// Checks the next row.
    pub(crate) fn check(&mut self, row: &StoredRow) -> Result<(), ChainBreak> {
        let seq = self.verified + 1;
        if row.seq != seq {
            return Err(ChainBreak {
                seq,
                kind: BreakKind::SequenceGap {
                    found: Some(row.seq),
                },
            });
        }
        if row.prev_hash != self.prev_hash {
            return Err(ChainBreak {
                seq,
                kind: BreakKind::PrevHashMismatch,
            });
        }
        if row.hash_input().hash() != row.hash {
            return Err(ChainBreak {
                seq,
                kind: BreakKind::HashMismatch,
            });
        }
        self.verified = seq;
        self.prev_hash.clone_from(&row.hash);
        Ok(())
    }

    /// Compares the end of the walk with the chain head read before it.
    pub(crate) fn finish(&self, head: Option<&(u64, String)>) -> Result<(), ChainBreak> {
        match head {
            None if self.verified == 0 => Ok(()),
            None => Err(ChainBreak {
                seq: self.verified,
                kind: BreakKind::HeadMismatch,
            }),
            Some((last_seq, _)) if *last_seq > self.verified => Err(ChainBreak {
                seq: self.verified + 1,
                kind: BreakKind::SequenceGap { found: None },
            }),
            Some((last_seq, last_hash))
                if *last_seq == self.verified && *last_hash == self.prev_hash =>
            {
                Ok(())
            }
            Some((last_seq, _)) => Err(ChainBreak {
                seq: *last_seq,
                kind: BreakKind::HeadMismatch,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use switchyard_core::TenantId;

    use super::*;
    use crate::{
        Action, Actor, AuditEntry, AuditEventId,
        storage::{PendingEvent, StoredRow},
    };

    fn chain_of(len: u64) -> Vec<StoredRow> {
        let tenant = TenantId::generate();
        let mut prev = GENESIS.to_owned();
        (1..=len)
            .map(|seq| {
                let pending = PendingEvent {
                    id: AuditEventId::generate(),
                    occurred_at: switchyard_store::model::now_for_storage(),
                    entry: AuditEntry::new(
                        tenant,
                        Actor::PlatformAdmin,
                        Action::TENANT_CREATE,
                        format!("t{seq}"),
                    ),
                };
                let row = StoredRow::chained(&tenant.to_string(), seq, &pending, prev.clone());
                prev.clone_from(&row.hash);
                row
            })
            .collect()
    }

    fn walk(rows: &[StoredRow]) -> Result<ChainWalk, ChainBreak> {
        let mut walk = ChainWalk::new();
        for row in rows {
            walk.check(row)?;
        }
        Ok(walk)
    }

    fn head(rows: &[StoredRow]) -> (u64, String) {
        rows.last()
            .map_or((0, GENESIS.to_owned()), |row| (row.seq, row.hash.clone()))
    }

    #[test]
    fn an_intact_chain_verifies_against_its_head() {
        let rows = chain_of(4);
        let walk = walk(&rows).unwrap();
        assert_eq!(walk.verified(), 4);
        assert_eq!(walk.finish(Some(&head(&rows))), Ok(()));
        assert_eq!(ChainWalk::new().finish(None), Ok(()));
    }

    #[test]
    fn a_re_hashed_edit_breaks_the_next_link() {
        let mut rows = chain_of(4);
        rows[1].target = "forged".into();
        rows[1].hash = rows[1].hash_input().hash();
        assert_eq!(
            walk(&rows).err(),
            Some(ChainBreak {
                seq: 3,
                kind: BreakKind::PrevHashMismatch
            })
        );
    }

    #[test]
    fn an_entry_moved_to_another_chain_does_not_verify() {
        let mut rows = chain_of(2);
        rows[1].chain_id = TenantId::generate().to_string();
        assert_eq!(
            walk(&rows).err(),
            Some(ChainBreak {
                seq: 2,
                kind: BreakKind::HashMismatch
            })
        );
    }

    #[test]
    fn the_head_must_match_the_last_entry() {
        let rows = chain_of(3);
        let walk = walk(&rows).unwrap();
        let (seq, _) = head(&rows);
        assert_eq!(
            walk.finish(Some(&(seq, GENESIS.to_owned()))),
            Err(ChainBreak {
                seq: 3,
                kind: BreakKind::HeadMismatch
            })
        );
        assert_eq!(
            walk.finish(None),
            Err(ChainBreak {
                seq: 3,
                kind: BreakKind::HeadMismatch
            }),
            "entries without a head"
        );
    }
}

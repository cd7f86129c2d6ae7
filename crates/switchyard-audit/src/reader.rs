//! Reading the log: listing a chain's entries and verifying chains.

use std::sync::Arc;

use switchyard_store::Page;
use time::OffsetDateTime;

use crate::{
    Action, AuditError, AuditEvent, Chain,
    storage::{AuditStorage, storage_for},
    verify::{ChainBreak, ChainWalk, VerifyReport},
};

/// Largest page [`AuditReader::list`] returns.
pub const MAX_PAGE: u32 = 1000;

/// Rows read per query while verifying, so a long chain is never held in memory at once.
const VERIFY_CHUNK: u32 = 1000;

/// Narrows a listing. Every field is optional; set ones must all match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Exactly this action.
    pub action: Option<Action>,
    /// Exactly this target.
    pub target: Option<String>,
    /// Recorded at or after this time (inclusive).
    pub since: Option<OffsetDateTime>,
    /// Recorded before this time (exclusive).
    pub until: Option<OffsetDateTime>,
}

/// Read access to the audit tables. Cheap to clone; needs no writer task, so the CLI can
/// verify without starting one.
#[derive(Debug, Clone)]
pub struct AuditReader {
    storage: Arc<dyn AuditStorage>,
}

impl AuditReader {
    /// Reads from a connected, migrated database.
    pub fn new(database: &switchyard_store::Database) -> Self {
        Self::from_storage(storage_for(database))
    }

    pub(crate) fn from_storage(storage: Arc<dyn AuditStorage>) -> Self {
        Self { storage }
    }

    /// One page of a chain's entries in sequence order. `after` is the `next_after` of the
    /// previous page (a sequence number); `limit` is clamped to 1..=[`MAX_PAGE`]. Always
    /// scoped to `chain`: no filter can reach another tenant's entries.
    ///
    /// # Errors
    /// [`AuditError::Database`], or [`AuditError::Corrupt`] for a row that does not parse.
    pub async fn list(
        &self,
        chain: impl Into<Chain>,
        filter: &AuditFilter,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Page<AuditEvent, u64>, AuditError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let rows = self
            .storage
            .list(&chain.into().key(), filter, after, limit + 1)
            .await?;
        let mut items = rows
            .into_iter()
            .map(|row| row.into_event())
            .collect::<Result<Vec<_>, _>>()?;
        // One row more than asked for says there is a next page.
        let next_after = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|event| event.seq)
        } else {
            None
        };
        Ok(Page { items, next_after })
    }

    /// Recomputes `chain` from the genesis: every sequence number present, every entry linked
    /// to its predecessor's hash, every hash matching its entry, and the chain head agreeing
    /// with the last entry. Entries appended while it runs are not covered (the head is read
    /// first) but do not cause false alarms.
    ///
    /// # Errors
    /// Only for failures to read; a broken chain is a report, not an error.
    pub async fn verify(&self, chain: impl Into<Chain>) -> Result<VerifyReport, AuditError> {
        let chain = chain.into();
        let key = chain.key();
        let head = self.storage.head(&key).await?;
        let up_to = head.as_ref().map_or(u64::MAX, |(seq, _)| *seq);
        let mut walk = ChainWalk::new();
        let broken = match self.walk(&key, up_to, &mut walk).await? {
            Err(broken) => Some(broken),
            Ok(()) => match walk.finish(head.as_ref()) {
                Err(broken) => Some(broken),
                Ok(()) => self.check_nothing_beyond_head(&key, head.as_ref()).await?,
            },
        };
        Ok(VerifyReport {
            chain,
            verified: walk.verified(),
            broken,
        })
    }

    /// [`AuditReader::verify`] for every chain (every tenant's and the platform's), in chain
    /// id order.
    ///
    /// # Errors
    /// As for `verify`; a chain id that is neither a tenant id nor `platform` is
    /// [`AuditError::Corrupt`].
    pub async fn verify_all(&self) -> Result<Vec<VerifyReport>, AuditError> {
        let mut reports = Vec::new();
        for key in self.storage.chains().await? {
            reports.push(self.verify(key.parse::<Chain>()?).await?);
        }
        Ok(reports)
    }

    async fn walk(
        &self,
        key: &str,
        up_to: u64,
        walk: &mut ChainWalk,
    ) -> Result<Result<(), ChainBreak>, AuditError> {
        let mut after = 0;
        loop {
            let rows = self.storage.rows(key, after, up_to, VERIFY_CHUNK).await?;
            for row in &rows {
                if let Err(broken) = walk.check(row) {
                    return Ok(Err(broken));
                }
            }
            match rows.last() {
                Some(last) if rows.len() == VERIFY_CHUNK as usize => after = last.seq,
                _ => return Ok(Ok(())),
            }
        }
    }

    /// An entry past the head is fine if a writer committed it meanwhile (the head moves in
    /// the same transaction, and never backwards); if the head is still behind it, the head
    /// was rolled back to hide the newest entries from verification.
    async fn check_nothing_beyond_head(
        &self,
        key: &str,
        head: Option<&(u64, String)>,
    ) -> Result<Option<ChainBreak>, AuditError> {
        let Some((head_seq, _)) = head else {
            return Ok(None);
        };
        let beyond = self.storage.rows(key, *head_seq, u64::MAX, 1).await?;
        let Some(row) = beyond.first() else {
            return Ok(None);
        };
        let now = self.storage.head(key).await?;
        if now.is_some_and(|(seq, _)| seq >= row.seq) {
            return Ok(None);
        }
        Ok(Some(ChainBreak {
            seq: *head_seq,
            kind: crate::verify::BreakKind::HeadMismatch,
        }))
    }
}

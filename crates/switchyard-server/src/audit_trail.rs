//! Recording API changes in the tenant's audit chain.

use switchyard_audit::{Action, AuditEntry, Chain};

use crate::{AppState, auth::Principal};

/// Records a successful change made by `principal`. Queued, not awaited to disk: the audit
/// writer batches entries. Entries are never dropped; if the log is closed (shutting down) the
/// failure is logged.
pub async fn record_change(
    state: &AppState,
    principal: &Principal,
    chain: impl Into<Chain>,
    action: Action,
    target: String,
) {
    let context = principal.audit_context();
    let mut entry = AuditEntry::new(chain, context.actor, action, target);
    if let Some(request_id) = context.request_id {
        entry = entry.with_request_id(request_id);
    }
    if let Err(error) = state.audit.record(entry).await {
        tracing::error!(%error, "could not record a change in the audit log");
    }
}

//! The scheduled refresh: a platform job that refreshes OAuth tokens about to expire (so a
//! call rarely waits for a refresh) and tokens not refreshed for `oauth.idle_refresh_after`
//! (providers revoke idle refresh tokens), then forgets authorization states older than a day.
//! It reads only connection rows: the expiry and last refresh are in the credential reference,
//! no secret is decrypted to decide.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use switchyard_connectors::store::{ConnectSessionStore, CredentialStatus};
use switchyard_jobs::queue::{Job, JobError};
use switchyard_jobs::worker::JobHandler;
use time::OffsetDateTime;

use super::refresh::{Refresher, Trigger, code_spec};

pub const OAUTH_REFRESH_JOB: &str = "oauth.refresh_due";

/// Connections read per page.
const PAGE: u32 = 200;
/// Authorization states are kept this long after they expire or are used.
const STATE_KEEP: Duration = Duration::from_secs(24 * 3600);

pub struct RefreshDue {
    pub refresher: Arc<Refresher>,
    pub sessions: ConnectSessionStore,
}

#[async_trait]
impl JobHandler for RefreshDue {
    async fn run(&self, _job: &Job) -> Result<(), JobError> {
        let refresher = &self.refresher;
        let mut after = None;
        let (mut refreshed, mut failed) = (0u64, 0u64);
        loop {
            let page = refresher
                .connections
                .with_credential_mode("oauth2", after.as_ref(), PAGE)
                .await
                .map_err(|e| JobError::internal(format!("listing connections: {}", e.code())))?;
            let Some(last) = page.last() else { break };
            after = Some((last.tenant_id, last.id));
            let now = OffsetDateTime::now_utc();
            for connection in &page {
                let Some(reference) = &connection.credential else {
                    continue;
                };
                if connection.credential_status != CredentialStatus::Valid
                    || code_spec(&refresher.catalogue, &connection.provider, &reference.mode)
                        .is_none()
                    || !refresher
                        .schedule
                        .due(reference, connection.created_at, now)
                {
                    continue;
                }
                match refresher
                    .refresh(
                        connection.tenant_id,
                        connection.id,
                        reference.version,
                        Trigger::Scheduled,
                    )
                    .await
                {
                    Ok(_) => refreshed += 1,
                    Err(error) => {
                        failed += 1;
                        tracing::warn!(connection = %connection.id, code = error.code(), "scheduled token refresh failed");
                    }
                }
            }
            if page.len() < PAGE as usize {
                break;
            }
        }
        if refreshed + failed > 0 {
            tracing::info!(refreshed, failed, "scheduled token refresh done");
        }
        let before = OffsetDateTime::now_utc() - STATE_KEEP;
        if let Err(error) = self.sessions.purge_states(before).await {
            tracing::warn!(
                code = error.code(),
                "could not purge old authorization states"
            );
        }
        Ok(())
    }
}

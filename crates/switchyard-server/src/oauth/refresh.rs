//! Refreshing a connection's OAuth access token, once across the cluster.
//!
//! A token is refreshed ahead of its expiry (`oauth.refresh_margin`) when a call needs it,
//! and by the scheduled refresh (tokens about to expire, and idle ones). Every refresh of a
//! credential runs under its refresh lock ([`RefreshLocks`]: an in-process mutex, then on
//! PostgreSQL an advisory lock), and re-reads the connection under it: a caller that waited
//! finds the credential at a newer version and uses it instead of refreshing again, so a
//! rotating refresh token is never sent twice. The new tokens (access and, when rotated,
//! refresh) are stored as one new vault version, and the connection row is moved to it by a
//! compare-and-swap on the credential version, before anyone uses the new access token.
//!
//! `invalid_grant` after that re-read means the refresh token is dead: the connection's
//! `credential_status` becomes `reauthorization_required` and a
//! `switchyard.connection.reauthorization_required` event is published. Transient failures
//! (the token endpoint down, 5xx, a timeout) are retried a few times under the lock; the old
//! token stays stored, and is still used while it has not expired.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use switchyard_audit::{Action, Actor, AuditEntry, AuditLog, Outcome};
use switchyard_connectors::credentials::oauth::TokenSet;
use switchyard_connectors::credentials::{
    TokenBroker, TokenError, connection_base_url, oauth_token_url,
};
use switchyard_connectors::manifest::{AuthMode, OAuth2Spec, OAuthGrant};
use switchyard_connectors::store::{
    Connection, ConnectionStore, CredentialRef, CredentialStatus, RefreshLocks,
};
use switchyard_core::{ConnectionId, TenantId};
use switchyard_http::CredentialError;
use switchyard_store::Database;
use switchyard_vault::{AuditContext, AuditedVault, SecretRef, VersionState};
use time::OffsetDateTime;

use super::clients::OAuthClients;
use crate::connectors::Catalogue;
use crate::connectors::credentials::secret_name;

/// Published when a connection's refresh token is refused for good.
pub const REAUTHORIZATION_REQUIRED_EVENT: &str = "switchyard.connection.reauthorization_required";

/// Waits before the second and third attempt at a token endpoint that failed transiently.
const RETRY_WAITS: [Duration; 2] = [Duration::from_millis(250), Duration::from_secs(1)];

/// Why a refresh did not produce a usable token. Messages carry codes, never tokens.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("the provider refused the refresh token: the connection must be authorized again")]
    Reauthorization,
    #[error("the connection has no refresh token and its access token expired")]
    NoRefreshToken,
    #[error("the tenant registered no OAuth client for `{0}`")]
    NoClient(String),
    #[error("the connection or its credential is gone")]
    Gone,
    #[error("the connection's credential changed while it was refreshed")]
    Moved,
    #[error("`{0}` has no OAuth authorization-code mode")]
    NotOAuth(String),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("{what} failed: {code}")]
    Dependency { what: &'static str, code: String },
}

impl RefreshError {
    /// A stable reason for metrics, audit entries and run records.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Reauthorization => "invalid_grant",
            Self::NoRefreshToken => "no_refresh_token",
            Self::NoClient(_) => "no_oauth_client",
            Self::Gone => "gone",
            Self::Moved => "moved",
            Self::NotOAuth(_) => "not_oauth",
            Self::Token(error) => error.code(),
            Self::Dependency { .. } => "dependency_failed",
        }
    }

    fn dependency(what: &'static str, code: impl ToString) -> Self {
        Self::Dependency {
            what,
            code: code.to_string(),
        }
    }
}

impl From<RefreshError> for CredentialError {
    fn from(error: RefreshError) -> Self {
        match error {
            RefreshError::Token(token) => token.into(),
            RefreshError::Reauthorization
            | RefreshError::NoRefreshToken
            | RefreshError::NoClient(_) => CredentialError::refused(error.to_string()),
            other => CredentialError::unavailable(other.to_string()),
        }
    }
}

/// What asked for a refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A call needs the token and it is due.
    OnUse,
    /// The scheduled refresh: due soon, or idle too long.
    Scheduled,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Self::OnUse => "on_use",
            Self::Scheduled => "scheduled",
        }
    }
}

/// When the scheduled refresh refreshes a token.
#[derive(Debug, Clone, Copy)]
pub struct SchedulePolicy {
    /// Refresh when the token expires within this (the margin plus one check interval, so
    /// the next check is not too late).
    pub ahead: Duration,
    /// Refresh a token refreshed longer ago than this even if unused.
    pub idle_after: Duration,
}

impl SchedulePolicy {
    /// Whether a credential is due by its reference's (non-secret) expiry and refresh times.
    /// A token that never expires (a Slack bot token without rotation, a GitHub OAuth app
    /// token) has nothing to refresh and is never due.
    pub fn due(
        &self,
        reference: &CredentialRef,
        created: OffsetDateTime,
        now: OffsetDateTime,
    ) -> bool {
        let Some(expires) = reference.expires_at else {
            return false;
        };
        let last = reference.refreshed_at.unwrap_or(created);
        expires - self.ahead <= now || last + self.idle_after <= now
    }
}

/// Refreshes connections' OAuth tokens; one per process.
pub struct Refresher {
    pub connections: ConnectionStore,
    pub clients: OAuthClients,
    pub vault: AuditedVault,
    pub locks: RefreshLocks,
    pub broker: Arc<TokenBroker>,
    pub catalogue: Catalogue,
    pub database: Database,
    pub audit: AuditLog,
    /// Refresh this long before expiry.
    pub margin: Duration,
    pub schedule: SchedulePolicy,
}

fn context() -> AuditContext {
    AuditContext::new(Actor::Internal {
        component: "oauth.refresh".to_owned(),
        run_id: None,
    })
}

/// The authorization-code spec of a connection's auth mode, if that is what it is.
pub fn code_spec(catalogue: &Catalogue, provider: &str, mode: &str) -> Option<OAuth2Spec> {
    match catalogue.auth_mode(provider, mode)? {
        AuthMode::OAuth2(spec) if spec.grant == OAuthGrant::AuthorizationCode => Some(spec),
        _ => None,
    }
}

impl Refresher {
    /// The fields to place for a call: refreshed first when the access token is due. A
    /// refresh that fails transiently falls back to the stored token while it is still valid.
    pub async fn fresh_fields(
        &self,
        connection: &Connection,
        reference: &CredentialRef,
        fields: Map<String, Value>,
    ) -> Result<Map<String, Value>, RefreshError> {
        if connection.credential_status == CredentialStatus::ReauthorizationRequired {
            return Err(RefreshError::Reauthorization);
        }
        let Ok(stored) = TokenSet::from_fields(&fields) else {
            // Checked when stored; a credential without an access token is not ours to mend.
            return Ok(fields);
        };
        let now = OffsetDateTime::now_utc();
        if !stored.due(now, self.margin) {
            return Ok(fields);
        }
        match self
            .refresh(
                connection.tenant_id,
                connection.id,
                reference.version,
                Trigger::OnUse,
            )
            .await
        {
            Ok(fresh) => Ok(fresh),
            Err(error @ (RefreshError::Token(_) | RefreshError::Dependency { .. }))
                if stored.expires_at.is_some_and(|at| at > now) =>
            {
                tracing::warn!(
                    connection = %connection.id,
                    code = error.code(),
                    "token refresh failed; the current access token is still valid and used"
                );
                Ok(fields)
            }
            Err(error) => Err(error),
        }
    }

    /// Refreshes the connection's token unless it moved past `seen_version` and is no longer
    /// due. Returns the fields now stored.
    pub async fn refresh(
        &self,
        tenant: TenantId,
        id: ConnectionId,
        seen_version: u32,
        trigger: Trigger,
    ) -> Result<Map<String, Value>, RefreshError> {
        let started = Instant::now();
        let name = secret_name(&id);
        let guard = self
            .locks
            .lock(&tenant.to_string(), &name)
            .await
            .map_err(|e| RefreshError::dependency("the refresh lock", e.code()))?;
        let outcome = self.refresh_locked(tenant, id, seen_version, trigger).await;
        if let Err(error) = guard.release().await {
            tracing::warn!(
                code = error.code(),
                "the refresh lock was not released cleanly"
            );
        }
        let label = match &outcome {
            Ok(Refreshed::Now(_)) => "refreshed",
            Ok(Refreshed::Already(_)) => "already_fresh",
            Err(error) => error.code(),
        };
        metrics::counter!(
            "switchyard_oauth_refresh_total",
            "trigger" => trigger.as_str(),
            "outcome" => label,
        )
        .increment(1);
        if matches!(outcome, Ok(Refreshed::Now(_)) | Err(_)) {
            metrics::histogram!("switchyard_oauth_refresh_seconds")
                .record(started.elapsed().as_secs_f64());
            let mut entry = AuditEntry::new(
                tenant,
                context().actor,
                Action::OAUTH_TOKEN_REFRESH,
                format!("connection:{id}"),
            );
            if let Err(error) = &outcome {
                entry = entry.with_outcome(Outcome::failure(error.code()));
            }
            if let Err(error) = self.audit.record(entry).await {
                tracing::error!(%error, "could not audit a token refresh");
            }
        }
        outcome.map(Refreshed::into_fields)
    }

    async fn refresh_locked(
        &self,
        tenant: TenantId,
        id: ConnectionId,
        seen_version: u32,
        trigger: Trigger,
    ) -> Result<Refreshed, RefreshError> {
        let row = self
            .connections
            .get(&tenant, &id)
            .await
            .map_err(|e| RefreshError::dependency("the connection store", e.code()))?
            .ok_or(RefreshError::Gone)?;
        if row.credential_status == CredentialStatus::ReauthorizationRequired {
            return Err(RefreshError::Reauthorization);
        }
        let mut reference = row.credential.clone().ok_or(RefreshError::Gone)?;
        let spec = code_spec(&self.catalogue, &row.provider, &reference.mode)
            .ok_or_else(|| RefreshError::NotOAuth(row.provider.clone()))?;
        if let Some(adopted) = self.adopt_stored_refresh(&row, &reference).await? {
            reference = adopted;
        }
        let fields = self.resolve(tenant, &reference).await?;
        let stored = TokenSet::from_fields(&fields)
            .map_err(|e| RefreshError::dependency("the stored credential", e))?;
        let now = OffsetDateTime::now_utc();
        let still_due = match trigger {
            Trigger::OnUse => stored.due(now, self.margin),
            Trigger::Scheduled => self.schedule.due(&reference, row.created_at, now),
        };
        if reference.version != seen_version && !still_due {
            // Refreshed by someone else while this caller waited for the lock.
            return Ok(Refreshed::Already(fields));
        }
        let Some(refresh_token) = stored.refresh_token.clone() else {
            // Nothing to refresh with: once the access token expired, only a person can help.
            if stored.expires_at.is_some_and(|at| at <= now) {
                self.require_reauthorization(&row, "no_refresh_token").await;
                return Err(RefreshError::Reauthorization);
            }
            return Err(RefreshError::NoRefreshToken);
        };
        let (_, registration) = self
            .clients
            .registration(&context(), tenant, &row.provider)
            .await
            .map_err(|e| RefreshError::dependency("the OAuth client", e))?
            .ok_or_else(|| RefreshError::NoClient(row.provider.clone()))?;
        let base_url = connection_base_url(
            &self.manifest_base(&row.provider)?,
            row.base_url.as_deref(),
            &row.config,
        )?;
        let token_url = oauth_token_url(&spec, &row.config, &base_url)?;
        let mut waits = RETRY_WAITS.iter();
        let issued = loop {
            match self
                .broker
                .refresh(&spec, token_url.clone(), &registration, &refresh_token)
                .await
            {
                Ok(issued) => break issued,
                Err(error) if error.is_invalid_grant() => {
                    self.require_reauthorization(&row, "invalid_grant").await;
                    return Err(RefreshError::Reauthorization);
                }
                Err(error) if error.is_transient() => match waits.next() {
                    Some(wait) => {
                        tracing::info!(connection = %id, code = error.code(), "token endpoint failed; retrying");
                        tokio::time::sleep(*wait).await;
                    }
                    None => return Err(error.into()),
                },
                Err(error) => return Err(error.into()),
            }
        };
        let issued = issued.keep_refresh_token(Some(refresh_token));
        let expires_at = issued.expires_at;
        let fresh = issued.into_fields();
        self.store(&row, &reference, &fresh, expires_at).await?;
        Ok(Refreshed::Now(fresh))
    }

    fn manifest_base(&self, provider: &str) -> Result<String, RefreshError> {
        self.catalogue
            .registry()
            .manifest(provider)
            .map(|manifest| manifest.base_url.clone())
            .ok_or_else(|| RefreshError::NotOAuth(provider.to_owned()))
    }

    async fn resolve(
        &self,
        tenant: TenantId,
        reference: &CredentialRef,
    ) -> Result<Map<String, Value>, RefreshError> {
        let secret = self
            .vault
            .resolve(
                &context(),
                &SecretRef::new(
                    tenant.to_string(),
                    reference.name.clone(),
                    reference.version,
                ),
            )
            .await
            .map_err(|e| RefreshError::dependency("the vault", e.code()))?;
        secret
            .expose_str()
            .and_then(|text| serde_json::from_str(text).ok())
            .ok_or_else(|| RefreshError::dependency("the stored credential", "not_json"))
    }

    /// A refresh that stored its tokens but crashed before the row pointed at them leaves a
    /// newer, unconfirmed version in the vault; it holds the only refresh token the provider
    /// still honours (a rotating one was spent). Adopt it instead of refreshing with the old.
    async fn adopt_stored_refresh(
        &self,
        row: &Connection,
        reference: &CredentialRef,
    ) -> Result<Option<CredentialRef>, RefreshError> {
        let versions = self
            .vault
            .versions(row.tenant_id, &reference.name)
            .await
            .map_err(|e| RefreshError::dependency("the vault", e.code()))?;
        let Some(newer) = versions
            .iter()
            .find(|v| v.state == VersionState::Current && v.reference.version > reference.version)
        else {
            return Ok(None);
        };
        let fields = self
            .resolve(
                row.tenant_id,
                &CredentialRef {
                    version: newer.reference.version,
                    ..reference.clone()
                },
            )
            .await?;
        let expires_at = TokenSet::from_fields(&fields)
            .ok()
            .and_then(|set| set.expires_at);
        let adopted = CredentialRef {
            version: newer.reference.version,
            fingerprint: newer.fingerprint.to_string(),
            expires_at,
            refreshed_at: Some(newer.created_at),
            ..reference.clone()
        };
        self.swap(row, reference.version, adopted.clone()).await?;
        self.confirm(&newer.reference).await;
        tracing::info!(connection = %row.id, version = adopted.version, "adopted tokens a crashed refresh had stored");
        Ok(Some(adopted))
    }

    /// Stores `fresh` as the credential's next version and points the row at it.
    async fn store(
        &self,
        row: &Connection,
        reference: &CredentialRef,
        fresh: &Map<String, Value>,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<(), RefreshError> {
        let plaintext = serde_json::to_vec(fresh)
            .map_err(|e| RefreshError::dependency("serialising the tokens", e))?;
        let stored = self
            .vault
            .rotate(&context(), row.tenant_id, &reference.name, &plaintext)
            .await
            .map_err(|e| RefreshError::dependency("the vault", e.code()))?;
        let next = CredentialRef {
            version: stored.reference.version,
            fingerprint: stored.fingerprint.to_string(),
            expires_at,
            refreshed_at: Some(OffsetDateTime::now_utc()),
            ..reference.clone()
        };
        if let Err(error) = self.swap(row, reference.version, next).await {
            // The row moved on without us (a rotation through the API): ours is not used.
            if let Err(rollback) = self.vault.rollback(&context(), &stored.reference).await {
                tracing::error!(
                    code = rollback.code(),
                    "could not roll back an unused refreshed credential"
                );
            }
            return Err(error);
        }
        self.confirm(&stored.reference).await;
        Ok(())
    }

    async fn swap(
        &self,
        row: &Connection,
        expected: u32,
        next: CredentialRef,
    ) -> Result<(), RefreshError> {
        self.connections
            .swap_credential(&row.tenant_id, &row.id, expected, next)
            .await
            .map_err(|e| RefreshError::dependency("the connection store", e.code()))?
            .map(|_| ())
            .ok_or(RefreshError::Moved)
    }

    /// Destroys the version before `reference`. The row already points at `reference`, so a
    /// failure here leaves an extra version behind, nothing worse; the next refresh adopts
    /// or replaces it.
    async fn confirm(&self, reference: &SecretRef) {
        if let Err(error) = self.vault.confirm(&context(), reference).await {
            tracing::warn!(
                code = error.code(),
                "could not destroy the previous token version"
            );
        }
    }

    async fn require_reauthorization(&self, row: &Connection, reason: &'static str) {
        match self
            .connections
            .set_credential_status(
                &row.tenant_id,
                &row.id,
                CredentialStatus::ReauthorizationRequired,
            )
            .await
        {
            Ok(_) => {}
            Err(error) => {
                tracing::error!(code = error.code(), connection = %row.id, "could not mark the connection for reauthorization");
                return;
            }
        }
        tracing::warn!(connection = %row.id, provider = %row.provider, "refresh token refused: the connection needs to be authorized again");
        let event = switchyard_outbound::NewEvent::new(
            REAUTHORIZATION_REQUIRED_EVENT,
            json!({
                "connection_id": row.id,
                "provider": row.provider,
                "name": row.name,
                "reason": reason,
            }),
        )
        .ordering_key(row.id.to_string());
        if let Err(error) =
            switchyard_outbound::publish(&self.database, &self.vault, row.tenant_id, event).await
        {
            tracing::error!(%error, connection = %row.id, "could not publish the reauthorization event");
        }
        let entry = AuditEntry::new(
            row.tenant_id,
            context().actor,
            Action::CONNECTION_REAUTHORIZATION_REQUIRED,
            format!("connection:{}", row.id),
        );
        if let Err(error) = self.audit.record(entry).await {
            tracing::error!(%error, "could not audit a reauthorization");
        }
    }
}

enum Refreshed {
    Now(Map<String, Value>),
    Already(Map<String, Value>),
}

impl Refreshed {
    fn into_fields(self) -> Map<String, Value> {
        match self {
            Self::Now(fields) | Self::Already(fields) => fields,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(
        expires_at: Option<OffsetDateTime>,
        refreshed_at: Option<OffsetDateTime>,
    ) -> CredentialRef {
        CredentialRef {
            name: "connection:c".into(),
            version: 1,
            fingerprint: "f".into(),
            mode: "oauth2".into(),
            expires_at,
            refreshed_at,
        }
    }

    #[test]
    fn the_schedule_refreshes_expiring_and_idle_tokens_only() {
        let policy = SchedulePolicy {
            ahead: Duration::from_secs(600),
            idle_after: Duration::from_secs(7 * 24 * 3600),
        };
        let now = OffsetDateTime::now_utc();
        let hour = time::Duration::hours(1);
        // Expires within the margin plus one check interval.
        assert!(policy.due(
            &reference(Some(now + time::Duration::minutes(5)), Some(now)),
            now,
            now
        ));
        // An hour left, refreshed just now: not yet.
        assert!(!policy.due(&reference(Some(now + hour), Some(now)), now, now));
        // An hour left but idle for eight days: refreshed so the provider keeps it alive.
        let eight_days_ago = now - time::Duration::days(8);
        assert!(policy.due(
            &reference(Some(now + hour), Some(eight_days_ago)),
            eight_days_ago,
            now
        ));
        // Never refreshed: the connection's creation counts.
        assert!(policy.due(&reference(Some(now + hour), None), eight_days_ago, now));
        // A token that never expires has nothing to refresh, however old.
        assert!(!policy.due(&reference(None, Some(eight_days_ago)), eight_days_ago, now));
    }

    #[test]
    fn refusals_say_whether_a_person_is_needed() {
        let refused: CredentialError = RefreshError::Reauthorization.into();
        assert!(
            refused.to_string().contains("authorized again"),
            "{refused}"
        );
        assert_eq!(RefreshError::Reauthorization.code(), "invalid_grant");
        assert_eq!(
            RefreshError::NoClient("slack".into()).code(),
            "no_oauth_client"
        );
    }
}

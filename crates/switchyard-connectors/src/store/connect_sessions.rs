//! [`ConnectSessionStore`]: connect sessions and the OAuth states of their redirects.
//!
//! A connect session is one end user's attempt to connect an account (or repair one, with
//! `connection_id`). It is found by the SHA-256 of its token, which the end user's browser
//! carries: the token is the capability, so that lookup is not scoped by tenant; the session
//! it returns carries its own tenant. Each authorization redirect stores an [`OAuthState`]
//! (again only a hash of the `state` parameter), taken exactly once by the callback.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_core::{ConnectSessionId, ConnectionId, TenantId};
use switchyard_store::{Database, DbTime, Page, with_conn};
use time::OffsetDateTime;

use super::error::{Result, StoreError};

const SESSIONS: &str = "connect_sessions";
const STATES: &str = "oauth_states";
const SESSION_COLUMNS: &str = "tenant_id, id, token_hash, end_user, allowed_providers, \
                               redirect_url, connection_id, status, result, expires_at, \
                               created_at, updated_at";
const STATE_COLUMNS: &str = "state_hash, tenant_id, session_id, provider, sealed_verifier, \
                             redirect_uri, expires_at, used_at, created_at";

/// Where a connect session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Pending,
    Completed,
    Failed,
    Expired,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "completed" => Some(Self::Completed),
            "failed" => Some(Self::Failed),
            "expired" => Some(Self::Expired),
            _ => None,
        }
    }
}

/// A connect session as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectSession {
    pub tenant_id: TenantId,
    pub id: ConnectSessionId,
    /// Hex SHA-256 of the session token (the token itself is never stored).
    pub token_hash: String,
    /// The end user, as the tenant's backend described them.
    pub end_user: Value,
    pub allowed_providers: Vec<String>,
    /// Where the end user's browser goes when the flow ends.
    pub redirect_url: Option<String>,
    /// The connection this session repairs, if any.
    pub connection_id: Option<ConnectionId>,
    pub status: SessionStatus,
    /// The outcome once finished: the connection made, or the error.
    pub result: Option<Value>,
    pub expires_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A session to create, pending.
#[derive(Debug, Clone)]
pub struct NewConnectSession {
    pub tenant_id: TenantId,
    pub id: ConnectSessionId,
    pub token_hash: String,
    pub end_user: Value,
    pub allowed_providers: Vec<String>,
    pub redirect_url: Option<String>,
    pub connection_id: Option<ConnectionId>,
    pub expires_at: OffsetDateTime,
}

/// The `state` of one authorization redirect, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthState {
    /// Hex SHA-256 of the `state` parameter.
    pub state_hash: String,
    pub tenant_id: TenantId,
    pub session_id: ConnectSessionId,
    pub provider: String,
    /// The PKCE verifier sealed by the vault (base64): opaque without the tenant's key.
    pub sealed_verifier: Option<String>,
    /// The redirect URI sent with the authorization request, which the token request repeats.
    pub redirect_uri: String,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

/// What [`ConnectSessionStore::take_state`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum StateLookup {
    /// Unused and unexpired: it is now marked used, and this caller alone has it.
    Valid(OAuthState),
    /// Taken before (a replayed or doubled callback).
    Used,
    /// Never taken, but past its expiry.
    Expired,
    /// No such state (never issued, or purged).
    Unknown,
}

type SessionRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    DbTime,
    DbTime,
    DbTime,
);

type StateRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    DbTime,
    Option<DbTime>,
    DbTime,
);

fn session_from_row(row: SessionRow) -> Result<ConnectSession> {
    let (
        tenant,
        id,
        token_hash,
        end_user,
        allowed_providers,
        redirect_url,
        connection_id,
        status,
        result,
        expires,
        created,
        updated,
    ) = row;
    let corrupt = |e: &dyn std::fmt::Display| StoreError::corrupt(SESSIONS, e);
    Ok(ConnectSession {
        tenant_id: tenant.parse().map_err(|e| corrupt(&e))?,
        id: id.parse().map_err(|e| corrupt(&e))?,
        token_hash,
        end_user: serde_json::from_str(&end_user).map_err(|e| corrupt(&e))?,
        allowed_providers: serde_json::from_str(&allowed_providers).map_err(|e| corrupt(&e))?,
        redirect_url,
        connection_id: connection_id
            .map(|text| text.parse())
            .transpose()
            .map_err(|e| corrupt(&e))?,
        status: SessionStatus::parse(&status).ok_or_else(|| corrupt(&"unknown status"))?,
        result: result
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|e| corrupt(&e))?,
        expires_at: expires.get(),
        created_at: created.get(),
        updated_at: updated.get(),
    })
}

fn state_from_row(row: StateRow) -> Result<OAuthState> {
    let (
        state_hash,
        tenant,
        session,
        provider,
        sealed_verifier,
        redirect_uri,
        expires,
        used,
        created,
    ) = row;
    let corrupt = |e: &dyn std::fmt::Display| StoreError::corrupt(STATES, e);
    Ok(OAuthState {
        state_hash,
        tenant_id: tenant.parse().map_err(|e| corrupt(&e))?,
        session_id: session.parse().map_err(|e| corrupt(&e))?,
        provider,
        sealed_verifier,
        redirect_uri,
        expires_at: expires.get(),
        used_at: used.map(DbTime::get),
        created_at: created.get(),
    })
}

fn json_text<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(StoreError::InvalidJson)
}

fn require_hash(field: &'static str, hash: &str) -> Result<()> {
    if hash.is_empty() {
        return Err(StoreError::Invalid {
            field,
            reason: "must not be empty",
        });
    }
    Ok(())
}

/// The tables of connect sessions and OAuth states.
#[derive(Debug, Clone)]
pub struct ConnectSessionStore {
    database: Database,
}

impl ConnectSessionStore {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Stores a new pending session.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for an empty token hash.
    pub async fn create(&self, new: NewConnectSession) -> Result<ConnectSession> {
        require_hash("token_hash", &new.token_hash)?;
        let end_user = json_text(&new.end_user)?;
        let allowed_providers = json_text(&new.allowed_providers)?;
        let sql = format!(
            "INSERT INTO connect_sessions ({SESSION_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10, $10) \
             RETURNING {SESSION_COLUMNS}"
        );
        let row: SessionRow = with_conn!(&self.database, |conn| {
            sqlx::query_as(&sql)
                .bind(new.tenant_id.to_string())
                .bind(new.id.to_string())
                .bind(&new.token_hash)
                .bind(&end_user)
                .bind(&allowed_providers)
                .bind(new.redirect_url.as_deref())
                .bind(new.connection_id.map(|id| id.to_string()))
                .bind(SessionStatus::Pending.as_str())
                .bind(DbTime::new(new.expires_at))
                .bind(DbTime::now())
                .fetch_one(&mut *conn)
                .await?
        });
        session_from_row(row)
    }

    /// The session whose token hashes to `token_hash`, of whichever tenant: the token is the
    /// capability. Callers check its status and expiry.
    pub async fn by_token_hash(&self, token_hash: &str) -> Result<Option<ConnectSession>> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM connect_sessions WHERE token_hash = $1");
        let row: Option<SessionRow> = with_conn!(&self.database, |conn| {
            sqlx::query_as(&sql)
                .bind(token_hash)
                .fetch_optional(&mut *conn)
                .await?
        });
        row.map(session_from_row).transpose()
    }

    /// The session `id` of `tenant`.
    pub async fn get(
        &self,
        tenant: &TenantId,
        id: &ConnectSessionId,
    ) -> Result<Option<ConnectSession>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM connect_sessions WHERE tenant_id = $1 AND id = $2"
        );
        let row: Option<SessionRow> = with_conn!(&self.database, |conn| {
            sqlx::query_as(&sql)
                .bind(tenant.to_string())
                .bind(id.to_string())
                .fetch_optional(&mut *conn)
                .await?
        });
        row.map(session_from_row).transpose()
    }

    /// The tenant's sessions in id (creation) order, starting after `after`.
    pub async fn list(
        &self,
        tenant: &TenantId,
        after: Option<&ConnectSessionId>,
        limit: u32,
    ) -> Result<Page<ConnectSession, ConnectSessionId>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM connect_sessions \
             WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
        );
        let rows: Vec<SessionRow> = with_conn!(&self.database, |conn| {
            sqlx::query_as(&sql)
                .bind(tenant.to_string())
                .bind(after.map(ToString::to_string))
                .bind(i64::from(limit) + 1)
                .fetch_all(&mut *conn)
                .await?
        });
        let sessions = rows
            .into_iter()
            .map(session_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(sessions, limit, |s| s.id))
    }

    /// Moves a pending session to `status` with its `result`. `None` when the tenant has no
    /// such session or it is no longer pending (a session finishes once).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when `status` is `Pending`.
    pub async fn finish(
        &self,
        tenant: &TenantId,
        id: &ConnectSessionId,
        status: SessionStatus,
        result: Value,
    ) -> Result<Option<ConnectSession>> {
        if status == SessionStatus::Pending {
            return Err(StoreError::Invalid {
                field: "status",
                reason: "a session finishes as completed, failed or expired",
            });
        }
        let result = json_text(&result)?;
        let sql = format!(
            "UPDATE connect_sessions SET status = $3, result = $4, updated_at = $5 \
             WHERE tenant_id = $1 AND id = $2 AND status = $6 RETURNING {SESSION_COLUMNS}"
        );
        let row: Option<SessionRow> = with_conn!(&self.database, |conn| {
            sqlx::query_as(&sql)
                .bind(tenant.to_string())
                .bind(id.to_string())
                .bind(status.as_str())
                .bind(&result)
                .bind(DbTime::now())
                .bind(SessionStatus::Pending.as_str())
                .fetch_optional(&mut *conn)
                .await?
        });
        row.map(session_from_row).transpose()
    }

    /// Stores the state of an authorization redirect. Its `used_at` is ignored: a new state
    /// is unused.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for an empty state hash.
    pub async fn create_state(&self, state: OAuthState) -> Result<()> {
        require_hash("state_hash", &state.state_hash)?;
        let sql = format!(
            "INSERT INTO oauth_states ({STATE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8)"
        );
        with_conn!(&self.database, |conn| {
            sqlx::query(&sql)
                .bind(&state.state_hash)
                .bind(state.tenant_id.to_string())
                .bind(state.session_id.to_string())
                .bind(&state.provider)
                .bind(state.sealed_verifier.as_deref())
                .bind(&state.redirect_uri)
                .bind(DbTime::new(state.expires_at))
                .bind(DbTime::new(state.created_at))
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }

    /// Takes the state `state_hash`, once: marks it used at `now` and returns it if it was
    /// unused and unexpired. Of concurrent takers exactly one gets [`StateLookup::Valid`];
    /// the others see [`StateLookup::Used`].
    pub async fn take_state(&self, state_hash: &str, now: OffsetDateTime) -> Result<StateLookup> {
        let now = DbTime::new(now);
        // One conditional UPDATE is the claim: SQLite runs writes one at a time, and
        // PostgreSQL re-checks `used_at IS NULL` on the row a concurrent taker committed.
        let sql = format!(
            "UPDATE oauth_states SET used_at = $2 \
             WHERE state_hash = $1 AND used_at IS NULL AND expires_at > $2 \
             RETURNING {STATE_COLUMNS}"
        );
        let taken: Option<StateRow> = with_conn!(&self.database, |conn| {
            sqlx::query_as(&sql)
                .bind(state_hash)
                .bind(now)
                .fetch_optional(&mut *conn)
                .await?
        });
        if let Some(row) = taken {
            return state_from_row(row).map(StateLookup::Valid);
        }
        let found: Option<(Option<DbTime>,)> = with_conn!(&self.database, |conn| {
            sqlx::query_as("SELECT used_at FROM oauth_states WHERE state_hash = $1")
                .bind(state_hash)
                .fetch_optional(&mut *conn)
                .await?
        });
        Ok(match found {
            None => StateLookup::Unknown,
            Some((Some(_),)) => StateLookup::Used,
            // Unused, yet the claim matched nothing: it has expired.
            Some((None,)) => StateLookup::Expired,
        })
    }

    /// Deletes the states no callback can take any more, whose moment passed before
    /// `before`: used ones (used before `before`), expired ones (expired before `before`), and
    /// those of sessions that are finished or gone (created before `before`). Returns how
    /// many rows were removed.
    pub async fn purge_states(&self, before: OffsetDateTime) -> Result<u64> {
        let before = DbTime::new(before);
        let removed = with_conn!(&self.database, |conn| {
            sqlx::query(
                "DELETE FROM oauth_states \
                 WHERE (used_at IS NOT NULL AND used_at < $1) \
                    OR expires_at < $1 \
                    OR (created_at < $1 AND NOT EXISTS ( \
                        SELECT 1 FROM connect_sessions s \
                        WHERE s.tenant_id = oauth_states.tenant_id \
                          AND s.id = oauth_states.session_id AND s.status = $2))",
            )
            .bind(before)
            .bind(SessionStatus::Pending.as_str())
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        Ok(removed)
    }
}

//! [`ConnectionStore`]: a tenant's connections, each one account at a provider.
//!
//! A connection row holds only what is not secret: the connector, settings, an optional base
//! URL and a [`CredentialRef`] naming the vault secret. Deleting a connection removes its
//! streams, records and changes in the same transaction.
//!
//! A connection's `status` is the operator's switch; its `credential_status` says whether the
//! credential still works (an OAuth grant the provider revoked needs the end user to
//! reauthorize). Token refreshes replace the credential with [`ConnectionStore::swap_credential`],
//! a compare-and-swap, so two refreshers cannot overwrite each other's newer token.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_core::{ConnectionId, TenantId};
use switchyard_store::{Database, DbTime, Page, with_conn, with_tx};
use time::OffsetDateTime;

use super::error::{Result, StoreError, is_unique_violation};
use super::hash::canonical_json;

const TABLE: &str = "connections";
const COLUMNS: &str = "tenant_id, id, provider, name, config, base_url, credential, status, \
                       credential_status, version, created_at, updated_at";

/// A reference to the vault secret that authenticates a connection: never the secret itself.
/// The secret belongs to the connection's tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRef {
    /// The secret's name in the tenant's vault.
    pub name: String,
    pub version: u32,
    /// The vault's fingerprint of that version, to show which credential is in use.
    pub fingerprint: String,
    /// The connector auth mode the secret is for (`bearer`, `api_key`…): where it goes on a
    /// request.
    pub mode: String,
    /// When an OAuth access token in the secret expires. Not secret: the scheduled refresh
    /// decides from it without decrypting anything.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub expires_at: Option<OffsetDateTime>,
    /// When the OAuth tokens were last obtained (connected or refreshed).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub refreshed_at: Option<OffsetDateTime>,
}

/// Whether syncs and actions may use a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    Active,
    Disabled,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "active" => Some(Self::Active),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

/// Whether a connection's credential still authenticates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialStatus {
    Valid,
    /// The provider refused the grant (revoked, expired refresh token): the end user must
    /// go through a connect session again.
    ReauthorizationRequired,
}

impl CredentialStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::ReauthorizationRequired => "reauthorization_required",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "valid" => Some(Self::Valid),
            "reauthorization_required" => Some(Self::ReauthorizationRequired),
            _ => None,
        }
    }
}

/// A connection as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub tenant_id: TenantId,
    pub id: ConnectionId,
    /// The connector's id.
    pub provider: String,
    /// Unique within the tenant.
    pub name: String,
    /// The connector's non-secret settings: a JSON object.
    pub config: Value,
    /// Overrides the connector's base URL (a self-hosted instance, a regional endpoint).
    pub base_url: Option<String>,
    /// `None` for providers that need no credential.
    pub credential: Option<CredentialRef>,
    pub status: ConnectionStatus,
    pub credential_status: CredentialStatus,
    /// Starts at 1, bumped by every update.
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A connection to create. `id` is chosen by the caller so that it can name the vault secret
/// after the connection before the row exists.
#[derive(Debug, Clone)]
pub struct NewConnection {
    pub tenant_id: TenantId,
    pub id: ConnectionId,
    pub provider: String,
    pub name: String,
    pub config: Value,
    pub base_url: Option<String>,
    pub credential: Option<CredentialRef>,
}

impl NewConnection {
    /// An active connection with a fresh id, empty settings, no base URL and no credential.
    pub fn new(tenant_id: TenantId, provider: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            tenant_id,
            id: ConnectionId::generate(),
            provider: provider.into(),
            name: name.into(),
            config: Value::Object(serde_json::Map::new()),
            base_url: None,
            credential: None,
        }
    }
}

/// The fields to change; `None` keeps a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ConnectionUpdate {
    pub name: Option<String>,
    pub config: Option<Value>,
    /// `Some(None)` removes the override.
    pub base_url: Option<Option<String>>,
    /// `Some(None)` removes the credential reference.
    pub credential: Option<Option<CredentialRef>>,
    pub status: Option<ConnectionStatus>,
    /// A repair through a connect session sets `Valid` together with the new credential.
    pub credential_status: Option<CredentialStatus>,
    /// Update only if the connection is still at this version.
    pub expected_version: Option<i64>,
}

type ConnectionRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    DbTime,
    DbTime,
);

fn from_row(row: ConnectionRow) -> Result<Connection> {
    let (
        tenant,
        id,
        provider,
        name,
        config,
        base_url,
        credential,
        status,
        credential_status,
        version,
        created,
        updated,
    ) = row;
    let corrupt = |e: &dyn std::fmt::Display| StoreError::corrupt(TABLE, e);
    Ok(Connection {
        tenant_id: tenant.parse().map_err(|e| corrupt(&e))?,
        id: id.parse().map_err(|e| corrupt(&e))?,
        provider,
        name,
        config: serde_json::from_str(&config).map_err(|e| corrupt(&e))?,
        base_url,
        credential: credential
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|e| corrupt(&e))?,
        status: ConnectionStatus::parse(&status).ok_or_else(|| corrupt(&"unknown status"))?,
        credential_status: CredentialStatus::parse(&credential_status)
            .ok_or_else(|| corrupt(&"unknown credential status"))?,
        version,
        created_at: created.get(),
        updated_at: updated.get(),
    })
}

fn validate_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(StoreError::Invalid {
            field: "name",
            reason: "must not be empty",
        });
    }
    Ok(())
}

/// Settings are stored canonically, so the same settings read back the same.
fn config_text(config: &Value) -> Result<String> {
    if !config.is_object() {
        return Err(StoreError::Invalid {
            field: "config",
            reason: "must be a JSON object",
        });
    }
    canonical_json(config)
}

fn credential_text(credential: Option<&CredentialRef>) -> Result<Option<String>> {
    credential
        .map(serde_json::to_string)
        .transpose()
        .map_err(StoreError::InvalidJson)
}

/// Maps the unique violation of `(tenant_id, name)`, the table's only unique key besides the
/// primary key (whose ids are fresh ULIDs), to [`StoreError::NameTaken`].
fn name_conflict(name: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |error| {
        if is_unique_violation(&error) {
            StoreError::NameTaken {
                name: name.to_owned(),
            }
        } else {
            StoreError::Database(error)
        }
    }
}

/// The table of connections, every statement scoped by tenant.
#[derive(Debug, Clone)]
pub struct ConnectionStore {
    database: Database,
}

impl ConnectionStore {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Stores a new connection, active, at version 1.
    ///
    /// # Errors
    /// [`StoreError::NameTaken`] when the tenant has a connection of that name;
    /// [`StoreError::Invalid`] for an empty name or settings that are not an object.
    pub async fn create(&self, new: NewConnection) -> Result<Connection> {
        validate_name(&new.name)?;
        let config = config_text(&new.config)?;
        let credential = credential_text(new.credential.as_ref())?;
        let now = DbTime::now();
        let sql = format!(
            "INSERT INTO connections ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10) \
             RETURNING {COLUMNS}"
        );
        let row: ConnectionRow = with_conn!(&self.database, |conn| {
            sqlx::query_as(&sql)
                .bind(new.tenant_id.to_string())
                .bind(new.id.to_string())
                .bind(&new.provider)
                .bind(&new.name)
                .bind(&config)
                .bind(new.base_url.as_deref())
                .bind(credential.as_deref())
                .bind(ConnectionStatus::Active.as_str())
                .bind(CredentialStatus::Valid.as_str())
                .bind(now)
                .fetch_one(&mut *conn)
                .await
                .map_err(name_conflict(&new.name))?
        });
        from_row(row)
    }

    /// The connection `id` of `tenant`.
    pub async fn get(&self, tenant: &TenantId, id: &ConnectionId) -> Result<Option<Connection>> {
        let sql = format!("SELECT {COLUMNS} FROM connections WHERE tenant_id = $1 AND id = $2");
        let row: Option<ConnectionRow> = with_conn!(&self.database, |conn| {
            sqlx::query_as(&sql)
                .bind(tenant.to_string())
                .bind(id.to_string())
                .fetch_optional(&mut *conn)
                .await?
        });
        row.map(from_row).transpose()
    }

    /// The tenant's connection named `name`.
    pub async fn by_name(&self, tenant: &TenantId, name: &str) -> Result<Option<Connection>> {
        let sql = format!("SELECT {COLUMNS} FROM connections WHERE tenant_id = $1 AND name = $2");
        let row: Option<ConnectionRow> = with_conn!(&self.database, |conn| {
            sqlx::query_as(&sql)
                .bind(tenant.to_string())
                .bind(name)
                .fetch_optional(&mut *conn)
                .await?
        });
        row.map(from_row).transpose()
    }

    /// Every tenant's connections whose credential is of auth mode `mode`, in (tenant, id)
    /// order after `after`: what the scheduled token refresh walks. The mode is matched on the
    /// reference's JSON text, which [`credential_text`] writes with `mode` as a plain string.
    pub async fn with_credential_mode(
        &self,
        mode: &str,
        after: Option<&(TenantId, ConnectionId)>,
        limit: u32,
    ) -> Result<Vec<Connection>> {
        let pattern = format!("%\"mode\":{}%", serde_json::Value::String(mode.to_owned()));
        let sql = format!(
            "SELECT {COLUMNS} FROM connections \
             WHERE credential LIKE $1 \
               AND ($2 IS NULL OR tenant_id > $2 OR (tenant_id = $2 AND id > $3)) \
             ORDER BY tenant_id, id LIMIT $4"
        );
        let (tenant, id) = match after {
            Some((tenant, id)) => (Some(tenant.to_string()), Some(id.to_string())),
            None => (None, None),
        };
        let rows: Vec<ConnectionRow> = with_conn!(&self.database, |conn| {
            sqlx::query_as(&sql)
                .bind(&pattern)
                .bind(tenant.as_deref())
                .bind(id.as_deref())
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await?
        });
        rows.into_iter().map(from_row).collect()
    }

    /// The tenant's connections in id (creation) order, starting after `after`.
    pub async fn list(
        &self,
        tenant: &TenantId,
        after: Option<&ConnectionId>,
        limit: u32,
    ) -> Result<Page<Connection, ConnectionId>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM connections \
             WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
        );
        let rows: Vec<ConnectionRow> = with_conn!(&self.database, |conn| {
            sqlx::query_as(&sql)
                .bind(tenant.to_string())
                .bind(after.map(ToString::to_string))
                .bind(i64::from(limit) + 1)
                .fetch_all(&mut *conn)
                .await?
        });
        let connections = rows.into_iter().map(from_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(connections, limit, |c| c.id))
    }

    /// Applies `update` and bumps the version. `None` when the tenant has no such connection.
    ///
    /// # Errors
    /// [`StoreError::VersionMismatch`] when `expected_version` is not the current version;
    /// [`StoreError::NameTaken`] when renaming onto another connection's name.
    pub async fn update(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        update: ConnectionUpdate,
    ) -> Result<Option<Connection>> {
        if let Some(name) = &update.name {
            validate_name(name)?;
        }
        let config = update.config.as_ref().map(config_text).transpose()?;
        let credential = match &update.credential {
            Some(credential) => Some(credential_text(credential.as_ref())?),
            None => None,
        };
        let sql = format!(
            "UPDATE connections SET name = COALESCE($3, name), config = COALESCE($4, config), \
                base_url = CASE WHEN $5 THEN $6 ELSE base_url END, \
                credential = CASE WHEN $7 THEN $8 ELSE credential END, \
                status = COALESCE($9, status), credential_status = COALESCE($12, credential_status), \
                version = version + 1, updated_at = $10 \
             WHERE tenant_id = $1 AND id = $2 AND ($11 IS NULL OR version = $11) \
             RETURNING {COLUMNS}"
        );
        let name = update.name.as_deref().unwrap_or_default();
        let mut tx = self.database.begin().await?;
        let row: Option<ConnectionRow> = with_tx!(tx, |conn| {
            sqlx::query_as(&sql)
                .bind(tenant.to_string())
                .bind(id.to_string())
                .bind(update.name.as_deref())
                .bind(config.as_deref())
                .bind(update.base_url.is_some())
                .bind(update.base_url.as_ref().and_then(Option::as_deref))
                .bind(credential.is_some())
                .bind(credential.as_ref().and_then(Option::as_deref))
                .bind(update.status.map(ConnectionStatus::as_str))
                .bind(DbTime::now())
                .bind(update.expected_version)
                .bind(update.credential_status.map(CredentialStatus::as_str))
                .fetch_optional(&mut *conn)
                .await
                .map_err(name_conflict(name))?
        });
        if let Some(row) = row {
            tx.commit().await?;
            return from_row(row).map(Some);
        }
        let Some(expected) = update.expected_version else {
            return Ok(None);
        };
        // Nothing matched: either there is no such connection or its version moved on.
        let current: Option<i64> = with_tx!(tx, |conn| {
            sqlx::query_scalar("SELECT version FROM connections WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.to_string())
                .bind(id.to_string())
                .fetch_optional(&mut *conn)
                .await?
        });
        match current {
            Some(current) => Err(StoreError::VersionMismatch { expected, current }),
            None => Ok(None),
        }
    }

    /// Sets whether the connection's credential still works; bumps the version. `None` when
    /// the tenant has no such connection.
    pub async fn set_credential_status(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        status: CredentialStatus,
    ) -> Result<Option<Connection>> {
        let sql = format!(
            "UPDATE connections SET credential_status = $3, version = version + 1, updated_at = $4 \
             WHERE tenant_id = $1 AND id = $2 RETURNING {COLUMNS}"
        );
        let row: Option<ConnectionRow> = with_conn!(&self.database, |conn| {
            sqlx::query_as(&sql)
                .bind(tenant.to_string())
                .bind(id.to_string())
                .bind(status.as_str())
                .bind(DbTime::now())
                .fetch_optional(&mut *conn)
                .await?
        });
        row.map(from_row).transpose()
    }

    /// Compare-and-swap of the credential reference: writes `new`, sets the credential status
    /// to valid and bumps the version, only if the stored credential is still at
    /// `expected_version`. `None` when the credential moved on (another refresher won, an
    /// operator replaced it), was removed, or the connection is gone.
    pub async fn swap_credential(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        expected_version: u32,
        new: CredentialRef,
    ) -> Result<Option<Connection>> {
        let tenant = tenant.to_string();
        let id = id.to_string();
        let current: Option<Option<String>> = with_conn!(&self.database, |conn| {
            sqlx::query_scalar(
                "SELECT credential FROM connections WHERE tenant_id = $1 AND id = $2",
            )
            .bind(&tenant)
            .bind(&id)
            .fetch_optional(&mut *conn)
            .await?
        });
        let Some(Some(current)) = current else {
            return Ok(None);
        };
        let stored: CredentialRef =
            serde_json::from_str(&current).map_err(|e| StoreError::corrupt(TABLE, e))?;
        if stored.version != expected_version {
            return Ok(None);
        }
        let new = credential_text(Some(&new))?;
        // The swap happens only if the column still holds the exact text read above: a
        // concurrent writer in between makes it match nothing (on PostgreSQL the condition is
        // re-checked on the row that writer committed).
        let sql = format!(
            "UPDATE connections SET credential = $3, credential_status = $4, \
                version = version + 1, updated_at = $5 \
             WHERE tenant_id = $1 AND id = $2 AND credential = $6 RETURNING {COLUMNS}"
        );
        let row: Option<ConnectionRow> = with_conn!(&self.database, |conn| {
            sqlx::query_as(&sql)
                .bind(&tenant)
                .bind(&id)
                .bind(new.as_deref())
                .bind(CredentialStatus::Valid.as_str())
                .bind(DbTime::now())
                .bind(&current)
                .fetch_optional(&mut *conn)
                .await?
        });
        row.map(from_row).transpose()
    }

    /// Deletes the connection with its streams (checkpoints), records and changes, in one
    /// transaction. Returns the deleted row, whose [`CredentialRef`] the caller destroys.
    pub async fn delete(&self, tenant: &TenantId, id: &ConnectionId) -> Result<Option<Connection>> {
        let tenant = tenant.to_string();
        let id = id.to_string();
        let mut tx = self.database.begin().await?;
        // The connection row goes first: its foreign key (cascading to `sync_streams`) makes
        // this wait for any page write in progress on the connection, and makes later writes
        // fail. The statements below then see every record such a write committed.
        let sql =
            format!("DELETE FROM connections WHERE tenant_id = $1 AND id = $2 RETURNING {COLUMNS}");
        let row: Option<ConnectionRow> = with_tx!(tx, |conn| {
            sqlx::query_as(&sql)
                .bind(&tenant)
                .bind(&id)
                .fetch_optional(&mut *conn)
                .await?
        });
        let Some(row) = row else {
            return Ok(None);
        };
        for table in ["records", "record_changes"] {
            let sql = format!("DELETE FROM {table} WHERE tenant_id = $1 AND connection_id = $2");
            with_tx!(tx, |conn| {
                sqlx::query(&sql)
                    .bind(&tenant)
                    .bind(&id)
                    .execute(&mut *conn)
                    .await?;
            });
        }
        tx.commit().await?;
        from_row(row).map(Some)
    }

    /// Deletes every connection of a tenant being deleted, with their streams, records and
    /// changes (synced provider data is not kept for a tenant that is gone), and the tenant's
    /// OAuth client registrations, connect sessions and states. Returns how many connections
    /// there were.
    pub async fn delete_tenant(&self, tenant: &TenantId) -> Result<u64> {
        let tenant = tenant.to_string();
        let mut tx = self.database.begin().await?;
        // Connections first, as in `delete`: their rows' removal stops page writes.
        let mut connections = 0;
        let tables = [
            "connections",
            "sync_streams",
            "records",
            "record_changes",
            // The OAuth connect flow's rows: registrations, sessions and pending states.
            "oauth_clients",
            "connect_sessions",
            "oauth_states",
        ];
        for table in tables {
            let sql = format!("DELETE FROM {table} WHERE tenant_id = $1");
            let deleted = with_tx!(tx, |conn| {
                sqlx::query(&sql)
                    .bind(&tenant)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected()
            });
            if table == "connections" {
                connections = deleted;
            }
        }
        tx.commit().await?;
        Ok(connections)
    }
}

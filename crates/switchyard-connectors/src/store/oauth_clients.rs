//! [`OAuthClientStore`]: a tenant's OAuth client registrations, one per provider.
//!
//! A registration holds the client id, the scopes to request and an optional redirect URI.
//! The client secret (or private key) stays in the vault: the row only names it with a
//! [`SecretReference`].

use serde::{Deserialize, Serialize};
use switchyard_core::{OAuthClientId, TenantId};
use switchyard_store::{Database, DbTime, Page, with_conn};
use time::OffsetDateTime;

use super::error::{Result, StoreError, is_unique_violation};

const TABLE: &str = "oauth_clients";
const COLUMNS: &str =
    "tenant_id, id, provider, client_id, secret, scopes, redirect_uri, created_at, updated_at";

/// A reference to a vault secret of the tenant: never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretReference {
    /// The secret's name in the tenant's vault.
    pub name: String,
    pub version: u32,
    /// The vault's fingerprint of that version, to show which secret is in use.
    pub fingerprint: String,
}

/// An OAuth client registration as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthClient {
    pub tenant_id: TenantId,
    pub id: OAuthClientId,
    /// The connector's id; unique within the tenant.
    pub provider: String,
    pub client_id: String,
    /// The client secret or private key in the vault; `None` for a public client.
    pub secret: Option<SecretReference>,
    pub scopes: Vec<String>,
    /// Overrides the platform's callback URL.
    pub redirect_uri: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A registration to create. `id` is chosen by the caller so that it can name the vault
/// secret after the registration before the row exists.
#[derive(Debug, Clone)]
pub struct NewOAuthClient {
    pub tenant_id: TenantId,
    pub id: OAuthClientId,
    pub provider: String,
    pub client_id: String,
    pub secret: Option<SecretReference>,
    pub scopes: Vec<String>,
    pub redirect_uri: Option<String>,
}

/// The fields to change; `None` keeps a field as it is.
#[derive(Debug, Clone, Default)]
pub struct OAuthClientUpdate {
    pub client_id: Option<String>,
    /// `Some(None)` removes the secret (the client becomes public).
    pub secret: Option<Option<SecretReference>>,
    pub scopes: Option<Vec<String>>,
    /// `Some(None)` removes the override.
    pub redirect_uri: Option<Option<String>>,
}

type OAuthClientRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    DbTime,
    DbTime,
);

fn from_row(row: OAuthClientRow) -> Result<OAuthClient> {
    let (tenant, id, provider, client_id, secret, scopes, redirect_uri, created, updated) = row;
    let corrupt = |e: &dyn std::fmt::Display| StoreError::corrupt(TABLE, e);
    Ok(OAuthClient {
        tenant_id: tenant.parse().map_err(|e| corrupt(&e))?,
        id: id.parse().map_err(|e| corrupt(&e))?,
        provider,
        client_id,
        secret: secret
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|e| corrupt(&e))?,
        scopes: serde_json::from_str(&scopes).map_err(|e| corrupt(&e))?,
        redirect_uri,
        created_at: created.get(),
        updated_at: updated.get(),
    })
}

fn require_non_empty(field: &'static str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(StoreError::Invalid {
            field,
            reason: "must not be empty",
        });
    }
    Ok(())
}

fn secret_text(secret: Option<&SecretReference>) -> Result<Option<String>> {
    secret
        .map(serde_json::to_string)
        .transpose()
        .map_err(StoreError::InvalidJson)
}

fn scopes_text(scopes: &[String]) -> Result<String> {
    serde_json::to_string(scopes).map_err(StoreError::InvalidJson)
}

/// The table's unique keys are the primary key (fresh ULIDs) and `(tenant_id, provider)`:
/// a unique violation means the provider is taken.
fn provider_conflict(provider: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |error| {
        if is_unique_violation(&error) {
            StoreError::ProviderTaken {
                provider: provider.to_owned(),
            }
        } else {
            StoreError::Database(error)
        }
    }
}

/// The table of OAuth client registrations, every statement scoped by tenant.
#[derive(Debug, Clone)]
pub struct OAuthClientStore {
    database: Database,
}

impl OAuthClientStore {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Stores a new registration.
    ///
    /// # Errors
    /// [`StoreError::ProviderTaken`] when the tenant has a registration for the provider;
    /// [`StoreError::Invalid`] for an empty provider or client id.
    pub async fn create(&self, new: NewOAuthClient) -> Result<OAuthClient> {
        require_non_empty("provider", &new.provider)?;
        require_non_empty("client_id", &new.client_id)?;
        let secret = secret_text(new.secret.as_ref())?;
        let scopes = scopes_text(&new.scopes)?;
        let sql = format!(
            "INSERT INTO oauth_clients ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
             RETURNING {COLUMNS}"
        );
        let row: OAuthClientRow = with_conn!(&self.database, |conn| {
            sqlx::query_as(&sql)
                .bind(new.tenant_id.to_string())
                .bind(new.id.to_string())
                .bind(&new.provider)
                .bind(&new.client_id)
                .bind(secret.as_deref())
                .bind(&scopes)
                .bind(new.redirect_uri.as_deref())
                .bind(DbTime::now())
                .fetch_one(&mut *conn)
                .await
                .map_err(provider_conflict(&new.provider))?
        });
        from_row(row)
    }

    /// The registration `id` of `tenant`.
    pub async fn get(&self, tenant: &TenantId, id: &OAuthClientId) -> Result<Option<OAuthClient>> {
        let sql = format!("SELECT {COLUMNS} FROM oauth_clients WHERE tenant_id = $1 AND id = $2");
        let row: Option<OAuthClientRow> = with_conn!(&self.database, |conn| {
            sqlx::query_as(&sql)
                .bind(tenant.to_string())
                .bind(id.to_string())
                .fetch_optional(&mut *conn)
                .await?
        });
        row.map(from_row).transpose()
    }

    /// The tenant's registration for `provider`.
    pub async fn for_provider(
        &self,
        tenant: &TenantId,
        provider: &str,
    ) -> Result<Option<OAuthClient>> {
        let sql =
            format!("SELECT {COLUMNS} FROM oauth_clients WHERE tenant_id = $1 AND provider = $2");
        let row: Option<OAuthClientRow> = with_conn!(&self.database, |conn| {
            sqlx::query_as(&sql)
                .bind(tenant.to_string())
                .bind(provider)
                .fetch_optional(&mut *conn)
                .await?
        });
        row.map(from_row).transpose()
    }

    /// The tenant's registrations in id (creation) order, starting after `after`.
    pub async fn list(
        &self,
        tenant: &TenantId,
        after: Option<&OAuthClientId>,
        limit: u32,
    ) -> Result<Page<OAuthClient, OAuthClientId>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM oauth_clients \
             WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
        );
        let rows: Vec<OAuthClientRow> = with_conn!(&self.database, |conn| {
            sqlx::query_as(&sql)
                .bind(tenant.to_string())
                .bind(after.map(ToString::to_string))
                .bind(i64::from(limit) + 1)
                .fetch_all(&mut *conn)
                .await?
        });
        let clients = rows.into_iter().map(from_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(clients, limit, |c| c.id))
    }

    /// Applies `update`. `None` when the tenant has no such registration.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for an empty client id.
    pub async fn update(
        &self,
        tenant: &TenantId,
        id: &OAuthClientId,
        update: OAuthClientUpdate,
    ) -> Result<Option<OAuthClient>> {
        if let Some(client_id) = &update.client_id {
            require_non_empty("client_id", client_id)?;
        }
        let secret = match &update.secret {
            Some(secret) => Some(secret_text(secret.as_ref())?),
            None => None,
        };
        let scopes = update.scopes.as_deref().map(scopes_text).transpose()?;
        let sql = format!(
            "UPDATE oauth_clients SET client_id = COALESCE($3, client_id), \
                secret = CASE WHEN $4 THEN $5 ELSE secret END, \
                scopes = COALESCE($6, scopes), \
                redirect_uri = CASE WHEN $7 THEN $8 ELSE redirect_uri END, \
                updated_at = $9 \
             WHERE tenant_id = $1 AND id = $2 RETURNING {COLUMNS}"
        );
        let row: Option<OAuthClientRow> = with_conn!(&self.database, |conn| {
            sqlx::query_as(&sql)
                .bind(tenant.to_string())
                .bind(id.to_string())
                .bind(update.client_id.as_deref())
                .bind(secret.is_some())
                .bind(secret.as_ref().and_then(Option::as_deref))
                .bind(scopes.as_deref())
                .bind(update.redirect_uri.is_some())
                .bind(update.redirect_uri.as_ref().and_then(Option::as_deref))
                .bind(DbTime::now())
                .fetch_optional(&mut *conn)
                .await?
        });
        row.map(from_row).transpose()
    }

    /// Deletes the registration. Returns the deleted row, whose [`SecretReference`] the
    /// caller destroys.
    pub async fn delete(
        &self,
        tenant: &TenantId,
        id: &OAuthClientId,
    ) -> Result<Option<OAuthClient>> {
        let sql = format!(
            "DELETE FROM oauth_clients WHERE tenant_id = $1 AND id = $2 RETURNING {COLUMNS}"
        );
        let row: Option<OAuthClientRow> = with_conn!(&self.database, |conn| {
            sqlx::query_as(&sql)
                .bind(tenant.to_string())
                .bind(id.to_string())
                .fetch_optional(&mut *conn)
                .await?
        });
        row.map(from_row).transpose()
    }
}

//! An endpoint's custom request headers. Their values are credentials (a receiver's bearer
//! token, a basic-auth pair), so they live only in the vault: one secret per endpoint,
//! `outbound/{endpoint}/headers`, holding a JSON object of name → value. The row keeps the
//! names, which the API shows, and the vault version, on which the dispatcher's cache keys.
//!
//! Changing the set writes a new vault version, points the row at it with a compare-and-set
//! on the old version, and only then confirms it (destroying the old one). A concurrent change
//! therefore either fails to write (the vault refuses a second unconfirmed version) or loses
//! the compare-and-set and rolls its version back; the row never names a destroyed version.

use std::collections::BTreeMap;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use switchyard_core::{EndpointId, TenantId};
use switchyard_vault::{AuditContext, SecretRef, VaultError};
use time::OffsetDateTime;
use tracing::warn;

use super::{EndpointRecord, Endpoints, TABLE, json_text};
use crate::db::{db_time, to_i32, with_conn};
use crate::error::{OutboundError, Result};

/// Header values as callers give them.
pub(crate) type HeaderValues = BTreeMap<String, SecretString>;

const MAX_HEADERS: usize = 32;

/// Headers a tenant may not set: the signature scheme's and the transport's own.
const RESERVED_HEADERS: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-type",
    "content-length",
    "user-agent",
    "host",
    "transfer-encoding",
    "connection",
];

pub(crate) fn secret_name(id: EndpointId) -> String {
    format!("outbound/{id}/headers")
}

/// Checks names and values; errors name the header, never its value.
pub(crate) fn validate(headers: &HeaderValues) -> Result<()> {
    if headers.len() > MAX_HEADERS {
        return Err(OutboundError::invalid("headers", "at most 32 headers"));
    }
    let mut seen = std::collections::HashSet::new();
    for (name, value) in headers {
        let parsed = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            OutboundError::invalid("headers", format!("`{name}` is not a header name"))
        })?;
        // Names are case-insensitive: two spellings would silently send only one.
        if !seen.insert(parsed.clone()) {
            return Err(OutboundError::invalid(
                "headers",
                format!("`{name}` is given twice"),
            ));
        }
        if RESERVED_HEADERS.contains(&parsed.as_str()) {
            return Err(OutboundError::invalid(
                "headers",
                format!("`{name}` is set by Switchyard"),
            ));
        }
        HeaderValue::from_str(value.expose_secret()).map_err(|_| {
            OutboundError::invalid("headers", format!("the value of `{name}` is not valid"))
        })?;
    }
    Ok(())
}

/// The names of `headers`, as the row keeps them.
pub(super) fn names(headers: &HeaderValues) -> Vec<String> {
    headers.keys().cloned().collect()
}

/// The vault plaintext: a JSON object of name → value.
pub(super) fn encode(headers: &HeaderValues) -> SecretString {
    let exposed: BTreeMap<&str, &str> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.expose_secret()))
        .collect();
    // A map of strings always serialises.
    SecretString::from(serde_json::to_string(&exposed).unwrap_or_default())
}

/// The headers of a resolved vault secret, ready to send; values are marked sensitive so
/// the HTTP stack never prints them.
///
/// # Errors
/// [`OutboundError::Corrupt`], with a fixed message: a parser's message could quote a value.
pub(crate) fn decode(plaintext: &str) -> Result<HeaderMap> {
    let corrupt = || OutboundError::corrupt("vault_secrets", "endpoint headers are not valid");
    let map: BTreeMap<String, String> = serde_json::from_str(plaintext).map_err(|_| corrupt())?;
    let mut headers = HeaderMap::with_capacity(map.len());
    for (name, value) in map {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| corrupt())?;
        let mut value = HeaderValue::from_str(&value).map_err(|_| corrupt())?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    Ok(headers)
}

/// The legacy `headers` column: values in plain text, from before migration 0011.
fn parse_legacy(text: &str) -> Result<HeaderValues> {
    let map: BTreeMap<String, String> = serde_json::from_str(text)
        .map_err(|_| OutboundError::corrupt(TABLE, "legacy headers are not a JSON object"))?;
    Ok(map
        .into_iter()
        .map(|(name, value)| (name, SecretString::from(value)))
        .collect())
}

/// Which rows a header change may apply to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    /// A change through the API.
    Update,
    /// Moving the legacy column's values: only while the row still holds them.
    Legacy,
}

impl Endpoints {
    /// Writes `headers` (`None` or empty: none) as `record`'s header secret and points the row
    /// at it. `Ok(false)`: another change got there first and this one was undone.
    ///
    /// # Errors
    /// [`OutboundError::Conflict`] while another change is half done; vault and database
    /// failures.
    pub(super) async fn set_headers(
        &self,
        context: &AuditContext,
        record: &EndpointRecord,
        headers: Option<&HeaderValues>,
        change: Change,
    ) -> Result<bool> {
        let tenant = record.endpoint.tenant;
        let id = record.endpoint.id;
        let name = secret_name(id);
        let headers = headers.filter(|h| !h.is_empty());
        let version = match headers {
            Some(headers) => {
                let plaintext = encode(headers);
                let stored = self
                    .vault
                    .put(context, tenant, &name, plaintext.expose_secret().as_bytes())
                    .await
                    .map_err(|error| match error {
                        VaultError::RotationPending { .. } => OutboundError::Conflict(
                            "the endpoint's headers are being changed; try again".into(),
                        ),
                        other => other.into(),
                    })?;
                Some(stored.reference.version)
            }
            None => None,
        };
        let names = headers.map(names).unwrap_or_default();
        let legacy_only = if change == Change::Legacy {
            " AND headers <> '{}'"
        } else {
            ""
        };
        let old_version = record.keys.headers_version;
        let now = db_time(OffsetDateTime::now_utc());
        let applied = with_conn!(&self.database, |conn| {
            sqlx::query(&format!(
                "UPDATE webhook_endpoints SET header_names = $3, headers_version = $4, \
                    headers = '{{}}', updated_at = $5 \
                 WHERE tenant_id = $1 AND id = $2 AND COALESCE(headers_version, 0) = $6\
                 {legacy_only}"
            ))
            .bind(tenant.to_string())
            .bind(id.to_string())
            .bind(json_text(&names))
            .bind(version.map(to_i32))
            .bind(now)
            .bind(old_version.map_or(0, to_i32))
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected())
        });
        let applied = match applied {
            Ok(n) => n == 1,
            Err(error) => {
                self.undo(context, tenant, &name, version).await;
                return Err(error.into());
            }
        };
        if !applied {
            self.undo(context, tenant, &name, version).await;
            return Ok(false);
        }
        // The row names the new version: the old one may go. Failing here leaves an extra
        // version in the vault, not a broken endpoint, so it is logged, not returned.
        let finished = match version {
            Some(version) => {
                let reference = SecretRef::new(tenant.to_string(), name, version);
                self.vault.confirm(context, &reference).await
            }
            None if old_version.is_some() => {
                self.vault.delete(context, tenant, &name).await.map(|_| ())
            }
            None => Ok(()),
        };
        if let Err(error) = finished {
            warn!(endpoint = %id, error = %error, "could not destroy old header versions");
        }
        Ok(true)
    }

    /// Takes back a version the row never pointed at. When it was the first version there is
    /// nothing to roll back to and it stays, unused, until the next change confirms over it:
    /// deleting the name could destroy a version another change has just pointed the row at.
    async fn undo(
        &self,
        context: &AuditContext,
        tenant: TenantId,
        name: &str,
        version: Option<u32>,
    ) {
        let Some(version) = version else {
            return;
        };
        let reference = SecretRef::new(tenant.to_string(), name.to_owned(), version);
        if let Err(error) = self.vault.rollback(context, &reference).await {
            warn!(secret = name, error = %error, "could not take back an unused header version");
        }
    }

    /// Moves header values still in the legacy `headers` column (rows saved before migration
    /// 0011) into the vault. Returns how many endpoints were moved. Run at startup, before
    /// anything is delivered; safe to run in several processes at once.
    ///
    /// # Errors
    /// Vault and database failures; a legacy value that does not parse.
    pub async fn move_legacy_headers(&self, context: &AuditContext) -> Result<u64> {
        let rows: Vec<(String, String, String)> = with_conn!(&self.database, |conn| {
            sqlx::query_as(
                "SELECT tenant_id, id, headers FROM webhook_endpoints WHERE headers <> '{}'",
            )
            .fetch_all(&mut *conn)
            .await?
        });
        let mut moved = 0;
        for (tenant, id, text) in rows {
            let tenant: TenantId = crate::db::parse_id(TABLE, &tenant)?;
            let id: EndpointId = crate::db::parse_id(TABLE, &id)?;
            let headers = parse_legacy(&text)?;
            let record = match self.record(tenant, id).await {
                Ok(record) => record,
                // Deleted meanwhile.
                Err(OutboundError::NotFound { .. }) => continue,
                Err(error) => return Err(error),
            };
            if self
                .set_headers(context, &record, Some(&headers), Change::Legacy)
                .await?
            {
                moved += 1;
            }
        }
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> HeaderValues {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), SecretString::from(*value)))
            .collect()
    }

    #[test]
    fn validation_names_the_header_not_the_value() {
        assert!(validate(&values(&[("x-tenant", "a")])).is_ok());
        assert!(validate(&values(&[("Webhook-Signature", "x")])).is_err());
        assert!(validate(&values(&[("X-A", "1"), ("x-a", "2")])).is_err());
        let error = validate(&values(&[("authorization", "canary\nsecret")])).unwrap_err();
        assert!(!error.to_string().contains("canary"), "{error}");
    }

    #[test]
    fn the_vault_form_round_trips_with_sensitive_values() {
        let encoded = encode(&values(&[("authorization", "Bearer t"), ("x-a", "1")]));
        let decoded = decode(encoded.expose_secret()).unwrap();
        assert_eq!(decoded.len(), 2);
        assert_eq!(decoded["authorization"], "Bearer t");
        assert!(decoded["authorization"].is_sensitive());
        let error = decode(r#"{"x": "canary\u0000"}"#).unwrap_err();
        assert!(!error.to_string().contains("canary"), "{error}");
    }
}

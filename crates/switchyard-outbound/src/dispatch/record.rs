//! Writing outcomes: a single task takes finished attempts and postponements from a channel and
//! writes them in batches, one transaction per batch, so the store sees a few commits per
//! second per process rather than one per delivery.
//!
//! Each write applies only while this process still holds the delivery's lease; a delivery
//! reaped meanwhile (the process stalled past its lease) is left to whoever holds it now.
//! Side effects on the endpoint (failure streak, disabling, recovery) and the operational
//! events they raise are written in the same transaction.

use std::time::Duration;

use serde_json::json;
use switchyard_core::TenantId;
use switchyard_store::{Database, Transaction};
use switchyard_vault::AuditedVault;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tracing::{error, warn};

use super::policy::Decision;
use crate::db::{db_time, to_i32, with_tx};
use crate::error::Result;
use crate::model::NewEvent;
use crate::publish::publish_in;

/// Operational event types, published through the same fan-out as tenants' events.
pub const DELIVERY_EXHAUSTED: &str = "switchyard.delivery.exhausted";
pub const ENDPOINT_DISABLED: &str = "switchyard.endpoint.disabled";
pub const ENDPOINT_RECOVERED: &str = "switchyard.endpoint.recovered";

/// What to write.
#[derive(Debug)]
pub(crate) enum Record {
    Attempt(Box<AttemptRecord>),
    /// Back to `pending` at `until` without counting an attempt (breaker open, rate limit,
    /// endpoint disabled meanwhile, shutdown).
    Postpone {
        delivery_id: String,
        until: OffsetDateTime,
        ordered: bool,
    },
    /// Write what came before and stop.
    Shutdown,
}

#[derive(Debug)]
pub(crate) struct AttemptRecord {
    pub delivery_id: String,
    pub tenant: TenantId,
    pub endpoint_id: String,
    pub event_id: String,
    pub webhook_id: String,
    pub event_type: String,
    /// 1-based, over the delivery's whole life.
    pub attempt: u32,
    pub started_at: OffsetDateTime,
    pub duration_ms: u32,
    pub status_code: Option<u16>,
    pub headers_json: String,
    pub body_key: Option<String>,
    pub body_len: u32,
    pub error_class: Option<&'static str>,
    pub error: Option<String>,
    pub decision: Decision,
    /// The delivery has an ordering key: its successor becomes claimable once this is written.
    pub ordered: bool,
    /// The endpoint's failure streak as loaded with the claim.
    pub failing_since: Option<OffsetDateTime>,
    pub now: OffsetDateTime,
}

pub(crate) struct Recorder {
    pub database: Database,
    /// Seals the bodies of the operational events it publishes.
    pub vault: AuditedVault,
    /// Wakes the claimer after writing an ordered delivery's outcome.
    pub wake: std::sync::Arc<tokio::sync::Notify>,
    pub owner: String,
    pub disable_after: Duration,
}

const WRITE_ATTEMPTS: u32 = 4;
/// Successes per set-wise statement (bind parameters stay far below both engines' limits).
const BULK_CHUNK: usize = 200;

impl Recorder {
    pub async fn run(self, mut receiver: mpsc::Receiver<Record>, batch: usize) {
        let mut records = Vec::with_capacity(batch);
        while receiver.recv_many(&mut records, batch).await > 0 {
            let stop = records.iter().position(|r| matches!(r, Record::Shutdown));
            if let Some(at) = stop {
                records.truncate(at);
            }
            if !records.is_empty() {
                self.write_with_retries(&records).await;
                let ordered = records.iter().any(|r| match r {
                    Record::Attempt(a) => a.ordered,
                    Record::Postpone { ordered, .. } => *ordered,
                    Record::Shutdown => false,
                });
                if ordered {
                    self.wake.notify_one();
                }
            }
            if stop.is_some() {
                return;
            }
            records.clear();
        }
    }

    async fn write_with_retries(&self, records: &[Record]) {
        let mut wait = Duration::from_millis(50);
        for attempt in 1..=WRITE_ATTEMPTS {
            match self.write(records).await {
                Ok(()) => return,
                Err(e) if attempt < WRITE_ATTEMPTS => {
                    warn!(error = %e, attempt, "recording delivery outcomes failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait *= 4;
                }
                Err(e) => {
                    // The leases run out and the deliveries are sent again: at least once.
                    error!(error = %e, records = records.len(), "dropping delivery outcomes");
                }
            }
        }
    }

    async fn write(&self, records: &[Record]) -> Result<()> {
        let mut tx = self.database.begin().await?;
        // The common case, a success with no failure streak to end, is written set-wise:
        // two statements per chunk instead of two per delivery.
        let (plain, rest): (Vec<&Record>, Vec<&Record>) = records.iter().partition(|r| {
            matches!(r, Record::Attempt(a)
                if a.decision == Decision::Succeeded && a.failing_since.is_none())
        });
        let plain: Vec<&AttemptRecord> = plain
            .into_iter()
            .filter_map(|r| match r {
                Record::Attempt(a) => Some(a.as_ref()),
                _ => None,
            })
            .collect();
        for chunk in plain.chunks(BULK_CHUNK) {
            self.successes(&mut tx, chunk).await?;
        }
        for record in rest {
            match record {
                Record::Postpone {
                    delivery_id, until, ..
                } => {
                    self.postpone(&mut tx, delivery_id, *until).await?;
                }
                Record::Attempt(attempt) => self.attempt(&mut tx, attempt).await?,
                Record::Shutdown => {}
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn successes(&self, tx: &mut Transaction, records: &[&AttemptRecord]) -> Result<()> {
        let Some(first) = records.first() else {
            return Ok(());
        };
        let now = db_time(first.now);
        // `(VALUES …)` columns are `column1`, `column2` on both engines.
        let values: Vec<String> = (0..records.len())
            .map(|i| format!("(${}, ${})", 3 + 2 * i, 4 + 2 * i))
            .collect();
        let sql = format!(
            "UPDATE webhook_deliveries SET status = 'succeeded', attempts = attempts + 1, \
                last_status_code = v.column2, last_error = NULL, lease_owner = NULL, \
                lease_expires_at = NULL, updated_at = $2, finished_at = $2 \
             FROM (VALUES {}) AS v \
             WHERE webhook_deliveries.id = v.column1 AND webhook_deliveries.lease_owner = $1 \
               AND webhook_deliveries.status = 'sending' \
             RETURNING webhook_deliveries.id",
            values.join(", ")
        );
        let updated: Vec<(String,)> = with_tx!(tx, |conn| {
            let mut query = sqlx::query_as(&sql).bind(&self.owner).bind(now);
            for record in records {
                query = query
                    .bind(&record.delivery_id)
                    .bind(record.status_code.map(i32::from));
            }
            query.fetch_all(&mut *conn).await?
        });
        if updated.len() < records.len() {
            warn!(
                lost = records.len() - updated.len(),
                "leases lost before outcomes were recorded"
            );
        }
        let kept: std::collections::HashSet<&str> =
            updated.iter().map(|(id,)| id.as_str()).collect();
        let records: Vec<&&AttemptRecord> = records
            .iter()
            .filter(|r| kept.contains(r.delivery_id.as_str()))
            .collect();
        if records.is_empty() {
            return Ok(());
        }
        const COLUMNS: usize = 14;
        let rows: Vec<String> = (0..records.len())
            .map(|i| {
                let params: Vec<String> = (1..=COLUMNS)
                    .map(|c| format!("${}", i * COLUMNS + c))
                    .collect();
                format!("({})", params.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO webhook_delivery_attempts (delivery_id, attempt, tenant_id, \
                endpoint_id, started_at, duration_ms, status_code, response_headers, \
                response_body_key, response_body_len, error_class, error, succeeded, \
                created_at) VALUES {} ON CONFLICT (delivery_id, attempt) DO NOTHING",
            rows.join(", ")
        );
        with_tx!(tx, |conn| {
            let mut query = sqlx::query(&sql);
            for record in &records {
                query = query
                    .bind(&record.delivery_id)
                    .bind(to_i32(record.attempt))
                    .bind(record.tenant.to_string())
                    .bind(&record.endpoint_id)
                    .bind(db_time(record.started_at))
                    .bind(to_i32(record.duration_ms))
                    .bind(record.status_code.map(i32::from))
                    .bind(&record.headers_json)
                    .bind(record.body_key.as_deref())
                    .bind(to_i32(record.body_len))
                    .bind(record.error_class)
                    .bind(record.error.as_deref())
                    .bind(true)
                    .bind(db_time(record.now));
            }
            query.execute(&mut *conn).await?.rows_affected()
        });
        Ok(())
    }

    async fn postpone(&self, tx: &mut Transaction, id: &str, until: OffsetDateTime) -> Result<()> {
        let now = crate::publish::now_db();
        with_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $3, \
                    lease_owner = NULL, lease_expires_at = NULL, updated_at = $4 \
                 WHERE id = $1 AND lease_owner = $2 AND status = 'sending'",
            )
            .bind(id)
            .bind(&self.owner)
            .bind(db_time(until))
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    async fn attempt(&self, tx: &mut Transaction, record: &AttemptRecord) -> Result<()> {
        let (status, next, finished) = match record.decision {
            Decision::Succeeded => ("succeeded", None, Some(record.now)),
            Decision::Retry { at } => ("pending", Some(at), None),
            Decision::Exhausted | Decision::Gone => ("failed", None, Some(record.now)),
        };
        let updated = with_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE webhook_deliveries SET status = $3, attempts = attempts + 1, \
                    next_attempt_at = COALESCE($4, next_attempt_at), last_status_code = $5, \
                    last_error = $6, lease_owner = NULL, lease_expires_at = NULL, \
                    updated_at = $7, finished_at = $8 \
                 WHERE id = $1 AND lease_owner = $2 AND status = 'sending'",
            )
            .bind(&record.delivery_id)
            .bind(&self.owner)
            .bind(status)
            .bind(next.map(db_time))
            .bind(record.status_code.map(i32::from))
            .bind(record.error.as_deref())
            .bind(db_time(record.now))
            .bind(finished.map(db_time))
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        if updated == 0 {
            warn!(delivery = %record.delivery_id, "lease lost before the outcome was recorded");
            return Ok(());
        }
        with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO webhook_delivery_attempts (delivery_id, attempt, tenant_id, \
                    endpoint_id, started_at, duration_ms, status_code, response_headers, \
                    response_body_key, response_body_len, error_class, error, succeeded, \
                    created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                 ON CONFLICT (delivery_id, attempt) DO NOTHING",
            )
            .bind(&record.delivery_id)
            .bind(to_i32(record.attempt))
            .bind(record.tenant.to_string())
            .bind(&record.endpoint_id)
            .bind(db_time(record.started_at))
            .bind(to_i32(record.duration_ms))
            .bind(record.status_code.map(i32::from))
            .bind(&record.headers_json)
            .bind(record.body_key.as_deref())
            .bind(to_i32(record.body_len))
            .bind(record.error_class)
            .bind(record.error.as_deref())
            .bind(record.decision == Decision::Succeeded)
            .bind(db_time(record.now))
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        self.endpoint_health(tx, record).await?;
        if matches!(record.decision, Decision::Exhausted | Decision::Gone)
            // Never report on reports: an endpoint failing `switchyard.*` events would
            // otherwise feed itself.
            && !record.event_type.starts_with("switchyard.")
        {
            let data = json!({
                "delivery_id": record.delivery_id,
                "endpoint_id": record.endpoint_id,
                "event_id": record.event_id,
                "webhook_id": record.webhook_id,
                "event_type": record.event_type,
                "attempts": record.attempt,
                "last_status_code": record.status_code,
                "last_error": record.error,
            });
            publish_in(
                tx,
                &self.vault,
                record.tenant,
                NewEvent::new(DELIVERY_EXHAUSTED, data),
            )
            .await?;
        }
        Ok(())
    }

    async fn endpoint_health(&self, tx: &mut Transaction, record: &AttemptRecord) -> Result<()> {
        let endpoint = record.endpoint_id.as_str();
        let now = db_time(record.now);
        match record.decision {
            Decision::Succeeded => {
                let Some(since) = record.failing_since else {
                    return Ok(());
                };
                let recovered = with_tx!(tx, |conn| {
                    sqlx::query(
                        "UPDATE webhook_endpoints SET failing_since = NULL \
                         WHERE id = $1 AND failing_since IS NOT NULL",
                    )
                    .bind(endpoint)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected()
                });
                if recovered > 0 {
                    let data = json!({ "endpoint_id": endpoint, "failing_since": rfc3339(since) });
                    publish_in(
                        tx,
                        &self.vault,
                        record.tenant,
                        NewEvent::new(ENDPOINT_RECOVERED, data),
                    )
                    .await?;
                }
            }
            Decision::Gone => {
                self.disable(tx, record, "gone", record.failing_since)
                    .await?
            }
            Decision::Retry { .. } | Decision::Exhausted => match record.failing_since {
                None => {
                    with_tx!(tx, |conn| {
                        sqlx::query(
                            "UPDATE webhook_endpoints SET failing_since = $2 \
                             WHERE id = $1 AND failing_since IS NULL",
                        )
                        .bind(endpoint)
                        .bind(now)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected()
                    });
                }
                Some(since) => {
                    let limit =
                        time::Duration::try_from(self.disable_after).unwrap_or(time::Duration::MAX);
                    if record.now - since >= limit {
                        self.disable(tx, record, "failing", Some(since)).await?;
                    }
                }
            },
        }
        Ok(())
    }

    async fn disable(
        &self,
        tx: &mut Transaction,
        record: &AttemptRecord,
        reason: &str,
        failing_since: Option<OffsetDateTime>,
    ) -> Result<()> {
        let disabled = with_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE webhook_endpoints SET enabled = FALSE, disabled_reason = $2, \
                    updated_at = $3 WHERE id = $1 AND enabled",
            )
            .bind(&record.endpoint_id)
            .bind(reason)
            .bind(db_time(record.now))
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        if disabled > 0 {
            let data = json!({
                "endpoint_id": record.endpoint_id,
                "reason": reason,
                "failing_since": failing_since.map(rfc3339),
            });
            publish_in(
                tx,
                &self.vault,
                record.tenant,
                NewEvent::new(ENDPOINT_DISABLED, data),
            )
            .await?;
        }
        Ok(())
    }
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
